"""DNG 1.5 depth maps: a 16-bit depth IFD (NewSubFileType 8) reached from IFD0's SubIFDs, plus the
IFD0 tags DepthFormat, DepthNear, DepthFar, DepthUnits and DepthMeasureType.

Attaching keeps the whole input file byte for byte where it is and appends the depth samples, the
depth IFD and a rewritten copy of IFD0 (same entries and value fields, SubIFDs extended, Depth*
tags added, DNGVersion raised to 1.5.0.0); the header's first-IFD offset is the only byte changed
in place, so every strip, tile, IFD and tag value of the input keeps its offset.

Samples are quantised to 0…65535 between DepthNear (code 0) and DepthFar (code 65535), both the
map's finite extremes rounded outwards to RATIONALs, in the map's native quantity:

- a depth map (``hdep``/``fdep``) is stored **linear** (DepthFormat 1): ``d = near + v/65535·(far − near)``;
- a disparity map (``hdis``/``fdis``) is stored **inverse** (DepthFormat 2), linear in 1/d:
  ``1/d = 1/near + v/65535·(1/far − 1/near)``, with DepthFar 1/0 (infinity) for zero disparity.

So the codes are evenly spaced in the quantity the map was made in and reading gives it back within
half a code step.  DNG has no code for a hole: a map with NaN pixels is refused (fill them first).

Reading takes 8- or 16-bit depth IFDs in strips or tiles, uncompressed or Deflate (predictor none or
horizontal); lossless JPEG (Compression 7) is refused with a DepthError.

Mattes are DNG 1.6 semantic masks (docs/mattes.md): each an IFD of IFD0's SubIFDs with NewSubFileType
0x10004 and PhotometricInterpretation 52527 (PhotometricMask), 8-bit Deflate strips at the matte's own
size, SemanticName (the kind's URN; the kind's name is read too), MaskSubArea (0, 0, width, height) and the
matte's XMP packet in its XMP tag (700); attaching one raises DNGVersion to 1.6.0.0.  Masks whose
SemanticName names no kind (a ProRAW's own) are kept and listed, never decoded.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ... import limits
from ...core.auxiliary import BY_URN, KINDS, Matte, MatteKind, parse_matte_xmp
from ...core.depthdata import DepthData
from ...core.formats import PixelFormat
from ...core.holes import refuse_holes
from ...core.metadata import DepthMetadata
from ...core.orientation import displayed_size as turned
from ...core.quantize import Storage, StoredDepth, StoredMap
from ...errors import DepthError, ExistingDepth
from .tiff import (
    ASCII,
    BIGTIFF_MAGIC,
    BYTE,
    CLASSIC_MAGIC,
    HEADER_SIZE,
    LONG,
    RATIONAL,
    SHORT,
    SUBIFDS,
    TYPES,
    UNDEFINED,
    Entry,
    Ifd,
    TiffFile,
    TiffFormat,
    make_entry,
    pack_ifd,
    tag_name,
)

NAME = "dng"
EXTENSIONS = (".dng",)
#: Keyword arguments of :func:`attach_depth` a caller (the pipeline) may pass.
ATTACH_OPTIONS = frozenset({"measure_type"})
#: Those :func:`attach_auxiliary` takes.
AUXILIARY_OPTIONS: frozenset[str] = frozenset()

NEW_SUBFILE_TYPE = 254
DEPTH_MAP, REDUCED_DEPTH_MAP = 8, 9
PHOTOMETRIC_DEPTH = 51177
DNG_VERSION, DNG_BACKWARD_VERSION = 50706, 50707
DEPTH_FORMAT, DEPTH_NEAR, DEPTH_FAR, DEPTH_UNITS, DEPTH_MEASURE_TYPE = 51177, 51178, 51179, 51180, 51181
LINEAR, INVERSE = 1, 2
METERS = 1
DEPTH_DNG_VERSION = (1, 5, 0, 0)
#: DNG 1.6 semantic masks: NewSubFileType, PhotometricInterpretation, the mask IFD's tags, XMP (TIFF tag 700).
SEMANTIC_MASK, PHOTOMETRIC_MASK = 0x10004, 52527
SEMANTIC_NAME, SEMANTIC_INSTANCE_ID, MASK_SUB_AREA = 52526, 52528, 52536
XMP = 700
MASK_DNG_VERSION = (1, 6, 0, 0)
#: Longest SemanticName read, and largest mask XMP packet (the DNG SDK reads up to 16 MiB).
MAX_NAME_BYTES = 1 << 12
MAX_XMP_BYTES = 16 << 20
#: The matte kinds a SemanticName names: their URNs (what we write) and their names.
MASK_KINDS: dict[str, MatteKind] = {**KINDS, **BY_URN}
#: Largest code of the 16-bit samples written, and the size aimed at for each strip.
CODE_MAX = 65535
STRIP_BYTES = 1 << 16
#: Most strips or tiles a depth map may have (each is decoded on its own: floods of them took seconds and GBs).
MAX_CHUNKS = 1 << 14
RATIONAL_MAX = 0xFFFFFFFF
INFINITY = (1, 0)
MAX_CLASSIC_SIZE = 1 << 32
(
    IMAGE_WIDTH,
    IMAGE_LENGTH,
    BITS_PER_SAMPLE,
    COMPRESSION,
    PHOTOMETRIC,
    STRIP_OFFSETS,
    SAMPLES_PER_PIXEL,
    ROWS_PER_STRIP,
    STRIP_BYTE_COUNTS,
    PLANAR_CONFIGURATION,
) = 256, 257, 258, 259, 262, 273, 277, 278, 279, 284
ORIENTATION = 274
TILE_WIDTH, TILE_LENGTH, TILE_OFFSETS, TILE_BYTE_COUNTS, SAMPLE_FORMAT, PREDICTOR = 322, 323, 324, 325, 339, 317
UNCOMPRESSED, DEFLATE = 1, 8
NO_PREDICTOR, HORIZONTAL_DIFFERENCING = 1, 2


def accept(prefix: bytes) -> bool:
    """A TIFF header (classic or BigTIFF): only parsing IFD0 tells a DNG from a plain TIFF."""
    return prefix[:4] in CLASSIC_MAGIC or prefix[:4] in BIGTIFF_MAGIC


def parse(data: bytes) -> tuple[TiffFile, list[Ifd]]:
    """The DNG's IFDs, for the functions below that take ``parsed`` (one parse an attach)."""
    return open_dng(data)


