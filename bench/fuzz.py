"""Mutation fuzzing of every reader gpu_depth runs on untrusted files.

Readers: ``heif`` (heic.read_depth, orientation, displayed_size, auxiliary_images, read_mattes), ``isobmff``
(box/item tables, every item's data, auxC SEI, rebuild), ``jpeg`` (jpeg.read_depth incl. MPF and GDepth/Extended
XMP, orientation, displayed_size, auxiliary_images, read_mattes), ``dng`` (dng.read_depth, orientation,
displayed_size), ``xmp`` (xmp.parse_depth_xmp), ``loaders`` (loaders.load_depth_map on PNG, TIFF, PGM and .npy
files), ``attach`` (attach_depth on mutated HEIC/JPEG/DNG photos: the result must read back with the map and keep
the photo's coded bytes) and ``photo`` (api.decode_photo and the JPEG re-encoding of PNG, TIFF, WebP, HEIC and JPEG
photos).  Seeds are files made here at start (photos converted and attached by gpu_depth, GDepth JPEGs, DNGs
written with tifffile) plus ``../shared/samples/*``.

Each case mutates one seed (byte flips, truncation, 16/32-bit length and offset fields set to 0,
huge or near values, chunk duplication, deletion and splicing with another seed; XML-aware edits for
XMP) and runs the reader in a worker process, timing it.  Case ``i`` of reader ``r`` depends only on
``--seed``, ``r`` and ``i``, so ``--readers r --replay i`` reruns one case.  Any exception but
DepthError, a worker crash, a case over ``--hang`` seconds or a worker over ``--memory-mib`` (its
address space is limited, so a runaway allocation fails as MemoryError) is a finding; so is a case over
its budget in ``gpu_depth.limits.READ_BUDGETS`` (CPU seconds, and the peak memory it added to its process).

    python bench/fuzz.py --cases 1000 --seed 1
    python bench/fuzz.py --readers heif --replay 123 --seed 1 --save case.heic
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import random
import re
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_depth import DepthData, DepthError, DepthMetadata, Matte
from gpu_depth.api import decode_photo
from gpu_depth.containers import sniff
from gpu_depth.containers.dng import plugin as dng
from gpu_depth.containers.dng.tiff import TYPES, TiffFile
from gpu_depth.containers.heic import isobmff
from gpu_depth.containers.heic import plugin as heic
from gpu_depth.containers.heic.depth_sei import parse_aux_subtype
from gpu_depth.containers.jpeg import gdepth
from gpu_depth.containers.jpeg import plugin as jpeg
from gpu_depth.containers.jpeg.segments import APP1, APP2, parse_jpeg
from gpu_depth.core.metadata import CameraCalibration
from gpu_depth.core.xmp import parse_depth_xmp
from gpu_depth.depthmaps import load_depth_map
from gpu_depth.limits import read_budget
from gpu_depth.verify import verify_bytes

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
READERS = ("heif", "isobmff", "jpeg", "dng", "xmp", "loaders", "attach", "photo", "verify")
#: JPEG segments that describe the coding: SOF0-3, DHT, SOS, DRI.
CODING_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xDA, 0xDD})
#: Values written into 16/32-bit length, count and offset fields.
INTERESTING = (0, 1, 2, 3, 4, 7, 8, 12, 16, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000)
INTERESTING32 = (0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0x01000000, 0x00FFFFFF)


class Seed:
    """One seed file: its bytes, a name, the suffix it is loaded with and its (position, width, order) fields."""

    def __init__(self, name: str, data: bytes, suffix: str = "", fields: list | None = None) -> None:
        self.name, self.data, self.suffix = name, data, suffix
        self.fields = fields or []


# ----------------------------------------------------------------------------------------------- seeds


def _photo(width: int = 64, height: int = 48, seed: int = 0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1) + rng.integers(0, 20, (height, width, 3))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def _mattes() -> list:
    from gpu_depth import Matte

    y, x = np.mgrid[0:24, 0:32]
    return [Matte.of("portrait-effects", (x * 8).astype(np.uint8)), Matte.of("hair", (y * 10).astype(np.uint8))]


def _depths() -> list[DepthData]:
    from gpu_depth.convert import convert
    from gpu_depth.core.mapping import DepthMapping

    y, x = np.mgrid[0:24, 0:32]
    metres = 0.5 + 2.0 * x / 32 + (y / 24) ** 2
    calibration = CameraCalibration(
        intrinsic_matrix=((700.0, 0.0, 320.0), (0.0, 700.0, 240.0), (0.0, 0.0, 1.0)),
        reference_dimensions=(640, 480),
        lens_distortion_coefficients=(0.0, 1e-4, -2e-5),
        inverse_lens_distortion_coefficients=(0.0, -1e-4, 2e-5),
        lens_distortion_center=(320.5, 240.5),
        pixel_size=0.0014,
    )
    gray = (np.arange(40 * 30) % 256).astype(np.uint8).reshape(30, 40)
    return [
        DepthData.from_array(1.0 / metres, "hdis"),
        DepthData.from_array(metres, "fdep", metadata=DepthMetadata(accuracy="absolute", calibration=calibration)),
        convert(gray, "hdis", DepthMapping("apple-gray", near=0.4, far=6.0)),
    ]


def _samples(suffix: str) -> list[Seed]:
    if not SAMPLES.is_dir():
        return []
    return [Seed(p.name, p.read_bytes()) for p in sorted(SAMPLES.glob(f"*{suffix}")) if p.is_file()]


def heif_seeds() -> list[Seed]:
    depths = _depths()
    photo = heic.encode_photo(_photo(), quality=60, encoder_preset="ultrafast")
    seeds = [
        Seed("heic-hdis-lossless", heic.attach_depth(photo, depths[0])),
        Seed("heic-fdep-calibrated-lossy", heic.attach_depth(photo, depths[1], depth_quality=50)),
        Seed("heic-converted", heic.attach_depth(photo, depths[2])),
        Seed("heic-no-depth", photo),
        Seed("heic-mattes", heic.attach_depth(photo, depths[0], mattes=_mattes())),
        *_samples(".heic"),
    ]
    for seed in seeds[:2]:  # the same without the depth XMP item: the range comes from the auxC SEI
        seeds.append(Seed(seed.name + "-sei-only", _without_xmp(seed.data)))
    for seed in seeds:
        seed.fields = isobmff_fields(seed.data)
    return seeds


def _without_xmp(data: bytes) -> bytes:
    parsed = isobmff.parse_file(data)
    depth_id = heic.find_depth_item(parsed.meta)
    parsed.meta.remove_items({heic.xmp_item(parsed.meta, depth_id)})
    return isobmff.rebuild(parsed, parsed.meta)


def jpeg_seeds() -> list[Seed]:
    from PIL import Image

    depths = _depths()
    rotated = _photo(48, 64, 1)
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated.info["exif"] = exif.tobytes()
    plain = jpeg.encode_photo(_photo(), quality=80)
    seeds = [
        Seed("jpeg-mpf-hdis", jpeg.attach_depth(plain, depths[0])),
        Seed("jpeg-mpf-baseline", jpeg.attach_depth(plain, depths[1], coding="baseline")),
        Seed("jpeg-mpf-gdepth", jpeg.attach_depth(plain, depths[1], gdepth=True)),
        Seed(
            "jpeg-gdepth-linear-8bit",
            jpeg.attach_depth(plain, depths[2], gdepth=True, gdepth_format="RangeLinear", gdepth_bits=8),
        ),
        Seed("jpeg-rotated", jpeg.attach_depth(jpeg.encode_photo(rotated, quality=80), depths[0])),
        Seed("jpeg-no-depth", plain),
        Seed("jpeg-mpf-mattes", jpeg.attach_depth(plain, depths[0], mattes=_mattes())),
        *_samples(".jpg"),
    ]
    for seed in seeds:
        seed.fields = jpeg_fields(seed.data)
    return seeds


def _mattes() -> list[Matte]:
    """A portrait-effects and a skin matte, small soft ellipses."""
    y, x = np.mgrid[0:12, 0:20]
    soft = np.clip(255 * (1.5 - np.hypot((x - 10) / 6, (y - 6) / 4)), 0, 255).astype(np.uint8)
    return [Matte.of("portrait-effects", soft), Matte.of("skin", soft // 2)]


def make_dng(byteorder: str = "<", tile: tuple[int, int] | None = None) -> bytes:
    """A small DNG as tests/helpers/dng.py makes them: RGB preview IFD0, CFA raw in a SubIFD."""
    import tifffile

    rng = np.random.default_rng(7)
    camera = [(50706, "B", 4, (1, 4, 0, 0), True), (50708, "s", 0, "fuzz", True), (274, "H", 1, 1, True)]
    stream = io.BytesIO()
    with tifffile.TiffWriter(stream, byteorder=byteorder) as tif:
        tif.write(
            rng.integers(0, 256, (16, 24, 3), dtype=np.uint8),
            photometric="rgb",
            subfiletype=1,
            subifds=1,
            extratags=camera,
        )
        tif.write(
            rng.integers(0, 4096, (32, 48), dtype=np.uint16),
            photometric=32803,
            tile=tile,
            subfiletype=0,
            extratags=[(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True)],
        )
    return stream.getvalue()


def tifffile_depth_dng(byteorder: str, codes: np.ndarray, **options) -> bytes:
    """A DNG whose depth IFD tifffile wrote (Deflate, predictor, tiles…), as tests/helpers/dng.py does."""
    import tifffile

    depth_tags = [(51177, "H", 1, 1, True), (51178, "2I", 1, (1, 2), True), (51179, "2I", 1, (5, 1), True)]
    stream = io.BytesIO()
    with tifffile.TiffWriter(stream, byteorder=byteorder) as tif:
        tags = [(50706, "B", 4, (1, 5, 0, 0), True), *depth_tags]
        tif.write(np.zeros((8, 8, 3), np.uint8), photometric="rgb", subfiletype=1, subifds=1, extratags=tags)
        tif.write(codes, photometric=51177, subfiletype=8, **options)
    return stream.getvalue()


def dng_seeds() -> list[Seed]:
    depths = _depths()
    codes = (np.arange(24 * 40) * 67 % 65536).astype(np.uint16).reshape(24, 40)
    seeds = [
        Seed("dng-le-fdep", dng.attach_depth(make_dng("<"), depths[1])),
        Seed("dng-be-hdis-tiled-raw", dng.attach_depth(make_dng(">", (16, 16)), depths[0])),
        Seed("dng-deflate-predictor", tifffile_depth_dng("<", codes, compression="zlib", predictor=True)),
        Seed("dng-tiled-8bit", tifffile_depth_dng(">", (codes >> 8).astype(np.uint8), tile=(16, 16))),
        Seed("dng-no-depth", make_dng("<")),
        Seed("dng-depth-mattes", dng.attach_depth(make_dng("<"), depths[0], mattes=_mattes())),
    ]
    for seed in seeds:
        seed.fields = tiff_fields(seed.data)
    return seeds


def xmp_seeds() -> list[Seed]:
    from gpu_depth.containers.jpeg.segments import XMP_ID
    from gpu_depth.core.quantize import quantize
    from gpu_depth.core.xmp import build_depth_xmp

    seeds = []
    for depth in _depths():
        stored = quantize(depth)
        seeds.append(Seed(f"xmp-{depth.pixel_format.fourcc}", build_depth_xmp(stored.info, depth.metadata)))
    for seed in jpeg_seeds():  # the XMP packets of our JPEGs (GDepth included) and of the iPhone sample
        for image in _images(seed.data):
            for segment in image.applications(seed.data, APP1, XMP_ID):
                seeds.append(Seed(f"xmp-of-{seed.name}@{segment.offset}", segment.payload(seed.data)[len(XMP_ID) :]))
    for seed in heif_seeds():
        if seed.name.startswith("iphone"):
            found = re.search(rb"<x:xmpmeta.*?</x:xmpmeta>", seed.data, re.S)
            if found:
                seeds.append(Seed(f"xmp-of-{seed.name}", found[0]))
    return seeds


def loader_seeds() -> list[Seed]:
    import tifffile
    from PIL import Image

    gray8 = (np.arange(24 * 32) % 256).astype(np.uint8).reshape(24, 32)
    gray16 = (np.arange(24 * 32) * 83 % 65536).astype(np.uint16).reshape(24, 32)
    metres = np.linspace(0.2, 9.0, 24 * 32, dtype=np.float32).reshape(24, 32)
    seeds = []
    for name, array, suffix in (("png8", gray8, ".png"), ("png16", gray16, ".png"), ("pgm", gray8, ".pgm")):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "PPM" if suffix == ".pgm" else "PNG")
        seeds.append(Seed(name, buffer.getvalue(), suffix, png_fields(buffer.getvalue())))
    for name, array, options in (
        ("tif16", gray16, {}),
        ("tif-float", metres, {}),
        ("tif-zlib", gray16, {"compression": "zlib"}),
    ):
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, array, **options)
        seeds.append(Seed(name, buffer.getvalue(), ".tif", tiff_fields(buffer.getvalue())))
    for name, array in (("npy-u16", gray16), ("npy-f32", metres)):
        buffer = io.BytesIO()
        np.save(buffer, array)
        seeds.append(Seed(name, buffer.getvalue(), ".npy"))
    return seeds


def photo_seeds() -> list[Seed]:
    """Photos in the formats attach_depth converts with Pillow (PNG, TIFF, WebP, HEIC, JPEG with Exif)."""
    import tifffile
    from PIL import Image

    image = _photo(24, 16, 2)
    exif = Image.Exif()
    exif[0x0112] = 8
    seeds = []
    for suffix, options in ((".png", {}), (".webp", {"lossless": True}), (".jpg", {"exif": exif.tobytes()})):
        buffer = io.BytesIO()
        image.save(buffer, suffix[1:].replace("jpg", "jpeg"), **options)
        seeds.append(Seed(f"photo{suffix}", buffer.getvalue(), suffix, png_fields(buffer.getvalue())))
    for name, options in (("photo-raw.tif", {}), ("photo-zlib.tif", {"compression": "zlib"})):
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, np.asarray(image), photometric="rgb", **options)
        seeds.append(Seed(name, buffer.getvalue(), ".tif", tiff_fields(buffer.getvalue())))
    heic_photo = heic.encode_photo(image, quality=50, encoder_preset="ultrafast")
    seeds.append(Seed("photo.heic", heic_photo, ".heic", isobmff_fields(heic_photo)))
    return seeds


# ----------------------------------------------------------------------------------------------- fields


def isobmff_fields(data: bytes) -> list[tuple[int, int, str]]:
    """Box sizes everywhere, and every 16/32-bit word of the meta box (item tables)."""
    fields: list[tuple[int, int, str]] = []
    containers = {"meta": 4, "iprp": 0, "ipco": 0, "iinf": 6, "iref": 4, "dinf": 0}

    def walk(start: int, end: int, depth: int) -> None:
        for box in isobmff.read_boxes(data, start, end, depth):
            fields.append((box.offset, 4, ">"))
            skip = containers.get(box.type)
            if skip is not None and box.end - box.start > skip:
                try:
                    walk(box.start + skip, box.end, depth + 1)
                except DepthError:
                    pass

    walk(0, len(data), 0)
    meta = next(box for box in isobmff.read_boxes(data, 0, len(data)) if box.type == "meta")
    fields += [(pos, width, ">") for pos in range(meta.start, meta.end - 3, 2) for width in (2, 4)]
    return fields


def _images(data: bytes):
    primary = parse_jpeg(data)
    images = [primary]
    found = primary.applications(data, APP2, b"MPF\0")
    if found:
        from gpu_depth.containers.jpeg import mpf

        tiff_at = found[0].offset + 8
        for entry in mpf.parse_index(data[tiff_at : found[0].end], tiff_at).entries[1:]:
            images.append(parse_jpeg(data, tiff_at + entry.offset))
    return images


def jpeg_fields(data: bytes) -> list[tuple[int, int, str]]:
    """Segment lengths of every image, the words of MPF payloads and coding headers, Extended XMP chunk headers."""
    fields = []
    for image in _images(data):
        for segment in image.segments:
            fields.append((segment.offset + 2, 2, ">"))
            payload = segment.offset + 4
            if segment.marker in CODING_MARKERS:  # frame size and precision, Huffman BITS, predictor, restarts
                fields += [(pos, 2, ">") for pos in range(payload, min(segment.end - 1, payload + 24))]
            if segment.marker == APP2 and data.startswith(b"MPF\0", payload):
                order = "<" if data.startswith(b"II", payload + 4) else ">"
                fields += [(pos, width, order) for pos in range(payload + 4, segment.end - 3, 2) for width in (2, 4)]
            if segment.marker == APP1 and data.startswith(b"http://ns.adobe.com/xmp/extension/\0", payload):
                head = payload + 35 + 32
                fields += [(head, 4, ">"), (head + 4, 4, ">")]
    return fields


def tiff_fields(data: bytes) -> list[tuple[int, int, str]]:
    """Every IFD's count, each entry's type, count and value field, next-IFD offsets, integer value arrays."""
    tiff = TiffFile(data)
    order = tiff.format.byteorder
    fields = [(4, 4, order)]
    for ifd in tiff.walk():
        fields.append((ifd.offset, 2, order))
        for index, entry in enumerate(ifd.entries.values()):
            at = ifd.offset + 2 + 12 * index
            fields += [(at + 2, 2, order), (at + 4, 4, order), (at + 8, 4, order)]
            size = TYPES[entry.type].size
            if entry.count * size > 4 and entry.type in (3, 4, 13):
                (start,) = struct.unpack_from(order + "I", data, at + 8)
                fields += [(start + i * size, size, order) for i in range(min(entry.count, 64))]
        fields.append((ifd.offset + 2 + 12 * len(ifd.entries), 4, order))
    return fields


def png_fields(data: bytes) -> list[tuple[int, int, str]]:
    """PNG chunk lengths and IHDR's width/height (PGM has none: its header is text)."""
    if not data.startswith(b"\x89PNG"):
        return []
    fields, pos = [(16, 4, ">"), (20, 4, ">")], 8
    while pos + 8 <= len(data):
        fields.append((pos, 4, ">"))
        pos += 12 + struct.unpack_from(">I", data, pos)[0]
    return fields


