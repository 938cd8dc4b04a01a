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
"""

from __future__ import annotations

import math
import zlib
from fractions import Fraction
from typing import Any

import numpy as np

from ... import limits
from ...core.depthdata import DepthData
from ...core.formats import PixelFormat
from ...core.holes import refuse_holes
from ...core.metadata import DepthMetadata
from ...core.orientation import displayed_size as turned
from ...errors import DepthError, ExistingDepth
from .tiff import (
    BIGTIFF_MAGIC,
    BYTE,
    CLASSIC_MAGIC,
    HEADER_SIZE,
    LONG,
    RATIONAL,
    SHORT,
    SUBIFDS,
    TYPES,
    Entry,
    Ifd,
    TiffFile,
    make_entry,
    pack_ifd,
    tag_name,
)

NAME = "dng"
EXTENSIONS = (".dng",)
#: Keyword arguments of :func:`attach_depth` a caller (the pipeline) may pass.
ATTACH_OPTIONS = frozenset({"measure_type"})

NEW_SUBFILE_TYPE = 254
DEPTH_MAP, REDUCED_DEPTH_MAP = 8, 9
PHOTOMETRIC_DEPTH = 51177
DNG_VERSION, DNG_BACKWARD_VERSION = 50706, 50707
DEPTH_FORMAT, DEPTH_NEAR, DEPTH_FAR, DEPTH_UNITS, DEPTH_MEASURE_TYPE = 51177, 51178, 51179, 51180, 51181
LINEAR, INVERSE = 1, 2
METERS = 1
DEPTH_DNG_VERSION = (1, 5, 0, 0)
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


def attach_depth(
    photo: bytes,
    depth: DepthData,
    *,
    replace: bool = False,
    measure_type: int = 0,
    parsed: tuple[TiffFile, list[Ifd]] | None = None,
    **options: Any,
) -> bytes:
    """``photo`` with ``depth`` attached as a DNG 1.5 depth map, every input byte kept in place.

    ``measure_type``: DepthMeasureType, 0 unknown, 1 along the optical axis, 2 along the optical ray.
    ``replace``: drop an existing depth map from IFD0's SubIFDs (its bytes stay, unreferenced).
    ``parsed``: :func:`parse`'s ``photo``, when at hand.
    """
    if options:
        raise DepthError(f"unknown DNG option(s): {', '.join(sorted(options))}")
    if not isinstance(depth, DepthData):
        raise DepthError(f"depth must be DepthData, got {type(depth).__name__}")
    if measure_type not in (0, 1, 2):
        raise DepthError(f"DepthMeasureType must be 0, 1 or 2, got {measure_type!r}")
    tiff, ifds = parsed or open_dng(photo)
    ifd0 = ifds[0]
    subifds = _kept_subifds(tiff, ifds, replace)
    codes, form, near, far = depth_codes(depth)
    fmt = tiff.format

    tail = _Tail(len(photo))
    tail.data += bytes(claimed_end(tiff, ifds) - len(photo))  # a truncated file's claims stay unmet, not ours
    strip_offsets, strip_counts, rows_per_strip = _append_strips(tail, codes.astype(fmt.byteorder + "u2"))
    depth_offset = tail.align()
    depth_entries = [
        make_entry(fmt, NEW_SUBFILE_TYPE, LONG, [DEPTH_MAP]),
        make_entry(fmt, IMAGE_WIDTH, LONG, [depth.width]),
        make_entry(fmt, IMAGE_LENGTH, LONG, [depth.height]),
        make_entry(fmt, BITS_PER_SAMPLE, SHORT, [16]),
        make_entry(fmt, COMPRESSION, SHORT, [1]),
        make_entry(fmt, PHOTOMETRIC, SHORT, [PHOTOMETRIC_DEPTH]),
        make_entry(fmt, STRIP_OFFSETS, LONG, strip_offsets),
        make_entry(fmt, SAMPLES_PER_PIXEL, SHORT, [1]),
        make_entry(fmt, ROWS_PER_STRIP, LONG, [rows_per_strip]),
        make_entry(fmt, STRIP_BYTE_COUNTS, LONG, strip_counts),
        make_entry(fmt, PLANAR_CONFIGURATION, SHORT, [1]),
        make_entry(fmt, SAMPLE_FORMAT, SHORT, [1]),
    ]
    tail.data += pack_ifd(fmt, depth_entries, depth_offset)

    entries = dict(ifd0.entries)
    subifd_type = ifd0.entries[SUBIFDS].type if SUBIFDS in ifd0 else LONG
    entries[SUBIFDS] = make_entry(fmt, SUBIFDS, subifd_type, [*subifds, depth_offset])
    entries.update(_version_entries(tiff, ifd0))
    for tag, type_, value in (
        (DEPTH_FORMAT, SHORT, form),
        (DEPTH_NEAR, RATIONAL, near),
        (DEPTH_FAR, RATIONAL, far),
        (DEPTH_UNITS, SHORT, METERS if depth.metadata.accuracy == "absolute" else 0),
        (DEPTH_MEASURE_TYPE, SHORT, measure_type),
    ):
        entries[tag] = make_entry(fmt, tag, type_, [value])
    ifd0_offset = tail.align()
    tail.data += pack_ifd(fmt, entries.values(), ifd0_offset, ifd0.next_offset)
    if tail.end >= MAX_CLASSIC_SIZE:
        raise DepthError(f"the DNG with its depth map would be {tail.end} bytes, beyond classic TIFF's 4 GiB")
    return b"".join((fmt.header(ifd0_offset), memoryview(photo)[HEADER_SIZE:], tail.data))


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


def open_dng(data: bytes) -> tuple[TiffFile, list[Ifd]]:
    tiff = TiffFile(data)
    ifds = tiff.walk()
    if not ifds:
        raise DepthError("the TIFF file has no IFD0")
    if DNG_VERSION not in ifds[0]:
        raise DepthError("a TIFF without DNGVersion in IFD0 is not a DNG; depth maps are attached to DNG raws only")
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


def _kept_subifds(tiff: TiffFile, ifds: list[Ifd], replace: bool) -> list[int]:
    """IFD0's SubIFDs offsets, less an existing depth map's when ``replace`` allows dropping it."""
    ifd0 = ifds[0]
    subifds = list(tiff.integers(ifd0, SUBIFDS)) if SUBIFDS in ifd0 else []
    existing = depth_ifds(tiff, ifds)
    if existing and not replace:
        raise ExistingDepth(f"the DNG already has a depth map ({existing[0].name})")
    stray = [ifd.name for ifd in existing if ifd.offset not in subifds]
    if stray:
        raise DepthError(f"cannot replace the depth map {stray[0]}: it is not one of IFD0's SubIFDs")
    dropped = {ifd.offset for ifd in existing}
    return [offset for offset in subifds if offset not in dropped]


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


def _version_entries(tiff: TiffFile, ifd0: Ifd) -> dict[int, Entry]:
    """DNGVersion raised to 1.5.0.0 where lower, the backward version made explicit when missing."""
    version = tuple(tiff.integers(ifd0, DNG_VERSION))
    if version >= DEPTH_DNG_VERSION:
        return {}
    entries = {DNG_VERSION: Entry(DNG_VERSION, BYTE, 4, bytes(DEPTH_DNG_VERSION))}
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


def _append_strips(tail: _Tail, samples: np.ndarray) -> tuple[list[int], list[int], int]:
    height, width = samples.shape
    row_bytes = width * samples.itemsize
    rows_per_strip = max(1, min(height, STRIP_BYTES // row_bytes))
    offsets, counts = [], []
    for top in range(0, height, rows_per_strip):
        chunk = samples[top : top + rows_per_strip].tobytes()
        offsets.append(tail.align())
        counts.append(len(chunk))
        tail.data += chunk
    return offsets, counts, rows_per_strip


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


def _read_samples(tiff: TiffFile, ifd: Ifd) -> np.ndarray:
    """The depth IFD's 8- or 16-bit samples (uncompressed or Deflate) as a (height, width) array."""
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
            raise DepthError(f"{ifd.name}: depth maps with {tag_name(tag)} {value} are not supported")
    if bits not in ({8}, {16}):
        raise DepthError(f"{ifd.name}: depth samples must be 8 or 16 bits, not {sorted(bits)}")
    limits.check_pixels(width, height, f"{ifd.name}: depth map")
    decoder = _Decoder(tiff, ifd, np.dtype(f"{tiff.format.byteorder}u{bits.pop() // 8}"))
    if TILE_OFFSETS in ifd:
        return _read_tiles(decoder, width, height)
    return _read_strips(decoder, width, height)


class _Decoder:
    """Turns the strips or tiles of one depth IFD into sample arrays, checking every size first."""

    def __init__(self, tiff: TiffFile, ifd: Ifd, dtype: np.dtype) -> None:
        self.tiff, self.ifd, self.dtype = tiff, ifd, dtype
        self.deflate = scalar(tiff, ifd, COMPRESSION, UNCOMPRESSED) == DEFLATE
        self.differencing = scalar(tiff, ifd, PREDICTOR, NO_PREDICTOR) == HORIZONTAL_DIFFERENCING

    def check_total(self, samples: int) -> None:
        """Refuse maps larger than the bound, or than the file can hold uncompressed."""
        size = samples * self.dtype.itemsize
        if samples > limits.max_pixels() or (not self.deflate and size > self.tiff.size):
            raise DepthError(f"{self.ifd.name}: {samples} samples cannot be stored in the {self.tiff.size}-byte file")
        if self.deflate:
            limits.check_expansion(size, self.tiff.size, f"{self.ifd.name}: Deflate depth map")

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