def read_depth(data: bytes) -> DepthData | None:
    """The DNG's depth map in its native quantity (``fdep`` for linear, ``fdis`` for inverse), or None."""
    tiff, ifds = open_dng(data)
    found = depth_ifds(tiff, ifds)
    if not found:
        return None
    codes = _read_samples(tiff, found[0])
    form, near, far = depth_range(tiff, ifds[0])
    fraction = codes.astype(np.float64) / float(np.iinfo(codes.dtype).max)
    if form == LINEAR:
        values, fmt = near + fraction * (far - near), PixelFormat.FDEP
    else:
        values, fmt = 1.0 / near + fraction * (1.0 / far - 1.0 / near), PixelFormat.FDIS
    units = scalar(tiff, ifds[0], DEPTH_UNITS, 0)
    metadata = DepthMetadata(accuracy="absolute" if units == METERS else None)  # DepthUnits 0: unknown
    return DepthData.from_array(values, fmt, metadata=metadata)


def read_mattes(data: bytes) -> list[Matte]:
    """Every matte of a DNG (a semantic mask whose SemanticName names a kind), in IFD order, with the
    version its XMP tag says; a mask cropped by MaskSubArea comes back at its uncropped size.  A plain TIFF
    photo has none."""
    try:
        tiff, ifds = open_dng(data)
    except NotADng:
        return []
    mattes = []
    for ifd, kind in matte_ifds(tiff, ifds):
        pixels = _read_samples(tiff, ifd, "mask")
        if pixels.dtype.itemsize == 2:  # DNG 1.6 allows 16-bit masks; a matte is 8-bit
            pixels = np.rint(pixels / 257.0).astype(np.uint8)
        xmp = mask_xmp(ifd)
        mattes.append(Matte(kind, _uncropped(tiff, ifd, pixels), parse_matte_xmp(xmp, kind)[1] if xmp else None))
    return mattes


def auxiliary_images(data: bytes, parsed: tuple[TiffFile, list[Ifd]] | None = None) -> list[tuple[str, int, int]]:
    """(type, width, height) of every depth map and semantic mask, nothing decoded: ``depth``, a matte
    kind's name, else the mask's SemanticName (``semantic mask`` without one).  ``parsed``: :func:`parse`'s
    ``data``, when at hand."""
    tiff, ifds = parsed or open_dng(data)
    found = [("depth", ifd) for ifd in depth_ifds(tiff, ifds)]
    found += [(kind.name if kind else name or "semantic mask", ifd) for ifd, name, kind in semantic_masks(tiff, ifds)]
    return [(kind, *mask_size(tiff, ifd)) for kind, ifd in found]


def semantic_masks(tiff: TiffFile, ifds: list[Ifd]) -> list[tuple[Ifd, str | None, MatteKind | None]]:
    """(IFD, SemanticName, the matte kind it names) of every IFD with NewSubFileType 0x10004."""
    masks = [ifd for ifd in ifds if scalar(tiff, ifd, NEW_SUBFILE_TYPE, 0) == SEMANTIC_MASK]
    return [(ifd, name, MASK_KINDS.get(name or "")) for ifd in masks for name in [semantic_name(ifd)]]


def matte_ifds(tiff: TiffFile, ifds: list[Ifd]) -> list[tuple[Ifd, MatteKind]]:
    """(IFD, kind) of every semantic mask that is a matte."""
    return [(ifd, kind) for ifd, _, kind in semantic_masks(tiff, ifds) if kind is not None]