# ----------------------------------------------------------------------------------------------- mutations


def _flip(rng: random.Random, data: bytearray, seed: Seed, others: list[Seed]) -> bytearray:
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        pos = rng.randrange(len(data))
        data[pos] = data[pos] ^ (1 << rng.randrange(8)) if rng.random() < 0.5 else rng.randrange(256)
    return data


def _truncate(rng: random.Random, data: bytearray, seed: Seed, others: list[Seed]) -> bytearray:
    return data[: rng.randrange(len(data))]


def _field(rng: random.Random, data: bytearray, seed: Seed, others: list[Seed]) -> bytearray:
    if seed.fields and rng.random() < 0.85:
        pos, width, order = rng.choice(seed.fields)
    else:
        width, order = rng.choice((2, 4)), rng.choice("<>")
        pos = rng.randrange(len(data))
    if pos + width > len(data):
        return data
    code = order + ("H" if width == 2 else "I")
    (old,) = struct.unpack_from(code, data, pos)
    choices = [*INTERESTING, old + 1, old - 1, old + 8, old - 8, old * 2, len(data), len(data) - pos, old + len(data)]
    if width == 4:
        choices += INTERESTING32
    struct.pack_into(code, data, pos, rng.choice(choices) % (1 << (8 * width)))
    return data


