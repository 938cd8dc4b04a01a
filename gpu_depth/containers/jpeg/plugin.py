"""JPEG container: Apple's depth map as a Multi-Picture (MPF) secondary JPEG, as iPhones write it.

Attaching keeps the primary image's bytes and inserts one APP2 ``MPF`` segment (after the APP0/APP1
run, where iPhones put it) or extends the existing one; the depth map follows the primary's EOI and its
other MP images (bytes after those, a Motion Photo's video or Samsung's SEFT trailer, stay last) as a
single-component JPEG with Apple's depth XMP in APP1 and its own small MPF APP2.  iPhones code that
map in one of two ways, and so does :func:`attach_depth`: 16-bit lossless (SOF3, ``L016``, Apple's
choice for unfiltered maps and maps with NaN; the default here, as it reads back exactly) or 8-bit
baseline (``L008``, Apple's choice for filtered maps; quality 100 still moves a few per cent of the
codes by ±1).  Reading accepts any MPF JPEG and ignores the size of MP entry 0, which Apple writes wrong.
Mattes follow the depth as further MP images laid out as the iPhone XS's (:func:`matte_image`).
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ... import limits
from ...core.auxiliary import Matte, parse_matte_xmp
from ...core.depthdata import DepthData
from ...core.formats import StoredFormat
from ...core.orientation import displayed_size as turned
from ...core.quantize import Storage, StoredDepth, StoredMap, dequantize
from ...core.xmp import APDI, build_depth_xmp, parse_depth_xmp, properties
from ...errors import DepthError, ExistingDepth
from .. import exif
from . import ljpeg, mpf
from .gdepth import edit as edit_gdepth
from .gdepth import present as gdepth_present
from .gdepth import read as read_gdepth
from .segments import (
    APP0,
    APP1,
    APP2,
    EXIF_ID,
    MARKERS,
    MAX_MARKERS,
    SOF_MARKERS,
    SOS,
    STANDALONE,
    TEM,
    XMP_ID,
    JpegImage,
    Segment,
    parse_jpeg,
    segment,
)

if TYPE_CHECKING:
    from PIL import Image

NAME = "jpeg"
EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".mpo")  # outputs are .jpg; stereo MPOs are JPEGs too

#: Keyword arguments of :func:`attach_depth` a caller (the pipeline) may pass.
ATTACH_OPTIONS = frozenset({"gdepth", "gdepth_format", "gdepth_bits", "coding", "exif_portrait"})
#: Those :func:`attach_auxiliary` takes: none (mattes are coded as the XS codes them).
AUXILIARY_OPTIONS: frozenset[str] = frozenset()
#: The Exif Orientation tag.
ORIENTATION = 0x0112
#: How the depth map is coded: 16-bit lossless (exact) or 8-bit baseline (the iPhone's filtered maps).
CODINGS = ("lossless", "baseline")
#: Quality of a baseline depth JPEG (libjpeg's 100 moves at most one code by ±1 in a small share of pixels).
DEPTH_QUALITY = 100
#: Exif tags of a TIFF photo's own layout, dropped when its IFD0 becomes a JPEG's Exif.
_TIFF_LAYOUT_TAGS = (254, 256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325, 338, 339, 700)


def accept(prefix: bytes) -> bool:
    return prefix[:3] == b"\xff\xd8\xff"


@dataclass(frozen=True)
class _Secondary:
    """An image an MP entry lists after the primary: entry number, entry, bounds in the file."""

    number: int
    entry: mpf.Entry
    start: int
    end: int


def parse(data: bytes) -> JpegImage:
    """The primary image's segments, for the functions below that take ``parsed`` (one parse an attach)."""
    return parse_jpeg(data)


def read_depth(data: bytes) -> DepthData | None:
    """The disparity/depth map of an MPF JPEG (else of its GDepth XMP), or None.

    MP entries that point outside the file or overlap others (a stale index, as tools that copy only
    the primary stream leave it) are skipped, and an index that cannot be read lists no image:
    ``gpu-depth verify`` names the fault."""
    primary = parse_jpeg(data)
    for image in mp_index(data, primary).images:
        found = _depth_xmp(data, image)
        if found is not None:
            parsed, info, metadata = found
            return dequantize(decode_gray(data, parsed), info, metadata)
    return read_gdepth(data, primary)