def semantic_name(ifd: Ifd) -> str | None:
    """A mask IFD's SemanticName (ASCII, or BYTE as the DNG SDK also reads), or None."""
    if SEMANTIC_NAME not in ifd:
        return None
    entry = ifd.entries[SEMANTIC_NAME]
    if entry.type not in (ASCII, BYTE) or entry.count > MAX_NAME_BYTES:
        raise DepthError(f"{ifd.name} tag {entry.name} must be ASCII of at most {MAX_NAME_BYTES} bytes")
    return bytes(entry.value).split(b"\0", 1)[0].decode("latin-1")


def mask_xmp(ifd: Ifd) -> bytes | None:
    """The XMP packet of a mask IFD (tag 700, BYTE or UNDEFINED), or None."""
    if XMP not in ifd:
        return None
    entry = ifd.entries[XMP]
    if entry.type not in (BYTE, UNDEFINED) or entry.count > MAX_XMP_BYTES:
        raise DepthError(f"{ifd.name} tag {entry.name} must be BYTE or UNDEFINED, at most {MAX_XMP_BYTES} bytes")
    return bytes(entry.value)


def mask_sub_area(tiff: TiffFile, ifd: Ifd) -> tuple[int, int, int, int] | None:
    """MaskSubArea (top, left, full width, full height) when present and valid for the stored mask
    (the spec: ignored when the stored mask runs past the full one), else None."""
    if MASK_SUB_AREA not in ifd or ifd.entries[MASK_SUB_AREA].type != LONG or ifd.entries[MASK_SUB_AREA].count != 4:
        return None
    top, left, full_width, full_height = tiff.integers(ifd, MASK_SUB_AREA)
    width, height = scalar(tiff, ifd, IMAGE_WIDTH), scalar(tiff, ifd, IMAGE_LENGTH)
    if top + height > full_height or left + width > full_width:
        return None
    return top, left, full_width, full_height


def mask_size(tiff: TiffFile, ifd: Ifd) -> tuple[int, int]:
    """A depth or mask IFD's (width, height), uncropped by a valid MaskSubArea."""
    area = mask_sub_area(tiff, ifd)
    return area[2:] if area else (scalar(tiff, ifd, IMAGE_WIDTH), scalar(tiff, ifd, IMAGE_LENGTH))


def _uncropped(tiff: TiffFile, ifd: Ifd, pixels: np.ndarray) -> np.ndarray:
    """``pixels`` placed in the full mask a valid MaskSubArea describes (0 outside, as the spec says)."""
    area = mask_sub_area(tiff, ifd)
    if area is None or area[2:] == (pixels.shape[1], pixels.shape[0]):
        return pixels
    top, left, width, height = area
    limits.check_pixels(width, height, f"{ifd.name}: MaskSubArea")
    full = np.zeros((height, width), np.uint8)
    full[top : top + pixels.shape[0], left : left + pixels.shape[1]] = pixels
    return full


@dataclass(frozen=True)
class DepthRange:
    """What IFD0 says of a DNG depth map's 16-bit codes: DepthFormat (LINEAR or INVERSE), DepthNear and
    DepthFar (RATIONAL pairs)."""

    form: int
    near: tuple[int, int]
    far: tuple[int, int]


def stored_codes(depth: DepthData) -> StoredMap:
    """The map as a DNG stores it: :func:`depth_codes`' codes, with their :class:`DepthRange`."""
    codes, form, near, far = depth_codes(depth)
    return StoredMap(codes, DepthRange(form, near, far), depth.metadata)


def storage(**options: object) -> Storage:
    """What :func:`attach_depth` stores of a map (whatever the options): DNG's own 16-bit codes
    (:func:`stored_codes`), at the map's size, in the photo's stored orientation."""
    return Storage(NAME, None, stored_codes)


def attach_depth(
    photo: bytes,
    depth: DepthData | StoredDepth,
    *,
    replace: bool = False,
    measure_type: int = 0,
    mattes: Sequence[Matte] = (),
    drop_mattes: bool = False,
    parsed: tuple[TiffFile, list[Ifd]] | None = None,
    **options: Any,
) -> bytes:
    """``photo`` with ``depth`` (and ``mattes``) attached as a DNG 1.5 depth map (and 1.6 semantic masks),
    every input byte kept in place.  ``depth``: a float map, coded here as :func:`storage` says, or a
    :class:`StoredDepth` stored so ahead.

    ``measure_type``: DepthMeasureType, 0 unknown, 1 along the optical axis, 2 along the optical ray.
    ``replace``: drop an existing depth map from IFD0's SubIFDs (its bytes stay, unreferenced), and the
    masks of the kinds ``mattes`` holds; the photo's other mattes are kept unless ``drop_mattes``.
    ``parsed``: :func:`parse`'s ``photo``, when at hand.
    """
    if options:
        raise DepthError(f"unknown DNG option(s): {', '.join(sorted(options))}")
    if not isinstance(depth, DepthData | StoredDepth):
        raise DepthError(f"depth must be DepthData, got {type(depth).__name__}")
    if measure_type not in (0, 1, 2):
        raise DepthError(f"DepthMeasureType must be 0, 1 or 2, got {measure_type!r}")
    return _attach(photo, depth, mattes, replace, replace, drop_mattes, measure_type, parsed)


