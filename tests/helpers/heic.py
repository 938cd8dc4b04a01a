"""HEIC files the HEIC tests build."""

from __future__ import annotations

import io
from dataclasses import replace

import imagecodecs
import numpy as np
import pillow_heif
from PIL import Image

from gpu_depth import DepthData
from gpu_depth.containers.heic import isobmff
from gpu_depth.containers.heic import plugin as heic
from gpu_depth.core.formats import StoredFormat
from gpu_depth.core.quantize import quantize
from gpu_depth.core.xmp import build_depth_xmp


# ----------------------------------------------------------------------------------------------- JPEG depth items
def with_jpeg_depth(data: bytes, depth: DepthData, split: bool) -> bytes:
    """Our HEIC with its depth item recoded as recent iPhones store it: a ``jpeg`` item holding a 16-bit lossless
    JPEG (written by libjpeg-turbo through imagecodecs), its headers in a ``jpgC`` property when ``split``."""
    stored = quantize(depth, StoredFormat.L016)
    coded = imagecodecs.jpeg8_encode(stored.pixels, lossless=True, predictor=1, bitspersample=16)
    parsed = isobmff.parse_file(data)
    meta = parsed.meta
    depth_id = heic.find_depth_item(meta)
    xmp_id = heic.xmp_item(meta, depth_id)
    meta.items = [replace(i, item_type="jpeg", raw=None) if i.item_id == depth_id else i for i in meta.items]
    entries = [(index, essential) for index, essential in meta.associations[depth_id]]
    meta.associations[depth_id] = [(i, e) for i, e in entries if meta.property_type(i) != "hvcC"]
    if split:
        scan = coded.index(b"\xff\xda")
        jpgc = isobmff.box_bytes("jpgC", coded[:scan])
        meta.associations[depth_id].append((meta.add_property(jpgc), True))
        coded = coded[scan:]
    xmp = build_depth_xmp(stored.info, depth.metadata)
    meta.locations[depth_id] = isobmff.Location(depth_id, extents=[isobmff.Extent(0, len(coded))])
    meta.locations[xmp_id] = isobmff.Location(xmp_id, extents=[isobmff.Extent(len(coded), len(xmp))])
    return isobmff.rebuild(parsed, meta, coded + xmp, frozenset({depth_id, xmp_id}))


def sample_mattes(path) -> dict[int, tuple[str, bytes]]:
    """{item ID: (auxC URN, XMP bytes)} of every matte item of a HEIC, read with the box parser only."""
    heif = isobmff.parse_file(path.read_bytes())
    meta, found = heif.meta, {}
    for item in meta.items:
        auxc = meta.first_property(item.item_id, "auxC")
        urn = isobmff.parse_auxc(auxc[1], "auxC")[0] if auxc else ""
        if urn.endswith("matte"):
            (xmp_id,) = meta.referencing("cdsc", item.item_id)
            found[item.item_id] = (urn, isobmff.item_data(heif, xmp_id))
    return found


def random_photo(width: int, height: int, seed: int = 0, **options) -> bytes:
    """A HEIC of random RGB pixels (pillow-heif, quality 60, x265 ultrafast); ``options`` go to its save."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    pillow_heif.from_pillow(image).save(buffer, quality=60, enc_params={"preset": "ultrafast"}, **options)
    return buffer.getvalue()


class _Bits:
    """An RBSP read MSB first (fixed fields and Exp-Golomb codes)."""

    def __init__(self, rbsp: bytes) -> None:
        self.bits, self.at = "".join(f"{byte:08b}" for byte in rbsp), 0

    def u(self, count: int) -> int:
        value = int(self.bits[self.at : self.at + count] or "0", 2)
        self.at += count
        return value

    def ue(self) -> int:
        zeros = self.bits.index("1", self.at) - self.at
        self.at += zeros + 1
        return (1 << zeros) - 1 + self.u(zeros)


def video_signal(hvcc: bytes) -> tuple[int, int, tuple[int, int, int] | None] | None:
    """(video_format, video_full_range_flag, colour description) of the SPS VUI in an ``hvcC`` property, or None
    without a VUI: an independent reading of H.265 7.3.2.2 and E.2.1 for single-layer SPSs without scaling-list
    data, PCM or reference picture sets (ours, x265's and the iPhones')."""
    record, at = hvcc[8:], 23
    for _ in range(record[22]):
        kind, count, at = record[at] & 63, int.from_bytes(record[at + 1 : at + 3], "big"), at + 3
        for _ in range(count):
            length = int.from_bytes(record[at : at + 2], "big")
            nal, at = record[at + 2 : at + 2 + length], at + 2 + length
            if kind == 33:
                return _sps_video_signal(_Bits(nal[2:].replace(b"\0\0\3", b"\0\0")))
    raise AssertionError("hvcC has no SPS")


def _sps_video_signal(r: _Bits) -> tuple[int, int, tuple[int, int, int] | None] | None:
    r.u(4)
    sub_layers = r.u(3) + 1
    r.u(1 + 96)  # temporal ID nesting, profile_tier_level of one sub-layer
    r.ue()
    if r.ue() == 3:  # chroma_format_idc
        r.u(1)
    r.ue(), r.ue()
    if r.u(1):  # conformance window
        [r.ue() for _ in range(4)]
    r.ue(), r.ue(), r.ue()
    for _ in range(sub_layers if r.u(1) else 1):
        r.ue(), r.ue(), r.ue()
    [r.ue() for _ in range(6)]
    assert not (r.u(1) and r.u(1)), "scaling list data"
    r.u(2)  # AMP, SAO
    assert not r.u(1), "PCM"
    assert r.ue() == 0 and not r.u(1), "reference picture sets"
    r.u(2)  # temporal MVP, strong intra smoothing
    if not r.u(1):
        return None
    if r.u(1) and r.u(8) == 255:  # aspect ratio
        r.u(32)
    if r.u(1):  # overscan
        r.u(1)
    if not r.u(1):  # video signal type
        return 5, 0, None
    video_format, full_range = r.u(3), r.u(1)
    return video_format, full_range, (r.u(8), r.u(8), r.u(8)) if r.u(1) else None