def storage(coding: str = "lossless", gdepth: bool = False, **options: object) -> Storage:
    """What :func:`attach_depth` stores of a map for ``coding`` and ``gdepth`` (the other options change
    nothing of it): its 16-bit L016 quantisation (``lossless``) or its 8-bit L008 one (``baseline``), at the
    map's size, in the photo's stored orientation; with ``gdepth`` the float map too (GDepth codes it itself)."""
    return Storage(NAME, StoredFormat.L016 if coding == "lossless" else StoredFormat.L008, float_map=bool(gdepth))


def attach_depth(
    photo: bytes,
    depth: DepthData | StoredDepth,
    *,
    replace: bool = False,
    mattes: Sequence[Matte] = (),
    drop_mattes: bool = False,
    gdepth: bool = False,
    gdepth_format: str = "RangeInverse",
    gdepth_bits: int = 16,
    coding: str = "lossless",
    exif_portrait: bool = False,
    parsed: JpegImage | None = None,
) -> bytes:
    """``photo`` with ``depth`` (then ``mattes``) appended as MPF secondary JPEGs, the primary's coded bytes kept.

    ``coding`` is one of :data:`CODINGS`: ``lossless`` (16-bit, exact) or ``baseline`` (8-bit, as
    iPhones store filtered maps).  ``depth``: a float map, quantised here as :func:`storage` says, or a
    :class:`StoredDepth` stored so ahead.

    ``gdepth`` also writes Google's GDepth (``gdepth_format`` RangeInverse or RangeLinear, a
    ``gdepth_bits``-bit PNG) into the primary's XMP and Extended XMP.  ``exif_portrait`` sets the
    primary's Exif CustomRendered to 8 (Portrait), as iPhones write it.

    Existing depth, Apple's MP image or a GDepth, is an error unless ``replace``: then every MP image
    whose XMP describes depth and every GDepth property go, and nothing else (mattes stay unless
    ``drop_mattes`` or one of ``mattes`` replaces their kind).  The MP index is
    rebuilt (dangling entries dropped, a stereo MPO's MP Attribute IFD kept); the other images keep
    their bytes but for the NumberOfImages of their own MPF, set to the new count as iPhones write it.
    ``parsed``: :func:`parse`'s ``photo``, when at hand.
    """
    if coding not in CODINGS:
        raise DepthError(f"unknown depth coding {coding!r}; expected lossless or baseline")
    google = (gdepth, gdepth_format, gdepth_bits)
    return _attach(photo, depth, mattes, replace, replace, drop_mattes, google, coding, exif_portrait, parsed)


def attach_auxiliary(
    photo: bytes, mattes: Sequence[Matte], *, replace: bool = False, drop_mattes: bool = False
) -> bytes:
    """``photo`` with ``mattes`` appended as MPF images, each an 8-bit baseline JPEG with its XMP as the
    iPhone XS stores its portrait matte.  A matte of a kind the photo has is an error unless
    ``replace``; ``drop_mattes`` removes every matte first.  Depth is kept."""
    return _attach(photo, None, mattes, False, replace, drop_mattes, (False, "RangeInverse", 16), "lossless")


def _attach(
    photo, depth, mattes, replace_depth, replace_mattes, drop_mattes, google, coding, exif_portrait=False, parsed=None
):
    primary = parsed or parse_jpeg(photo)
    index = mp_index(photo, primary)
    old = [image for image in index.images if _depth_xmp(photo, image) is not None] if depth is not None else []
    has_gdepth = depth is not None and gdepth_present(photo, primary)
    if (old or has_gdepth) and not replace_depth:
        where = f"MP image {old[0].number + 1} at offset {old[0].start}" if old else "GDepth in its XMP"
        raise ExistingDepth(f"already has a depth map ({where})")
    old += _replaced_mattes(photo, index, mattes, replace_mattes, drop_mattes)
    gdepth, gdepth_format, gdepth_bits = google
    stored, depth = storage(coding, gdepth).stored(depth) if depth is not None else (None, None)
    count = len(index.images) - len(old) + 1 + (stored is not None) + len(mattes)
    body = _recounted(photo, [image for image in index.images if image not in old], count)
    kept, tail = _without(body, primary.end, index.images, old)

    edits = (
        edit_gdepth(photo, primary, depth if gdepth else None, gdepth_format, gdepth_bits)
        if gdepth or has_gdepth
        else []
    )
    if exif_portrait:
        edits.append(_portrait_exif(photo, primary))
    placeholder = segment(APP2, bytes(mpf.index_size(count, index.attributes)))
    if index.segment is None:
        at = primary.after_leading_apps()
        edits.append((at, at, placeholder))
    else:
        edits.append((index.segment.offset, index.segment.end, placeholder))
    head, placed = _splice(photo, primary.end, edits)
    mpf_at = placed[-1]
    tiff_at = mpf.tiff_start(mpf_at)

    added = [depth_image(stored, count, coding)] if stored is not None else []
    added += [matte_image(matte, count) for matte in mattes]
    shift = len(head) - primary.end
    entries = [mpf.Entry(index.primary_attribute, len(head), 0)]
    entries += [mpf.Entry(e.entry.attribute, e.entry.size, e.start + shift - tiff_at, e.entry.dependents) for e in kept]
    # after the last MP image: bytes after that (a Motion Photo's video, Samsung's SEFT trailer) are found
    # from the end of the file, and stay last
    split = max((e.end for e in kept), default=primary.end) - primary.end
    at = len(head) + split
    for image in added:
        entries.append(mpf.Entry(mpf.UNDEFINED_TYPE, len(image), at - tiff_at))
        at += len(image)
    out = bytearray(head)
    out[mpf_at + 4 : mpf_at + len(placeholder)] = mpf.build_index(entries, index.attributes)
    if at >= 1 << 32:
        raise DepthError("the result would exceed the 4 GiB that MPF offsets reach")
    return b"".join([bytes(out), tail[:split], *added, tail[split:]])