def attach_auxiliary(
    photo: bytes, mattes: Sequence[Matte], *, replace: bool = False, drop_mattes: bool = False
) -> bytes:
    """``photo`` with ``mattes`` attached as DNG 1.6 semantic masks, every input byte kept in place.

    A matte of a kind the DNG already has is an error unless ``replace`` (then its mask IFD leaves the
    SubIFDs, its bytes stay); ``drop_mattes`` removes every matte first.  The depth map is kept.
    """
    return _attach(photo, None, mattes, False, replace, drop_mattes, 0)


def _attach(
    photo: bytes,
    depth: DepthData | StoredDepth | None,
    mattes: Sequence[Matte],
    replace_depth: bool,
    replace_mattes: bool,
    drop_mattes: bool,
    measure_type: int,
    parsed: tuple[TiffFile, list[Ifd]] | None = None,
) -> bytes:
    tiff, ifds = parsed or open_dng(photo)
    ifd0 = ifds[0]
    existing = depth_ifds(tiff, ifds) if depth is not None else []
    if existing and not replace_depth:
        raise ExistingDepth(f"the DNG already has a depth map ({existing[0].name})")
    subifds = _kept_subifds(tiff, ifds, existing + _replaced_mattes(tiff, ifds, mattes, replace_mattes, drop_mattes))
    fmt = tiff.format
    tail = _Tail(len(photo))
    tail.data += bytes(claimed_end(tiff, ifds) - len(photo))  # a truncated file's claims stay unmet, not ours
    entries = dict(ifd0.entries)
    if depth is not None:
        subifds.append(_append_depth(tail, fmt, storage().stored(depth)[0], entries, measure_type))
    subifds += [_append_mask(tail, fmt, matte) for matte in mattes]
    if subifds:
        subifd_type = ifd0.entries[SUBIFDS].type if SUBIFDS in ifd0 else LONG
        entries[SUBIFDS] = make_entry(fmt, SUBIFDS, subifd_type, subifds)
    else:  # every SubIFD dropped
        entries.pop(SUBIFDS, None)
    wanted = max([(0,), *([DEPTH_DNG_VERSION] if depth is not None else []), *([MASK_DNG_VERSION] if mattes else [])])
    entries.update(_version_entries(tiff, ifd0, wanted))
    ifd0_offset = tail.align()
    tail.data += pack_ifd(fmt, entries.values(), ifd0_offset, ifd0.next_offset)
    if tail.end >= MAX_CLASSIC_SIZE:
        raise DepthError(f"the DNG with what is attached would be {tail.end} bytes, beyond classic TIFF's 4 GiB")
    return b"".join((fmt.header(ifd0_offset), memoryview(photo)[HEADER_SIZE:], tail.data))


def _append_depth(tail: _Tail, fmt: TiffFormat, stored: StoredMap, entries: dict[int, Entry], measure_type: int) -> int:
    """Append the stored map's strips and IFD; set IFD0's Depth* ``entries``; return the IFD's offset."""
    codes, (form, near, far) = stored.pixels, (stored.info.form, stored.info.near, stored.info.far)
    height, width = codes.shape
    strips = _append_strips(tail, fmt, codes.astype(fmt.byteorder + "u2"))
    offset = tail.align()
    tail.data += pack_ifd(
        fmt,
        [
            make_entry(fmt, NEW_SUBFILE_TYPE, LONG, [DEPTH_MAP]),
            *_image_entries(fmt, width, height, 16, UNCOMPRESSED, PHOTOMETRIC_DEPTH),
            *strips,
        ],
        offset,
    )
    for tag, type_, value in (
        (DEPTH_FORMAT, SHORT, form),
        (DEPTH_NEAR, RATIONAL, near),
        (DEPTH_FAR, RATIONAL, far),
        (DEPTH_UNITS, SHORT, METERS if stored.metadata.accuracy == "absolute" else 0),
        (DEPTH_MEASURE_TYPE, SHORT, measure_type),
    ):
        entries[tag] = make_entry(fmt, tag, type_, [value])
    return offset


def _append_mask(tail: _Tail, fmt: TiffFormat, matte: Matte) -> int:
    """Append one matte as a semantic mask (Deflate strips, then its IFD); return the IFD's offset."""
    strips = _append_strips(tail, fmt, matte.pixels, deflate=True)
    xmp = matte.xmp(True)
    offset = tail.align()
    tail.data += pack_ifd(
        fmt,
        [
            make_entry(fmt, NEW_SUBFILE_TYPE, LONG, [SEMANTIC_MASK]),
            *_image_entries(fmt, matte.width, matte.height, 8, DEFLATE, PHOTOMETRIC_MASK),
            *strips,
            Entry(XMP, BYTE, len(xmp), xmp),
            Entry(SEMANTIC_NAME, ASCII, len(matte.kind.urn) + 1, matte.kind.urn.encode() + b"\0"),
            make_entry(fmt, MASK_SUB_AREA, LONG, [0, 0, matte.width, matte.height]),
        ],
        offset,
    )
    return offset