def _duplicate(rng: random.Random, data: bytearray, seed: Seed, others: list[Seed]) -> bytearray:
    start = rng.randrange(len(data))
    chunk = data[start : start + rng.choice((4, 8, 16, 64, 256, 4096))]
    at = rng.randrange(len(data) + 1)
    return data[:at] + chunk * rng.choice((1, 1, 2, 16)) + data[at:]


def _delete(rng: random.Random, data: bytearray, seed: Seed, others: list[Seed]) -> bytearray:
    start = rng.randrange(len(data))
    return data[:start] + data[start + rng.choice((1, 2, 4, 8, 64, 1024)) :]


def _splice(rng: random.Random, data: bytearray, seed: Seed, others: list[Seed]) -> bytearray:
    donor = rng.choice(others).data
    start = rng.randrange(len(donor))
    chunk = donor[start : start + rng.choice((8, 64, 512, 8192))]
    at = rng.randrange(len(data) + 1)
    if rng.random() < 0.5:
        return data[:at] + chunk + data[at:]
    return data[:at] + chunk + data[at + len(chunk) :]


def _digits(rng: random.Random, data: bytearray, seed: Seed, others: list[Seed]) -> bytearray:
    """Replace one run of ASCII digits (a number in XMP, a PGM header, a .npy shape) with a hostile one."""
    runs = [m.span() for m in re.finditer(rb"[0-9]+(?:\.[0-9]+)?", data[:65536])]
    if not runs:
        return data
    start, end = rng.choice(runs)
    value = rng.choice(
        (
            b"0",
            b"-1",
            b"1e999",
            b"nan",
            b"-inf",
            b"4294967296",
            b"99999999999999999999",
            b"",
            b"x",
            b"65536",
            b"1e-320",
            b"2147483647",
        )
    )
    return data[:start] + value + data[end:]