def _replaced_mattes(photo: bytes, index: MpIndex, mattes: Sequence[Matte], replace: bool, drop: bool):
    """The MP images attaching ``mattes`` removes: every matte with ``drop``, else those of the kinds
    written (an error unless ``replace``)."""
    kinds = {matte.kind for matte in mattes}
    found = [(image, kind) for image in index.images if (kind := _matte_kind(photo, image)[0]) is not None]
    clash = [(image, kind) for image, kind in found if drop or kind in kinds]
    if clash and not drop and not replace:
        image, kind = clash[0]
        raise ExistingDepth(f"already has a {kind.name} matte (MP image {image.number + 1} at offset {image.start})")
    return [image for image, _ in clash]


def auxiliary_images(data: bytes, parsed: JpegImage | None = None) -> list[tuple[str, int, int]]:
    """(type, width, height) of every MP image after the primary, nothing decoded: ``depth``, a matte
    kind's name, the XMP's ``apdi:AuxiliaryImageType`` of any other (gain maps), else ``image``.
    ``parsed``: :func:`parse`'s ``data``, when at hand."""
    found = []
    for image in mp_index(data, parsed or parse_jpeg(data)).images:
        kind = "image"
        if image.entry.attribute & mpf.FORMAT_BITS:
            found.append((kind, 0, 0))
            continue
        parsed = parse_jpeg(data, image.start, image.end)
        for xmp in parsed.xmp_packets(data):
            matte, _ = parse_matte_xmp(xmp)
            image_type = properties(xmp).get((APDI, "AuxiliaryImageType"))
            if matte is not None or isinstance(image_type, str):
                kind = matte.name if matte else "depth" if _depth_xmp(data, image) else image_type
                break
        frame = parsed.frame(data)
        found.append((kind, *((frame.width, frame.height) if frame else (0, 0))))
    return found


def read_mattes(data: bytes) -> list[Matte]:
    """Every matte among an MPF JPEG's images, in file order, with the version its XMP says."""
    mattes = []
    for image in mp_index(data, parse_jpeg(data)).images:
        kind, version, parsed = _matte_kind(data, image)
        if kind is None:
            continue
        pixels = decode_gray(data, parsed)
        if pixels.dtype != np.uint8:
            raise DepthError(f"{kind.name} matte at offset {image.start} is not 8-bit")
        mattes.append(Matte(kind, pixels, version))
    return mattes


def _matte_kind(data: bytes, image: _Secondary):
    """(kind, version, parsed image) of a secondary JPEG whose XMP describes a matte, else (None, None, None)."""
    if image.entry.attribute & mpf.FORMAT_BITS:
        return None, None, None
    parsed = parse_jpeg(data, image.start, image.end)
    for xmp in parsed.xmp_packets(data):
        kind, version = parse_matte_xmp(xmp)
        if kind is not None:
            return kind, version, parsed
    return None, None, None