def _image_entries(
    fmt: TiffFormat, width: int, height: int, bits: int, compression: int, photometric: int
) -> list[Entry]:
    """The entries of a one-sample unsigned image IFD in strips, but for its strip entries (:func:`_append_strips`)."""
    return [
        make_entry(fmt, IMAGE_WIDTH, LONG, [width]),
        make_entry(fmt, IMAGE_LENGTH, LONG, [height]),
        make_entry(fmt, BITS_PER_SAMPLE, SHORT, [bits]),
        make_entry(fmt, COMPRESSION, SHORT, [compression]),
        make_entry(fmt, PHOTOMETRIC, SHORT, [photometric]),
        make_entry(fmt, SAMPLES_PER_PIXEL, SHORT, [1]),
        make_entry(fmt, PLANAR_CONFIGURATION, SHORT, [1]),
        make_entry(fmt, SAMPLE_FORMAT, SHORT, [1]),
    ]


def orientation(data: bytes, parsed: tuple[TiffFile, list[Ifd]] | None = None) -> int:
    """IFD0's Orientation (1-8), which DNG requires and which the depth map shares; 1 when absent or invalid.
    ``parsed``: :func:`parse`'s ``data``, when at hand."""
    tiff, ifds = parsed or open_dng(data)
    return _orientation(tiff, ifds[0])


def _orientation(tiff: TiffFile, ifd0: Ifd) -> int:
    value = scalar(tiff, ifd0, ORIENTATION, 1)
    return value if 1 <= value <= 8 else 1


def displayed_size(data: bytes, parsed: tuple[TiffFile, list[Ifd]] | None = None) -> tuple[int, int]:
    """The raw image's (width, height) as shown: the full-resolution IFD's size turned by Orientation.
    ``parsed``: :func:`parse`'s ``data``, when at hand."""
    tiff, ifds = parsed or open_dng(data)
    raw = next((ifd for ifd in ifds if scalar(tiff, ifd, NEW_SUBFILE_TYPE, 0) == 0 and IMAGE_WIDTH in ifd), None)
    if raw is None:
        raise DepthError("the DNG has no full-resolution image IFD (NewSubFileType 0)")
    return turned(scalar(tiff, raw, IMAGE_WIDTH), scalar(tiff, raw, IMAGE_LENGTH), _orientation(tiff, ifds[0]))


def encode_photo(image: Any, **options: Any) -> bytes:
    """Refused: a DNG holds camera raw data, which a decoded photo no longer has."""
    raise DepthError("a DNG is a camera raw file: a decoded photo cannot become one; write HEIC or JPEG instead")


def depth_codes(depth: DepthData) -> tuple[np.ndarray, int, tuple[int, int], tuple[int, int]]:
    """The 16-bit codes of ``depth`` with DepthFormat, DepthNear and DepthFar (as RATIONAL pairs)."""
    values = depth.array.astype(np.float64)
    refuse_holes(values, "DNG")  # DepthData holds no infinities, so every value is finite
    low, high = float(values.min()), float(values.max())
    quantity = depth.pixel_format.quantity
    if low < 0:
        raise DepthError(f"{quantity} map has negative values (min {low:g}); DNG distances are >= 0")
    if depth.pixel_format.is_disparity:
        if high <= 0:
            raise DepthError("disparity map has no positive value: its nearest distance would be infinite")
        form, near = INVERSE, to_rational(1.0 / high, up=False)
        far = to_rational(1.0 / low, up=True) if low > 0 and 1.0 / low <= RATIONAL_MAX else INFINITY
        if near[0] == 0:
            raise DepthError(f"disparity {high:g} is too large: DepthNear 1/{high:g} m rounds to 0")
        first, last = _ratio(near, inverse=True), _ratio(far, inverse=True)
    else:
        form, near, far = LINEAR, to_rational(low, up=False), to_rational(high, up=True)
        first, last = _ratio(near), _ratio(far)
    scale = CODE_MAX / (last - first) if last != first else 0.0
    codes = np.rint((values - first) * scale)
    return np.clip(codes, 0, CODE_MAX).astype(np.uint16), form, near, far


def to_rational(value: float, up: bool) -> tuple[int, int]:
    """``value`` as the nearest RATIONAL above (``up``) or below it, with a power-of-ten denominator."""
    if not 0 <= value <= RATIONAL_MAX:
        raise DepthError(f"distance {value:g} does not fit a TIFF RATIONAL")
    exact = Fraction(value)
    for digits in range(9, -1, -1):
        denominator = 10**digits
        numerator = math.ceil(exact * denominator) if up else math.floor(exact * denominator)
        if numerator <= RATIONAL_MAX:
            return numerator, denominator
    raise AssertionError("unreachable: a value <= RATIONAL_MAX fits with denominator 1")


