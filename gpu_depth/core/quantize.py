"""Storage quantisation shared by HEIC and JPEG: float map ↔ 8/16-bit stored map + FloatMin/FloatMax.

``float = FloatMin + (int − IntMin) · (FloatMax − FloatMin) / (IntMax − IntMin)``, linear in the native
quantity, so for disparity larger codes are nearer.  FloatMin/FloatMax are the map's finite min/max
rounded outwards to a 16-bit mantissa: exactly what the HEIF depth-representation SEI stores (Apple
uses 16 bits), so the SEI, the XMP and the dequantised values agree to the bit.

A map with holes (NaN, kept unfilled) is stored with IntMin 1 and code 0 for its holes: our reader
gives codes below IntMin back as NaN; Apple's formula reads them a step beyond FloatMin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import DepthError
from .depthdata import DepthData, empty_rows
from .formats import PixelFormat, StoredFormat
from .mapping import round_to_format
from .metadata import DepthMetadata, PixelDataInfo

#: Mantissa bits of FloatMin/FloatMax, as in Apple's depth-representation SEI.
MANTISSA_BITS = 16
#: Smallest positive bound the SEI's 7-bit exponent reaches (2^(1−31)); smaller ones become 0.
SMALLEST_BOUND = 2.0**-30


@dataclass(frozen=True)
class StoredMap:
    """The integer map a container stores, its ``apdi`` description and the map's metadata."""

    pixels: np.ndarray
    info: PixelDataInfo
    metadata: DepthMetadata


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