def matte_image(matte: Matte, count: int) -> bytes:
    """A matte JPEG as the iPhone XS writes it: SOI, APP1 XMP, APP2 MPF {version, ``count``}, then an
    8-bit baseline coding with a restart interval of one MCU row."""
    xmp = segment(APP1, XMP_ID + matte.xmp(True))
    coded = _apple_order(_baseline(matte.pixels, restart_marker_rows=1))
    return b"\xff\xd8" + xmp + segment(APP2, mpf.build_version(count)) + coded


#: The XS matte's header order: quantisation tables, restart interval, frame, one DHT of every table.
_HEADER_ORDER = (0xDB, 0xDD, 0xC0, 0xC4)


def _apple_order(coded: bytes) -> bytes:
    """libjpeg's baseline header (DQT SOF0 DHT DHT DRI, after SOI) reordered as the iPhone writes it
    (DQT DRI SOF0 DHT, the Huffman tables in one segment); the scan is untouched."""
    parsed = parse_jpeg(b"\xff\xd8" + coded)
    header = [s for s in parsed.segments if s.marker != 0xDA]
    scan = parsed.segments[len(header)]
    data = b"\xff\xd8" + coded
    if sorted({s.marker for s in header}) != sorted(_HEADER_ORDER):
        raise DepthError(f"unexpected JPEG header from the matte encoder: {[s.name for s in header]}")
    pieces = []
    for marker in _HEADER_ORDER:
        payloads = [s.payload(data) for s in header if s.marker == marker]
        pieces.append(segment(marker, b"".join(payloads)))
    return b"".join(pieces) + data[scan.offset :]


def _portrait_exif(photo: bytes, primary: JpegImage) -> tuple[int, int, bytes]:
    """The edit that marks the primary's Exif a Portrait: its APP1 Exif segment replaced."""
    found = primary.applications(photo, APP1, EXIF_ID)
    tiff = found[0].payload(photo)[len(EXIF_ID) :] if found else b""
    try:
        marked = segment(APP1, EXIF_ID + exif.with_custom_rendered(tiff))
    except DepthError as exc:
        raise DepthError(f"--exif-portrait: {exc}") from exc
    return found[0].offset, found[0].end, marked


def _recounted(photo: bytes, images: list[_Secondary], count: int) -> bytes:
    """``photo`` with the NumberOfImages of each image's own MPF segment set to ``count`` (same size)."""
    out = bytearray(photo)
    for image in images:
        try:
            found = parse_jpeg(photo, image.start, image.end).applications(photo, APP2, mpf.MPF_ID)
        except DepthError:  # not a JPEG we can walk: left as it is
            continue
        for seg in found:
            at = mpf.tiff_start(seg.offset)
            out[at : seg.end] = mpf.with_number_of_images(photo[at : seg.end], count)
    return bytes(out)


def depth_image(stored: StoredMap, count: int, coding: str = "lossless") -> bytes:
    """Apple's depth JPEG: SOI, APP1 depth XMP, APP2 MPF {version, ``count``}, then the stored map (16-bit for
    ``lossless``, 8-bit for ``baseline``: :func:`storage`) coded by ``coding``."""
    if coding == "lossless":
        coded = ljpeg.encode(stored.pixels)[2:]
    else:
        coded = _baseline(stored.pixels)
    xmp = build_depth_xmp(stored.info, stored.metadata)
    return b"\xff\xd8" + segment(APP1, XMP_ID + xmp) + segment(APP2, mpf.build_version(count)) + coded