def _ratio(pair: tuple[int, int], inverse: bool = False) -> float:
    """A RATIONAL distance as a float, or its reciprocal (0 for the infinite 1/0)."""
    numerator, denominator = pair
    if inverse:
        return 0.0 if numerator and not denominator else denominator / numerator
    return numerator / denominator


class NotADng(DepthError):
    """A TIFF that sniffs as DNG but has no DNGVersion: a plain TIFF photo."""


def open_dng(data: bytes) -> tuple[TiffFile, list[Ifd]]:
    tiff = TiffFile(data)
    ifds = tiff.walk()
    if not ifds:
        raise DepthError("the TIFF file has no IFD0")
    if DNG_VERSION not in ifds[0]:
        raise NotADng("a TIFF without DNGVersion in IFD0 is not a DNG; depth maps are attached to DNG raws only")
    entry = ifds[0].entries[DNG_VERSION]
    if entry.type != BYTE or entry.count != 4:
        raise DepthError(f"IFD0 tag DNGVersion must be 4 BYTEs, got {entry.count} {TYPES[entry.type].name}")
    return tiff, ifds


def scalar(tiff: TiffFile, ifd: Ifd, tag: int, default: int | None = None) -> int:
    if tag not in ifd:
        if default is None:
            raise DepthError(f"{ifd.name} lacks tag {tag_name(tag)}")
        return default
    count = ifd.entries[tag].count
    if count != 1:  # checked before decoding: a count of millions is not read
        raise DepthError(f"{ifd.name} tag {tag_name(tag)} must hold 1 value, not {count}")
    return tiff.integers(ifd, tag)[0]


def depth_ifds(tiff: TiffFile, ifds: list[Ifd]) -> list[Ifd]:
    """The depth map IFDs, full-resolution ones (NewSubFileType 8) before reduced ones (9)."""
    kinds = [(scalar(tiff, ifd, NEW_SUBFILE_TYPE, 0), ifd) for ifd in ifds]
    return [ifd for wanted in (DEPTH_MAP, REDUCED_DEPTH_MAP) for kind, ifd in kinds if kind == wanted]


def _kept_subifds(tiff: TiffFile, ifds: list[Ifd], removed: list[Ifd]) -> list[int]:
    """IFD0's SubIFDs offsets, less those of the ``removed`` depth map and mask IFDs."""
    ifd0 = ifds[0]
    subifds = list(tiff.integers(ifd0, SUBIFDS)) if SUBIFDS in ifd0 else []
    stray = [ifd.name for ifd in removed if ifd.offset not in subifds]
    if stray:
        raise DepthError(f"cannot replace {stray[0]}: it is not one of IFD0's SubIFDs")
    dropped = {ifd.offset for ifd in removed}
    return [offset for offset in subifds if offset not in dropped]


def _replaced_mattes(tiff: TiffFile, ifds: list[Ifd], mattes: Sequence[Matte], replace: bool, drop: bool) -> list[Ifd]:
    """The mask IFDs attaching ``mattes`` removes: every matte's with ``drop``, else those of the kinds
    written (an error unless ``replace``)."""
    found = matte_ifds(tiff, ifds)
    if drop:
        return [ifd for ifd, _ in found]
    kinds = {matte.kind for matte in mattes}
    clash = [(ifd, kind) for ifd, kind in found if kind in kinds]
    if clash and not replace:
        raise ExistingDepth(f"the DNG already has a {clash[0][1].name} matte ({clash[0][0].name})")
    return [ifd for ifd, _ in clash]


#: (offsets, byte counts) tags whose pairs claim byte ranges: strips, tiles, a JPEG preview stream.
DATA_RANGES = ((STRIP_OFFSETS, STRIP_BYTE_COUNTS), (TILE_OFFSETS, TILE_BYTE_COUNTS), (513, 514))
#: Farthest past its end a file's claims may reach for new data to be placed after them (zero-filled).
MAX_CLAIMED_GAP = 256 << 20


def claimed_end(tiff: TiffFile, ifds: list[Ifd]) -> int:
    """The end of the file or of the farthest range any IFD's strips, tiles or JPEG stream claim, if
    later: a truncated file (a ProRAW cut short) still claims ranges past its end, where new data
    must not land."""
    end = tiff.size
    for ifd in ifds:
        for offsets, counts in DATA_RANGES:
            if offsets in ifd and counts in ifd:
                pairs = zip(tiff.integers(ifd, offsets), tiff.integers(ifd, counts), strict=False)
                end = max([end, *(offset + count for offset, count in pairs)])
    if end - tiff.size > MAX_CLAIMED_GAP:
        raise DepthError(f"the DNG's strips or tiles claim bytes up to offset {end}, far past its {tiff.size} bytes")
    return end