XML_SNIPPETS = (
    b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    b'<!DOCTYPE x SYSTEM "file:///etc/passwd">',
    b'<!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1/">]>',
    b"&e;",
    b"&amp;&lt;&#xFFFF;&#0;",
    b"<rdf:li>1</rdf:li>" * 64,
    b"<a>" * 2000,
    b"</rdf:Description>",
    b'<rdf:Description rdf:about="" xmlns:apdi="http://ns.apple.com/pixeldatainfo/1.0/" apdi:AuxiliaryImageType="x"/>',
    b"<?xml version='1.0' encoding='utf-16'?>",
    b"<![CDATA[" + b"]" * 100,
    b'x="' + b"A" * 5000 + b'"',
    b"\xff\xfe\x00",
)


def _xml(rng: random.Random, data: bytearray, seed: Seed, others: list[Seed]) -> bytearray:
    """XML-aware edits: hostile snippets at a tag boundary, tags deleted, values swapped."""
    marks = [m.start() for m in re.finditer(rb"[<>]", data)] or [0]
    at = rng.choice(marks)
    choice = rng.random()
    if choice < 0.5:
        return data[:at] + rng.choice(XML_SNIPPETS) + data[at:]
    if choice < 0.75:
        return data[:at] + data[at + rng.randrange(1, 200) :]
    close = data.find(b">", at + 1)
    return data[:at] + data[at : close + 1] * rng.choice((2, 3, 50)) + data[close + 1 :] if close > 0 else data