def _baseline(pixels: np.ndarray, **options: int) -> bytes:
    """An 8-bit map as libjpeg codes it at :data:`DEPTH_QUALITY` (with Pillow's ``options``), less its
    SOI and JFIF APP0."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=DEPTH_QUALITY, **options)
    coded = buffer.getvalue()
    first = parse_jpeg(coded).segments[0]
    return coded[first.end if first.marker == APP0 and coded.startswith(b"JFIF\0", first.offset + 4) else 2 :]


def encode_photo(
    image: Image.Image, *, quality: int = 90, encoder_preset: str | None = None, encoder_threads: int | None = None
) -> bytes:
    """``image`` (a decoded PNG, TIFF or HEIC) as a JPEG of ``quality``, keeping Exif, ICC profile, orientation.

    ``encoder_preset`` and ``encoder_threads`` (HEVC settings) do not apply to JPEG and are ignored.
    """
    from PIL import Image

    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise DepthError(f"JPEG quality must be an integer in 1..100, got {quality!r}")
    exif = image.getexif()
    if image.format == "TIFF":
        for tag in _TIFF_LAYOUT_TAGS:
            exif.pop(tag, None)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = Image.fromarray((np.asarray(image, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8), "L")
    elif image.mode not in ("L", "RGB", "CMYK"):
        image = image.convert("RGB")
    try:  # a tag stored with another type than Exif's (XResolution as ASCII …) cannot be packed; a broken
        # one Pillow lists but cannot load (KeyError) neither
        exif_bytes = exif.tobytes() if len(exif) else b""
    except (struct.error, TypeError, ValueError, AttributeError, KeyError) as exc:
        raise DepthError(f"the photo's Exif/TIFF tags cannot be written into a JPEG: {exc}") from exc
    buffer = io.BytesIO()
    options = {"icc_profile": image.info.get("icc_profile")} if image.info.get("icc_profile") else {}
    image.save(buffer, "JPEG", quality=quality, exif=exif_bytes, **options)
    return buffer.getvalue()


@dataclass(frozen=True)
class MpIndex:
    """The primary's MPF segment (or None), its MP attribute, the images its entries list after it
    (those that lie in the file, without overlap), its MP Attribute IFD and what was wrong with it."""

    segment: Segment | None
    primary_attribute: int
    images: list[_Secondary]
    attributes: list[mpf.Field]
    faults: list[str]


def mp_index(data: bytes, primary: JpegImage) -> MpIndex:
    """The primary's MP index, read as far as it is sound: a fault drops the entry (or the index) it concerns."""
    found = primary.applications(data, APP2, mpf.MPF_ID)
    if not found:
        return MpIndex(None, mpf.PRIMARY_TYPE, [], [], [])
    tiff_at = mpf.tiff_start(found[0].offset)
    tiff = data[tiff_at : found[0].end]
    try:
        index = mpf.parse_index(tiff, tiff_at)
        attributes = mpf.parse_attributes(tiff, tiff_at)
    except DepthError as exc:
        return MpIndex(found[0], mpf.PRIMARY_TYPE, [], [], [str(exc)])
    placed, faults = [], []
    for number, entry in enumerate(index.entries[1:], 1):
        start, end = tiff_at + entry.offset, tiff_at + entry.offset + entry.size
        if start < primary.end or end > len(data):
            faults.append(
                f"MPF at offset {tiff_at}: MP entry {number} puts {entry.size} bytes at offset {start}, "
                f"outside the data after the primary image ({primary.end}..{len(data)})"
            )
        else:
            placed.append(_Secondary(number, entry, start, end))
    images, reach = [], 0
    for image in sorted(placed, key=lambda i: i.start):  # each image is read once: reading stays linear
        if image.start < reach:
            faults.append(f"MPF at offset {tiff_at}: MP entry {image.number} at offset {image.start} overlaps another")
        else:
            images.append(image)
            reach = image.end
    return MpIndex(found[0], index.entries[0].attribute, images, attributes, faults)


def _depth_xmp(data: bytes, image: _Secondary):
    """(parsed image, PixelDataInfo, metadata) of a secondary JPEG whose XMP describes a depth map, else None."""
    if image.entry.attribute & mpf.FORMAT_BITS:
        return None
    parsed = parse_jpeg(data, image.start, image.end)
    for xmp in parsed.xmp_packets(data):
        info, metadata = parse_depth_xmp(xmp)
        if info is not None and info.is_depth_map:
            return parsed, info, metadata
    return None


def decode_gray(data: bytes, image: JpegImage) -> np.ndarray:
    """The samples of a one-component JPEG: lossless (SOF3, to 16 bits) by :mod:`.ljpeg`, others by Pillow."""
    if any(s.marker == ljpeg.SOF3 for s in image.header):
        return ljpeg.decode(data, image)
    return _decode_baseline(data, image)


def _decode_baseline(data: bytes, image: JpegImage) -> np.ndarray:
    """The 8-bit gray samples of a DCT-coded depth image, decoded by Pillow (libjpeg)."""
    from PIL import JpegImagePlugin, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            decoder = JpegImagePlugin.JpegImageFile(io.BytesIO(data[image.start : image.end]))
            limits.check_pixels(decoder.width, decoder.height, f"depth image at offset {image.start}")
            decoder.load()
    except DepthError:
        raise
    except (OSError, SyntaxError, UnidentifiedImageError, ValueError, Warning) as exc:
        raise DepthError(f"depth image at offset {image.start} cannot be decoded: {exc}") from exc
    if decoder.mode != "L":
        raise DepthError(f"depth image at offset {image.start} is {decoder.mode}, expected 8-bit gray")
    return np.asarray(decoder)