def _version_entries(tiff: TiffFile, ifd0: Ifd, wanted: tuple[int, ...]) -> dict[int, Entry]:
    """DNGVersion raised to ``wanted`` where lower, the backward version made explicit when missing."""
    version = tuple(tiff.integers(ifd0, DNG_VERSION))
    if version >= wanted:
        return {}
    entries = {DNG_VERSION: Entry(DNG_VERSION, BYTE, 4, bytes(wanted))}
    if DNG_BACKWARD_VERSION not in ifd0:  # its default is DNGVersion, which would lock out 1.4 readers
        entries[DNG_BACKWARD_VERSION] = Entry(DNG_BACKWARD_VERSION, BYTE, 4, bytes((*version[:2], 0, 0)))
    return entries


class _Tail:
    """Bytes appended after the input file, which starts ``base`` bytes before them."""

    def __init__(self, base: int) -> None:
        self.base, self.data = base, bytearray()

    @property
    def end(self) -> int:
        return self.base + len(self.data)

    def align(self) -> int:
        """Pad to a 4-byte boundary and return the file offset of the next byte."""
        self.data += b"\0" * (-self.end % 4)
        return self.end


def _append_strips(tail: _Tail, fmt: TiffFormat, samples: np.ndarray, deflate: bool = False) -> list[Entry]:
    """Append ``samples`` in strips (Deflate-compressed if ``deflate``); return the IFD's three strip entries."""
    height, width = samples.shape
    row_bytes = width * samples.itemsize
    rows_per_strip = max(1, min(height, STRIP_BYTES // row_bytes))
    offsets, counts = [], []
    for top in range(0, height, rows_per_strip):
        chunk = samples[top : top + rows_per_strip].tobytes()
        if deflate:
            chunk = zlib.compress(chunk)
        offsets.append(tail.align())
        counts.append(len(chunk))
        tail.data += chunk
    return [
        make_entry(fmt, STRIP_OFFSETS, LONG, offsets),
        make_entry(fmt, ROWS_PER_STRIP, LONG, [rows_per_strip]),
        make_entry(fmt, STRIP_BYTE_COUNTS, LONG, counts),
    ]


def depth_range(tiff: TiffFile, ifd0: Ifd) -> tuple[int, float, float]:
    """DepthFormat and the DepthNear/DepthFar distances, checked to be usable for decoding."""
    form = scalar(tiff, ifd0, DEPTH_FORMAT, 0)
    if form not in (LINEAR, INVERSE):
        raise DepthError(f"IFD0 DepthFormat {form} gives no distance mapping; only 1 (linear) and 2 (inverse) do")
    near, far = (_rational(tiff, ifd0, tag) for tag in (DEPTH_NEAR, DEPTH_FAR))
    usable = near is not None and far is not None and math.isfinite(near) and near <= far
    if form == INVERSE:
        usable = usable and near > 0
    elif usable:
        usable = math.isfinite(far)
    if not usable:
        raise DepthError(f"IFD0 DepthNear {near} and DepthFar {far} are unusable for DepthFormat {form}")
    return form, near, far


def _rational(tiff: TiffFile, ifd0: Ifd, tag: int) -> float | None:
    """A RATIONAL distance: None when missing or 0/0 (unknown), inf for n/0."""
    if tag not in ifd0:
        return None
    entry = ifd0.entries[tag]
    if entry.type != RATIONAL or entry.count != 1:
        raise DepthError(f"IFD0 tag {entry.name} must be 1 RATIONAL")
    ((numerator, denominator),) = tiff.values(ifd0, tag)
    if denominator == 0:
        return math.inf if numerator else None
    return numerator / denominator


def _read_samples(tiff: TiffFile, ifd: Ifd, what: str = "depth map") -> np.ndarray:
    """A depth map's (or mask's, ``what``) 8- or 16-bit samples (uncompressed or Deflate) as a (height, width) array."""
    width, height = scalar(tiff, ifd, IMAGE_WIDTH), scalar(tiff, ifd, IMAGE_LENGTH)
    bits = set(tiff.integers(ifd, BITS_PER_SAMPLE, most=4)) if BITS_PER_SAMPLE in ifd else {1}
    for tag, allowed in (
        (SAMPLES_PER_PIXEL, (1,)),
        (SAMPLE_FORMAT, (1,)),
        (COMPRESSION, (UNCOMPRESSED, DEFLATE)),
        (PREDICTOR, (NO_PREDICTOR, HORIZONTAL_DIFFERENCING)),
    ):
        value = scalar(tiff, ifd, tag, 1)
        if value not in allowed:
            raise DepthError(f"{ifd.name}: {what}s with {tag_name(tag)} {value} are not supported")
    if bits not in ({8}, {16}):
        raise DepthError(f"{ifd.name}: {what} samples must be 8 or 16 bits, not {sorted(bits)}")
    limits.check_pixels(width, height, f"{ifd.name}: {what}")
    decoder = _Decoder(tiff, ifd, what, np.dtype(f"{tiff.format.byteorder}u{bits.pop() // 8}"))
    if TILE_OFFSETS in ifd:
        return _read_tiles(decoder, width, height)
    return _read_strips(decoder, width, height)


class _Decoder:
    """Turns the strips or tiles of one depth or mask IFD into sample arrays, checking every size first."""

    def __init__(self, tiff: TiffFile, ifd: Ifd, what: str, dtype: np.dtype) -> None:
        self.tiff, self.ifd, self.what, self.dtype = tiff, ifd, what, dtype
        self.deflate = scalar(tiff, ifd, COMPRESSION, UNCOMPRESSED) == DEFLATE
        self.differencing = scalar(tiff, ifd, PREDICTOR, NO_PREDICTOR) == HORIZONTAL_DIFFERENCING

    def check_total(self, samples: int) -> None:
        """Refuse maps larger than the bound, or than the file can hold uncompressed."""
        size = samples * self.dtype.itemsize
        if samples > limits.max_pixels() or (not self.deflate and size > self.tiff.size):
            raise DepthError(f"{self.ifd.name}: {samples} samples cannot be stored in the {self.tiff.size}-byte file")
        if self.deflate:
            limits.check_expansion(size, self.tiff.size, f"{self.ifd.name}: Deflate {self.what}")

    def chunks(self, offsets_tag: int, counts_tag: int, expected: int) -> list[tuple[int, int]]:
        ifd = self.ifd
        if offsets_tag not in ifd or counts_tag not in ifd:
            raise DepthError(f"{ifd.name} lacks {tag_name(offsets_tag)} or {tag_name(counts_tag)}")
        if expected > MAX_CHUNKS:
            raise DepthError(f"{ifd.name}: {expected} strips or tiles, more than the {MAX_CHUNKS} allowed")
        found = ifd.entries[offsets_tag].count, ifd.entries[counts_tag].count
        if found != (expected, expected):  # checked before decoding the values
            raise DepthError(
                f"{ifd.name}: {found[0]} offsets and {found[1]} byte counts for {expected} strips or tiles"
            )
        return list(zip(self.tiff.integers(ifd, offsets_tag), self.tiff.integers(ifd, counts_tag), strict=True))

    def decode(self, index: int, offset: int, count: int, shape: tuple[int, int]) -> np.ndarray:
        where = f"{self.ifd.name}: strip/tile {index} at offset {offset}"
        needed = shape[0] * shape[1] * self.dtype.itemsize
        if offset + count > self.tiff.size:
            raise DepthError(f"{where}: its {count} bytes run past the end of the {self.tiff.size}-byte file")
        raw = self.tiff.view[offset : offset + (count if self.deflate else min(count, needed))]
        if self.deflate:
            try:
                raw = zlib.decompressobj().decompress(raw, needed)
            except zlib.error as exc:
                raise DepthError(f"{where}: bad Deflate data ({exc})") from exc
        if len(raw) < needed:
            raise DepthError(f"{where} holds {len(raw)} bytes, fewer than the {needed} its samples need")
        samples = np.frombuffer(raw, self.dtype).reshape(shape)
        if self.differencing:
            native = self.dtype.newbyteorder("=")
            samples = np.cumsum(samples.astype(native), axis=1, dtype=native)
        return samples


def _read_strips(decoder: _Decoder, width: int, height: int) -> np.ndarray:
    decoder.check_total(width * height)
    rows_per_strip = min(scalar(decoder.tiff, decoder.ifd, ROWS_PER_STRIP, height), height)
    if rows_per_strip <= 0:
        raise DepthError(f"{decoder.ifd.name}: RowsPerStrip is 0")
    strips = decoder.chunks(STRIP_OFFSETS, STRIP_BYTE_COUNTS, -(-height // rows_per_strip))
    return np.concatenate(
        [
            decoder.decode(index, offset, count, (min(rows_per_strip, height - index * rows_per_strip), width))
            for index, (offset, count) in enumerate(strips)
        ]
    )


def _read_tiles(decoder: _Decoder, width: int, height: int) -> np.ndarray:
    tile_width, tile_length = (scalar(decoder.tiff, decoder.ifd, tag) for tag in (TILE_WIDTH, TILE_LENGTH))
    if tile_width <= 0 or tile_length <= 0:
        raise DepthError(f"{decoder.ifd.name}: bad tile size {tile_width}x{tile_length}")
    across, down = -(-width // tile_width), -(-height // tile_length)
    decoder.check_total(across * tile_width * down * tile_length)
    image = np.empty((down * tile_length, across * tile_width), decoder.dtype)
    for index, (offset, count) in enumerate(decoder.chunks(TILE_OFFSETS, TILE_BYTE_COUNTS, across * down)):
        row, column = divmod(index, across)
        tile = decoder.decode(index, offset, count, (tile_length, tile_width))
        image[row * tile_length : (row + 1) * tile_length, column * tile_width : (column + 1) * tile_width] = tile
    return image[:height, :width]