BINARY_OPS = (_flip, _flip, _truncate, _field, _field, _field, _duplicate, _delete, _splice, _digits)
TEXT_OPS = (_flip, _truncate, _duplicate, _delete, _splice, _digits, _digits, _xml, _xml, _xml)


def make_case(reader: str, seeds: list[Seed], run_seed: int, index: int) -> tuple[Seed, bytes, list[str]]:
    """Case ``index`` of ``reader``: the seed it started from, the mutated bytes, the operations applied."""
    rng = random.Random(f"{run_seed}/{reader}/{index}")
    seed = rng.choice(seeds)
    data = bytearray(seed.data)
    ops = TEXT_OPS if reader == "xmp" else BINARY_OPS
    applied = []
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        if not data:
            break
        op = rng.choice(ops)
        data = op(rng, data, seed, seeds)
        applied.append(op.__name__[1:])
    return seed, bytes(data), applied


# ----------------------------------------------------------------------------------------------- readers


def _calls(*calls: Callable[[], object]) -> None:
    """Run each call; DepthError from one does not stop the next; the first DepthError is re-raised."""
    first = None
    for call in calls:
        try:
            call()
        except DepthError as exc:
            first = first or exc
    if first is not None:
        raise first


#: Files up to this size also have their mattes decoded (the iPhone 14 sample's five would dominate the run).
MATTE_DECODE_BYTES = 1 << 20


def run_heif(data: bytes, seed: Seed) -> None:
    mattes = [lambda: heic.read_mattes(data)] if len(data) <= MATTE_DECODE_BYTES else []
    _calls(
        lambda: heic.read_depth(data),
        lambda: heic.orientation(data),
        lambda: heic.displayed_size(data),
        lambda: heic.displayed_size(heic.head(_reader(data), len(data))),  # the pipeline driver's read
        lambda: heic.auxiliary_images(data),
        *mattes,
    )


def _reader(data: bytes):
    """``read(offset, length)`` over ``data``, as the pipeline reads a file's ranges."""
    return lambda offset, length: data[offset : offset + length]


def run_isobmff(data: bytes, seed: Seed) -> None:
    parsed = isobmff.parse_file(memoryview(data))
    meta = parsed.meta
    calls = [lambda: isobmff.rebuild(parsed, meta), lambda: heic.find_depth_item(meta)]
    for item in meta.items:
        calls.append(lambda i=item.item_id: isobmff.item_data(parsed, i, 1 << 24))
        calls.append(
            lambda i=item.item_id: heic._aux_type(meta, i)[1] and parse_aux_subtype(heic._aux_type(meta, i)[1])
        )
    _calls(*calls)


def run_jpeg(data: bytes, seed: Seed) -> None:
    """read_depth returns the MPF map when there is one; GDepth is read on its own too."""
    _calls(
        lambda: jpeg.read_depth(data),
        lambda: jpeg.orientation(data),
        lambda: jpeg.displayed_size(data),
        lambda: jpeg.displayed_size(jpeg.head(_reader(data), len(data))),  # the pipeline driver's read
        lambda: gdepth.read(data, parse_jpeg(data)),
        lambda: jpeg.auxiliary_images(data),
        *([lambda: jpeg.read_mattes(data)] if len(data) <= MATTE_DECODE_BYTES else []),
    )