def _without(data: bytes, start: int, images: list[_Secondary], removed: list[_Secondary]):
    """The images kept (at their old offsets less the removed bytes before them) and the trailing bytes."""
    cuts = sorted((image.start, image.end) for image in removed)
    kept = []
    for image in images:
        if image in removed:
            continue
        if any(lo < image.end and image.start < hi for lo, hi in cuts):
            raise DepthError(f"MP image {image.number + 1} at offset {image.start} overlaps the depth image")
        before = sum(hi - lo for lo, hi in cuts if hi <= image.start)
        kept.append(_Secondary(image.number, image.entry, image.start - before, image.end - before))
    pieces, pos = [], start
    for lo, hi in cuts:
        pieces.append(data[pos:lo])
        pos = max(pos, hi)
    pieces.append(data[pos:])
    return kept, b"".join(pieces)


def _splice(data: bytes, end: int, edits: list[tuple[int, int, bytes]]) -> tuple[bytes, list[int]]:
    """``data[:end]`` with each (start, stop, replacement) applied, and where each replacement landed."""
    order = sorted(range(len(edits)), key=lambda i: edits[i][:2])
    pieces, pos, size, placed = [], 0, 0, [0] * len(edits)
    for i in order:
        lo, hi, replacement = edits[i]
        size += lo - pos
        placed[i] = size
        pieces += [data[pos:lo], replacement]
        size += len(replacement)
        pos = hi
    pieces.append(data[pos:end])
    return b"".join(pieces), placed


def head(read: Callable[[int, int], bytes], size: int) -> bytes:
    """What :func:`displayed_size` and :func:`orientation` need of a file of ``size`` bytes that ``read(offset,
    length)`` reads: the primary's frame headers and Exif segments before its first scan, as a JPEG without scans
    (SOI, those segments, EOI); its coded image and other segments (an Extended XMP's MB) are left unread.  A
    header this walk does not expect (fill bytes, an unknown or standalone marker, EOI or a segment past the end
    before a scan) gives the whole file, for the parser to judge as it always does."""
    if size < 2 or read(0, 2) != b"\xff\xd8":
        return read(0, size)
    pieces, pos = [b"\xff\xd8"], 2
    for _ in range(MAX_MARKERS):
        if size - pos < 4:
            break
        header = read(pos, 4)
        marker, length = header[1], int.from_bytes(header[2:], "big")
        if header[0] != 0xFF or marker not in MARKERS or (marker in STANDALONE and marker != TEM):
            break
        if marker == SOS:
            return b"".join([*pieces, b"\xff\xd9"])
        end = pos + (2 if marker == TEM else 2 + length)
        if marker != TEM and (length < 2 or end > size):
            break
        if marker in SOF_MARKERS or (marker == APP1 and length >= 8 and read(pos + 4, 6) == EXIF_ID):
            pieces.append(read(pos, end - pos))
        pos = end
    return read(0, size)


def displayed_size(data: bytes, parsed: JpegImage | None = None) -> tuple[int, int]:
    """The primary image's (width, height) as shown: its SOF size turned by the Exif orientation.
    ``parsed``: :func:`parse`'s ``data``, when at hand."""
    primary = parsed or parse_jpeg(data)
    frame = primary.frame(data)
    if frame is None:
        raise DepthError("the JPEG has no frame header (SOF) before its first scan")
    return turned(frame.width, frame.height, _orientation(data, primary))


def orientation(data: bytes, parsed: JpegImage | None = None) -> int:
    """The Exif Orientation (1-8) of the primary image; 1 when absent or out of range.

    Only the primary's APP1 Exif is parsed (by Pillow's Exif reader): the image itself is not opened,
    so its size (Pillow refuses "decompression bombs" on open) does not matter.  ``parsed``: :func:`parse`'s
    ``data``, when at hand.
    """
    return _orientation(data, parsed or parse_jpeg(data))


def _orientation(data: bytes, primary: JpegImage) -> int:
    from PIL import Image

    found = primary.applications(data, APP1, EXIF_ID)
    if not found:
        return 1
    exif = Image.Exif()
    try:
        exif.load(found[0].payload(data))
        value = exif.get(ORIENTATION, 1)
    except (SyntaxError, struct.error, ValueError, OSError) as exc:
        raise DepthError(f"Exif at offset {found[0].offset}: cannot read its Orientation: {exc}") from exc
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
