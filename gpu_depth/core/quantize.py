"""Storage quantisation shared by HEIC and JPEG: float map ↔ 8/16-bit stored map + FloatMin/FloatMax; and
what each container stores (:class:`Storage`), so that the pipeline's conversion stage stores the maps ahead
(on the GPU with the CuPy backend) and hands the containers a :class:`StoredDepth`.

``float = FloatMin + (int − IntMin) · (FloatMax − FloatMin) / (IntMax − IntMin)``, linear in the native
quantity, so for disparity larger codes are nearer.  FloatMin/FloatMax are the map's finite min/max
rounded outwards to a 16-bit mantissa: exactly what the HEIF depth-representation SEI stores (Apple
uses 16 bits), so the SEI, the XMP and the dequantised values agree to the bit.

A map with holes (NaN, kept unfilled) is stored with IntMin 1 and code 0 for its holes: our reader
gives codes below IntMin back as NaN; Apple's formula reads them a step beyond FloatMin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import DepthError
from .depthdata import DepthData, empty_rows
from .formats import PixelFormat, StoredFormat
from .mapping import round_to_format
from .metadata import DepthMetadata, PixelDataInfo
from .orientation import to_displayed, to_stored

#: Mantissa bits of FloatMin/FloatMax, as in Apple's depth-representation SEI.
MANTISSA_BITS = 16
#: Smallest positive bound the SEI's 7-bit exponent reaches (2^(1−31)); smaller ones become 0.
SMALLEST_BOUND = 2.0**-30


@dataclass(frozen=True)
class StoredMap:
    """The integer map a container stores, its description and the map's metadata.  ``info``: the ``apdi``
    PixelDataInfo of a map :func:`quantize` made (HEIC, JPEG), or a container's own description of its codes
    (DNG's DepthFormat, DepthNear and DepthFar)."""

    pixels: np.ndarray
    info: PixelDataInfo | Any
    metadata: DepthMetadata


@dataclass(frozen=True)
class Storage:
    """What a container stores of a depth map for the options it is given (each container's ``storage``):
    the one statement of it that the container's own attach (quantising a DepthData) and the pipeline's
    conversion stage (quantising ahead, on the backend) both use.

    ``stored_format``: the ``apdi`` StoredFormat :func:`quantize` (or a backend's ``quantize``) makes of the
    map; None where the container has its own ``codes`` (DNG).  ``float_map``: the container also writes
    something of the float map itself (JPEG's GDepth), which then travels with the stored map.  Either way
    the map is stored at its own size, in the photo's stored orientation."""

    container: str
    stored_format: StoredFormat | None
    codes: Callable[[DepthData], StoredMap] | None = field(default=None, compare=False, repr=False)
    float_map: bool = False

    def describe(self) -> str:
        kind = self.stored_format.fourcc if self.stored_format else "its own codes"
        return f"{self.container} {kind}" + (" with the float map" if self.float_map else "")

    def store(self, depths: Sequence[DepthData], backend: Any = None) -> list[StoredMap]:
        """The stored map of each of ``depths``: quantised by ``backend.quantize`` (one call for them all),
        by :func:`quantize` without a backend, or the container's own codes."""
        if self.stored_format is None:
            return [self.codes(depth) for depth in depths]
        if backend is None:
            return [quantize(depth, self.stored_format) for depth in depths]
        return backend.quantize(list(depths), self.stored_format)

    def stored(self, depth: DepthData | StoredDepth) -> tuple[StoredMap, DepthData | None]:
        """(stored map, float map) of what the container was handed: a StoredDepth made by this storage as it
        is, a DepthData stored here (on the CPU) and itself."""
        if isinstance(depth, StoredDepth):
            if depth.storage != self:
                raise DepthError(f"the depth map was stored as {depth.storage.describe()}, not {self.describe()}")
            return depth.map, depth.depth
        return self.store([depth])[0], depth


@dataclass(frozen=True)
class StoredDepth:
    """A depth map stored ahead of its attach (the pipeline's conversion stage): the ``map`` that ``storage``
    made of a ``pixel_format`` map, in the photo's stored orientation, i.e. turned by Exif orientation ``turn``
    from the displayed map; ``depth``: the float map, turned alike, where the storage needs it too."""

    map: StoredMap
    storage: Storage
    pixel_format: PixelFormat
    turn: int = 1
    depth: DepthData | None = None

    @property
    def width(self) -> int:
        return self.map.pixels.shape[1]

    @property
    def height(self) -> int:
        return self.map.pixels.shape[0]

    @property
    def metadata(self) -> DepthMetadata:
        return self.map.metadata

    def turned(self, turn: int) -> StoredDepth:
        """The same map stored for a photo of orientation ``turn`` (every storage's codes depend on the map's
        values, not on their places, so turning the codes is storing the turned map)."""
        if turn == self.turn:
            return self
        pixels = to_stored(to_displayed(self.map.pixels, self.turn), turn)
        depth = self.depth
        if depth is not None:
            array = to_stored(to_displayed(depth.array, self.turn), turn)
            depth = DepthData.from_array(array, depth.pixel_format, metadata=depth.metadata)
        return replace(self, map=replace(self.map, pixels=pixels), turn=turn, depth=depth)

    def with_metadata(self, metadata: DepthMetadata) -> StoredDepth:
        depth = replace(self.depth, metadata=metadata) if self.depth is not None else None
        return replace(self, map=replace(self.map, metadata=metadata), depth=depth)


def round_bound(value: float, up: bool) -> float:
    """The nearest value ≥ (``up``) or ≤ ``value`` of the form ±2^e · (1 + n/2^16), or 0."""
    if value < 0:
        return -round_bound(-value, not up)
    if value == 0 or (value < SMALLEST_BOUND and not up):
        return 0.0
    if value < SMALLEST_BOUND:
        return SMALLEST_BOUND
    mantissa, exponent = math.frexp(value)  # value = mantissa · 2^exponent, mantissa in [0.5, 1)
    scaled = mantissa * 2.0 ** (MANTISSA_BITS + 1)
    steps = math.ceil(scaled) if up else math.floor(scaled)
    return math.ldexp(steps, exponent - MANTISSA_BITS - 1)


def quantize(depth: DepthData, stored_format: StoredFormat = StoredFormat.L008) -> StoredMap:
    """The stored integer map of ``depth``; NaN and ±inf (holes) become code 0, below IntMin 1."""
    values = depth.array.astype(np.float64)  # our own copy, worked on in place: one pass a step, no temporaries
    finite = np.isfinite(values)
    everywhere = bool(finite.all())
    if not everywhere and not finite.any():
        raise DepthError(f"{depth.width}x{depth.height} depth map has no finite value to store")
    held = values if everywhere else values[finite]
    low, high = round_bound(float(held.min()), up=False), round_bound(float(held.max()), up=True)
    bottom, top = int(not everywhere), stored_format.max_code
    scale = (top - bottom) / (high - low) if high > low else 0.0
    if not everywhere:
        values[~finite] = low
    values -= low
    values *= scale
    np.rint(values, out=values)
    values += bottom
    if not everywhere:
        values[~finite] = 0
    np.clip(values, 0, top, out=values)
    info = PixelDataInfo(
        image_type=depth.pixel_format.quantity,
        native_format=depth.pixel_format.code,
        stored_format=stored_format.code,
        int_min=bottom,
        int_max=top,
        float_min=low,
        float_max=high,
    )
    return StoredMap(values.astype(stored_format.dtype), info, depth.metadata)


def dequantize(
    pixels: np.ndarray, info: PixelDataInfo, metadata: DepthMetadata | None = None, row_alignment: int = 1
) -> DepthData:
    """DepthData in the native format that ``info`` names, from a decoded stored map; codes below IntMin are NaN."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.dtype.kind != "u":
        raise DepthError(f"stored depth map must be a 2-D unsigned integer image, got {pixels.ndim}-D {pixels.dtype}")
    problems = info.problems()
    if problems:
        raise DepthError("stored depth range is unusable: " + "; ".join(problems))
    fmt = PixelFormat.parse(info.native_format)
    height, width = pixels.shape
    rows = empty_rows(fmt, width, height, row_alignment)
    if pixels.dtype.itemsize <= 2:  # each code's value once, then looked up: the same bits, a pass not five
        table = _values(np.arange(1 << 8 * pixels.dtype.itemsize), info)
        with np.errstate(over="ignore", invalid="ignore"):
            rounded = table.astype(fmt.dtype)
        lowest = min(info.int_min, len(rounded) - 1)  # the values are linear in the code from IntMin on
        if np.isfinite(rounded[[lowest, -1]]).all():
            rounded.take(pixels, out=rows[:, :width], mode="clip")  # every code is an index: nothing clipped
            return DepthData.from_rows(rows, fmt, width, metadata)
    rows[:, :width] = round_to_format(_values(pixels, info), fmt)  # names the value that does not fit
    return DepthData.from_rows(rows, fmt, width, metadata)


def _values(codes: np.ndarray, info: PixelDataInfo) -> np.ndarray:
    """Apple's formula on stored ``codes``, in float64; NaN below IntMin."""
    span = info.int_max - info.int_min
    values = info.float_min + (codes.astype(np.float64) - info.int_min) * (info.float_max - info.float_min) / span
    values[codes < info.int_min] = np.nan
    return values