def run_dng(data: bytes, seed: Seed) -> None:
    _calls(
        lambda: dng.read_depth(data),
        lambda: dng.orientation(data),
        lambda: dng.displayed_size(data),
        lambda: dng.auxiliary_images(data),
        lambda: dng.read_mattes(data),
    )


def attach_seeds() -> list[Seed]:
    return heif_seeds() + jpeg_seeds() + dng_seeds()


_SMALL_MAP = np.linspace(0.25, 4.0, 12).reshape(3, 4)


def run_attach(data: bytes, seed: Seed) -> None:
    """Attach a small map to the (mutated) photo: what attach_depth writes must read back with that map
    and keep the photo's own coded bytes (HEIF items, the JPEG primary's scans, every DNG byte)."""
    module = sniff(data)
    if module is None:
        raise DepthError("not a HEIC, JPEG or DNG file")
    depth = DepthData.from_array(_SMALL_MAP, "fdep" if module is dng else "hdis")
    out = module.attach_depth(data, depth, replace=True)
    try:
        back = module.read_depth(out)
    except DepthError as exc:
        raise AssertionError(f"attach_depth wrote a {module.NAME} file read_depth refuses: {exc}") from None
    if back is None or (back.width, back.height) != (depth.width, depth.height):
        raise AssertionError(f"attach_depth wrote a {module.NAME} file whose depth map reads back as {back}")
    lost = {heic: _heif_items_lost, jpeg: _jpeg_scans_lost, dng: _dng_bytes_lost}[module](data, out)
    if lost:
        raise AssertionError(f"attach_depth lost part of the {module.NAME} photo: {lost}")


def _heif_items_lost(photo: bytes, out: bytes) -> str:
    before, after = isobmff.parse_file(photo), isobmff.parse_file(out)
    dropped = set(heic.depth_items(before.meta))
    dropped |= {x for d in dropped if (x := heic.xmp_item(before.meta, d)) is not None}
    for item in before.meta.items:
        if item.item_id in dropped:
            continue
        try:
            kept = isobmff.item_data(before, item.item_id)
        except DepthError:
            continue  # an item the photo itself cannot deliver
        if isobmff.item_data(after, item.item_id) != kept:
            return f"item {item.item_id} ({item.item_type}) changed"
    return ""


def _jpeg_scans_lost(photo: bytes, out: bytes) -> str:
    def scans(data: bytes) -> bytes:
        image = parse_jpeg(data)
        return (
            data[image.segments[len(image.header)].offset : image.end]
            if len(image.header) < len(image.segments)
            else b""
        )

    return "" if scans(photo) == scans(out) else "the primary image's scans changed"


def _dng_bytes_lost(photo: bytes, out: bytes) -> str:
    same = out[:4] == photo[:4] and out[8 : len(photo)] == photo[8:]
    return "" if same else "bytes other than the first IFD offset changed"


def run_verify(data: bytes, seed: Seed) -> None:
    """verify (and inspect, which calls it to locate the depth) on a mutated photo."""
    verify_bytes(data)


def run_xmp(data: bytes, seed: Seed) -> None:
    parse_depth_xmp(data)


#: The folder run_loaders writes each case's file to (the loader reads paths); each worker makes its own.
SCRATCH: list[Path] = []


def _scratch(data: bytes, name: str) -> Path:
    if not SCRATCH:
        SCRATCH.append(Path(tempfile.mkdtemp(prefix="gpu-depth-fuzz-")))
    path = SCRATCH[0] / name
    path.write_bytes(data)
    return path


def run_loaders(data: bytes, seed: Seed) -> None:
    load_depth_map(_scratch(data, f"map{seed.suffix}"))


def run_photo(data: bytes, seed: Seed) -> None:
    """Decode a photo as attach_depth does before re-encoding it, then re-encode it as JPEG."""
    jpeg.encode_photo(decode_photo(_scratch(data, f"photo{seed.suffix}")), quality=80)


RUNNERS = {
    "heif": (heif_seeds, run_heif),
    "isobmff": (heif_seeds, run_isobmff),
    "jpeg": (jpeg_seeds, run_jpeg),
    "dng": (dng_seeds, run_dng),
    "xmp": (xmp_seeds, run_xmp),
    "loaders": (loader_seeds, run_loaders),
    "attach": (attach_seeds, run_attach),
    "photo": (photo_seeds, run_photo),
    "verify": (attach_seeds, run_verify),
}


def run_case(reader: str, seeds: list[Seed], run_seed: int, index: int) -> tuple[str, float, float, str | None]:
    """(outcome, wall seconds, CPU seconds, traceback): outcome is ``ok``, ``DepthError`` or the leaked type."""
    seed, data, ops = make_case(reader, seeds, run_seed, index)
    where = f"case {index} (seed {seed.name}, {'+'.join(ops)}, {len(data)} bytes)"
    resident, peak = _resident(), _peak()
    start, cpu = time.perf_counter(), time.process_time()
    try:
        RUNNERS[reader][1](data, seed)
        outcome, trace = "ok", None
    except DepthError:
        outcome, trace = "DepthError", None
    except Exception as exc:
        outcome = type(exc).__name__
        trace = f"{where}:\n{traceback.format_exc()}"
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    over = _over_budget(len(data), cpu, _peak() - resident if _peak() > peak else 0)
    if over and not trace:
        outcome, trace = "over budget", f"{where}: over budget: {over}"
    return outcome, seconds, cpu, trace


def _over_budget(size: int, cpu: float, added: int) -> str:
    """What of a case's cost exceeds the budget for its input size (``added``: bytes it added to the peak)."""
    budget = read_budget(size)
    if budget is None:
        return ""
    memory, seconds = budget
    over = [f"{cpu:.2f} s CPU > {seconds:g} s"] if cpu > seconds else []
    return ", ".join(over + ([f"{added >> 20} MiB peak > {memory >> 20} MiB"] if added > memory else []))


def _resident() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    """This process's peak resident memory so far, in bytes (a case raises it only past earlier peaks)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10


# ----------------------------------------------------------------------------------------------- workers


def _worker(
    conn, task: tuple[str, int, int], slot: int, current, started, seeds: dict, run_seed: int, memory: int
) -> None:
    """Run one chunk of cases in a fresh process; send counts, slowest case, tracebacks and its peak RSS."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.simplefilter("ignore")  # Pillow's warnings on broken files; readers that need one catch it locally
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # libtiff and libheif print to C stderr
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    reader, begin, end = task
    counts, slowest, busiest, traces = Counter(), (0.0, begin), (0.0, begin), []
    for index in range(begin, end):
        current[slot], started[slot] = index, time.time()
        outcome, seconds, cpu, trace = run_case(reader, seeds[reader], run_seed, index)
        counts[outcome] += 1
        slowest, busiest = max(slowest, (seconds, index)), max(busiest, (cpu, index))
        if trace and len(traces) < 3:
            traces.append(trace)
    started[slot] = 0.0
    for folder in SCRATCH:
        shutil.rmtree(folder, ignore_errors=True)
    conn.send((dict(counts), slowest, busiest, traces, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


class Stats:
    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.slowest = (0.0, -1)  # (wall seconds, case) of the slowest case
        self.busiest = (0.0, -1)  # (CPU seconds, case) of the case that used most CPU
        self.replayed = 0.0  # wall seconds of the slowest case run again alone after the run
        self.traces: list[str] = []
        self.rss = 0
        self.seconds = 0.0

    @property
    def cases(self) -> int:
        return sum(self.counts.values())

    @property
    def other(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind not in ("ok", "DepthError"))


def fuzz(
    readers: list[str],
    cases: int,
    run_seed: int,
    jobs: int,
    chunk: int,
    hang: float,
    memory: int,
    progress: Path | None,
) -> dict[str, Stats]:
    seeds = {}
    for reader in readers:
        started = time.perf_counter()
        seeds[reader] = RUNNERS[reader][0]()
        print(f"{reader}: {len(seeds[reader])} seeds in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    tasks = [(r, b, min(b + chunk, cases)) for b in range(0, cases, chunk) for r in readers]
    tasks.reverse()
    stats = {reader: Stats() for reader in readers}
    ctx = mp.get_context("fork")
    current, started = ctx.Array("q", jobs, lock=False), ctx.Array("d", jobs, lock=False)
    workers: list = [None] * jobs  # (process, connection, task, start time) per busy slot

    def feed(slot: int) -> None:
        """Start the next task in a fresh worker process (so each reports its own peak RSS)."""
        workers[slot] = None
        if tasks:
            task = tasks.pop()
            parent, child = ctx.Pipe(duplex=False)
            args = (child, task, slot, current, started, seeds, run_seed, memory)
            started[slot] = 0.0
            proc = ctx.Process(target=_worker, args=args, daemon=True)
            proc.start()
            child.close()
            workers[slot] = (proc, parent, task, time.perf_counter())

    def finish(slot: int, grace: float = 5.0) -> None:
        proc, conn, _, _ = workers[slot]
        proc.join(grace)  # a worker that sent its results exits by itself
        proc.kill()
        proc.join()
        conn.close()

    def lost(slot: int, why: str) -> None:
        """A worker died or hung on case current[slot]: record it, and queue the chunk's other cases again
        (the results of those it had run died with it)."""
        _, _, (reader, begin, end), since = workers[slot]
        index = current[slot] if begin <= current[slot] < end else begin
        stats[reader].counts[why] += 1
        if len(stats[reader].traces) < 3:
            stats[reader].traces.append(f"case {index}: worker {why}")
        stats[reader].seconds += time.perf_counter() - since
        finish(slot, grace=0.0)
        tasks.extend(task for task in ((reader, begin, index), (reader, index + 1, end)) if task[1] < task[2])
        feed(slot)

    for slot in range(jobs):
        feed(slot)
    begun, reported = time.perf_counter(), time.perf_counter()
    try:
        while any(workers):
            conns = {workers[s][1]: s for s in range(jobs) if workers[s]}
            for conn in wait(list(conns), timeout=1.0):
                slot = conns[conn]
                try:
                    counts, slowest, busiest, traces, rss = conn.recv()
                except (EOFError, OSError):
                    workers[slot][0].join()
                    lost(slot, f"crash (exit {workers[slot][0].exitcode})")
                    continue
                reader = workers[slot][2][0]
                entry = stats[reader]
                entry.counts.update(counts)
                entry.slowest, entry.busiest = max(entry.slowest, slowest), max(entry.busiest, busiest)
                entry.traces += traces[: 3 - len(entry.traces)]
                entry.rss = max(entry.rss, rss)
                entry.seconds += time.perf_counter() - workers[slot][3]
                finish(slot)
                feed(slot)
            for slot in range(jobs):
                if workers[slot] and started[slot] and time.time() - started[slot] > hang:
                    lost(slot, f"hang (> {hang:g} s)")
            if time.perf_counter() - reported > 30:
                reported = time.perf_counter()
                done = sum(s.cases for s in stats.values())
                print(
                    f"[{done / (reported - begun):.0f} cases/s] "
                    + ", ".join(f"{r} {s.cases}" for r, s in stats.items()),
                    file=sys.stderr,
                    flush=True,
                )
                if progress:
                    _save(progress, stats, run_seed, time.perf_counter() - begun)
    except KeyboardInterrupt:
        print("interrupted: the table shows the cases finished so far", file=sys.stderr)
    finally:
        for slot in range(jobs):
            if workers[slot]:
                finish(slot)
        if progress:
            _save(progress, stats, run_seed, time.perf_counter() - begun)
    for reader, entry in stats.items():  # a slow case on a shared machine may be a stall: time it again alone
        if entry.slowest[1] >= 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                entry.replayed = run_case(reader, seeds[reader], run_seed, entry.slowest[1])[1]
    for folder in SCRATCH:
        shutil.rmtree(folder, ignore_errors=True)
    if progress:
        _save(progress, stats, run_seed, time.perf_counter() - begun)
    return stats


def _save(path: Path, stats: dict[str, Stats], run_seed: int, elapsed: float) -> None:
    summary = {
        reader: {
            "cases": s.cases,
            "outcomes": dict(s.counts),
            "max_case_s": s.slowest[0],
            "slowest_case": s.slowest[1],
            "slowest_replayed_s": s.replayed,
            "max_case_cpu_s": s.busiest[0],
            "busiest_case": s.busiest[1],
            "peak_rss_mib": s.rss / 1024,
            "traces": s.traces,
        }
        for reader, s in stats.items()
    }
    path.write_text(json.dumps({"seed": run_seed, "elapsed_s": elapsed, "readers": summary}, indent=1))


def table(stats: dict[str, Stats]) -> str:
    lines = [
        "| reader | cases | ok | DepthError | other exceptions | max case wall (s) [case] | that case alone (s) "
        "| max case CPU (s) | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for reader, s in stats.items():
        lines.append(
            f"| {reader} | {s.cases} | {s.counts['ok']} | {s.counts['DepthError']} | {s.other} | "
            f"{s.slowest[0]:.3f} [{s.slowest[1]}] | {s.replayed:.3f} | {s.busiest[0]:.3f} | {s.rss / 1024:.0f} |"
        )
    return "\n".join(lines)


def _interrupt(signum: int, frame: object) -> None:
    """SIGINT or SIGTERM: stop the run; the table shows the cases finished so far."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="cases per reader")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--readers", default=",".join(READERS), help="comma-separated subset of " + " ".join(READERS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--chunk", type=int, default=500, help="cases per task sent to a worker")
    parser.add_argument("--hang", type=float, default=30.0, help="seconds after which a case counts as a hang")
    parser.add_argument("--memory-mib", type=int, default=3072, help="address-space limit of each worker")
    parser.add_argument("--progress", type=Path, help="write the running totals as JSON here")
    parser.add_argument("--replay", type=int, help="run this one case in-process and show its outcome")
    parser.add_argument("--save", type=Path, help="with --replay: write the case's bytes here")
    args = parser.parse_args(argv)
    readers = [r for r in args.readers.split(",") if r]
    unknown = set(readers) - set(READERS)
    if unknown:
        parser.error(f"unknown readers: {', '.join(sorted(unknown))}")
    if args.replay is not None:
        seeds = RUNNERS[readers[0]][0]()
        seed, data, ops = make_case(readers[0], seeds, args.seed, args.replay)
        if args.save:
            args.save.write_bytes(data)
        outcome, seconds, _, trace = run_case(readers[0], seeds, args.seed, args.replay)
        for folder in SCRATCH:
            shutil.rmtree(folder, ignore_errors=True)
        print(
            f"{readers[0]} case {args.replay}: seed {seed.name}, {'+'.join(ops)}, {len(data)} bytes: "
            f"{outcome} in {seconds:.3f} s"
        )
        print(trace or "", end="")
        return int(trace is not None)
    for stop in (signal.SIGINT, signal.SIGTERM):  # also when started in the background, where SIGINT is ignored
        signal.signal(stop, _interrupt)
    started = time.perf_counter()
    stats = fuzz(readers, args.cases, args.seed, args.jobs, args.chunk, args.hang, args.memory_mib << 20, args.progress)
    elapsed = time.perf_counter() - started
    print(table(stats))
    total = sum(s.cases for s in stats.values())
    print(f"\n{total} cases in {elapsed:.0f} s ({total / elapsed:.0f} cases/s, {args.jobs} workers), seed {args.seed}")
    for reader, s in stats.items():
        for trace in s.traces:
            print(f"\n--- {reader} {trace}")
    print(
        "\nA case's wall time includes stalls of a shared machine; 'that case alone' reruns the slowest case "
        "after the run, and CPU time counts the case's own work."
    )
    bad = [r for r, s in stats.items() if s.other or min(s.slowest[0], s.replayed) >= 1.0 or s.busiest[0] >= 1.0]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
