"""How input values (gray codes, metres, relative disparity) become metric depth or disparity.

Every value is computed in float64 and rounded once to the output format (round to nearest even).
For integer inputs that computation is done once per (mapping, input dtype, format) into a lookup
table of 256 or 65536 entries, so converting a map is a gather.
"""

from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import DepthError
from .formats import PixelFormat

#: The value written for invalid pixels (0 in KITTI/millimetre maps, NaN, non-positive metres).
INVALID = math.nan

INTEGER_DTYPES = (np.dtype("uint8"), np.dtype("uint16"))
FLOAT_DTYPES = (np.dtype("float16"), np.dtype("float32"), np.dtype("float64"))


class Preset(str, enum.Enum):
    """Conventions that depth maps come in."""

    #: Apple's convention: gray 0 (black) = near, 1 (white) = far, linear in depth.
    APPLE_GRAY = "apple-gray"
    #: Gray 0 = far, 1 = near, linear in depth (visualised MiDaS/Depth Anything, Facebook 3D photos).
    INVERTED_GRAY = "inverted-gray"
    #: Gray 0 = near, 1 = far, linear in disparity (DNG DepthFormat 2, GDepth RangeInverse).
    INVERSE_GRAY = "inverse-gray"
    #: KITTI: uint16 metres × 256, 0 = invalid.
    KITTI = "kitti"
    #: ScanNet/TUM/NYU: uint16 millimetres, 0 = invalid.
    MILLIMETRES = "mm16"
    #: Float metres (Depth Pro, metric Depth Anything); non-finite or ≤ 0 = invalid.
    METRIC = "metric"
    #: Relative disparity, larger = nearer, rescaled so its range spans 1/far … 1/near.
    RELATIVE_DISPARITY = "relative-disparity"


_RANGED = {Preset.APPLE_GRAY, Preset.INVERTED_GRAY, Preset.INVERSE_GRAY, Preset.RELATIVE_DISPARITY}
_NATIVE_DISPARITY = {Preset.INVERSE_GRAY, Preset.RELATIVE_DISPARITY}
#: Input units per metre of the metric presets.
UNITS_PER_METRE = {Preset.KITTI: 256.0, Preset.MILLIMETRES: 1000.0, Preset.METRIC: 1.0}


@dataclass(frozen=True)
class DepthMapping:
    """A preset plus the zNear/zFar range (metres) that gray or relative presets need.

    ``DepthMapping("apple-gray", near=0.5, far=8)`` maps gray 0 to 0.5 m and gray 1 to 8 m.
    Integer inputs are normalised by their largest code (255 or 65535); float inputs are used as
    they are, except relative disparity, which each map's own finite min/max normalises.
    """

    preset: Preset = Preset.APPLE_GRAY
    near: float | None = None
    far: float | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "preset", Preset(self.preset))
        except ValueError:
            names = ", ".join(p.value for p in Preset)
            raise DepthError(f"unknown preset {self.preset!r}; expected one of {names}") from None
        if self.preset in _RANGED:
            self._check_range()
        elif self.near is not None or self.far is not None:
            raise DepthError(f"preset {self.preset.value} takes no near/far: its values are metric")

    def _check_range(self) -> None:
        near, far, name = self.near, self.far, self.preset.value
        if near is None or far is None:
            raise DepthError(f"preset {name} needs near and far (metres)")
        if math.isnan(near) or math.isnan(far):
            raise DepthError(f"near and far must be numbers, got near={near} far={far}")
        if not near < far:
            raise DepthError(f"zNear must be less than zFar, got near={near} far={far}")
        if near < 0 or math.isinf(near):
            raise DepthError(f"zNear must be finite and >= 0, got near={near}")
        if math.isinf(far) and self.preset not in _NATIVE_DISPARITY:
            raise DepthError(f"zFar must be finite for {name}, got far={far}")
        if near == 0 and self.preset in _NATIVE_DISPARITY:
            raise DepthError(f"zNear must be > 0 for {name}: disparity 1/zNear would be infinite")

    @property
    def native_is_disparity(self) -> bool:
        """Whether the preset is linear in disparity (True) or in depth (False)."""
        return self.preset in _NATIVE_DISPARITY

    def evaluate(self, values: np.ndarray, disparity: bool) -> np.ndarray:
        """Depth (m) or disparity (1/m) of each input value in float64; NaN where invalid."""
        values = np.asarray(values)
        if values.dtype not in INTEGER_DTYPES + FLOAT_DTYPES:
            raise DepthError(f"unsupported depth map dtype {values.dtype}; use uint8, uint16 or float32")
        with np.errstate(divide="ignore", invalid="ignore"):
            native = self._native(values)
            return native if disparity == self.native_is_disparity else 1.0 / native

    def _native(self, values: np.ndarray) -> np.ndarray:
        if self.preset in UNITS_PER_METRE:
            return _metres(values, UNITS_PER_METRE[self.preset])
        near, far = float(self.near), float(self.far)
        if self.preset == Preset.RELATIVE_DISPARITY:
            return 1.0 / far + _relative(values) * (1.0 / near - 1.0 / far)
        if self.preset == Preset.INVERSE_GRAY:
            return 1.0 / near + _gray(values, inverted=False) * (1.0 / far - 1.0 / near)
        inverted = self.preset == Preset.INVERTED_GRAY
        return near + _gray(values, inverted) * (far - near)

    def lookup_table(self, dtype: np.dtype | str, pixel_format: PixelFormat | str) -> np.ndarray:
        """The output value of every code of an integer dtype, rounded to ``pixel_format``."""
        return _lookup_table(self, np.dtype(dtype), PixelFormat.parse(pixel_format))


def _metres(values: np.ndarray, scale: float) -> np.ndarray:
    metres = values.astype(np.float64) / scale
    metres[~(metres > 0) | np.isinf(metres)] = INVALID
    return metres


def _gray(values: np.ndarray, inverted: bool) -> np.ndarray:
    if values.dtype.kind == "u":
        top = float(np.iinfo(values.dtype).max)
        codes = values.astype(np.float64)
        return ((top - codes) if inverted else codes) / top
    gray = values.astype(np.float64)
    outside = (gray < 0) | (gray > 1)
    if outside.any():
        where = np.unravel_index(int(np.argmax(outside)), gray.shape)
        raise DepthError(f"gray value {gray[where]} at index {tuple(map(int, where))} is outside [0, 1]")
    return 1.0 - gray if inverted else gray


def _relative(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "u":
        return values.astype(np.float64) / float(np.iinfo(values.dtype).max)
    rel = values.astype(np.float64)
    rel[~np.isfinite(rel)] = INVALID
    if np.isnan(rel).all():
        return rel
    low, high = np.nanmin(rel), np.nanmax(rel)
    return (rel - low) / (high - low) if high > low else np.where(np.isnan(rel), INVALID, 0.0)


def round_to_format(values: np.ndarray, pixel_format: PixelFormat) -> np.ndarray:
    """Round float64 values once to the format's dtype, refusing values that do not fit it."""
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = values.astype(pixel_format.dtype)
    overflow = np.isinf(rounded)
    if overflow.any():
        bad = float(values[overflow].flat[0])
        if math.isinf(bad) and pixel_format.is_disparity:
            raise DepthError(f"{pixel_format}: a depth of 0 m has no finite disparity; use zNear > 0 or a depth format")
        if math.isinf(bad):
            raise DepthError(
                f"{pixel_format}: a disparity of 0 has no finite depth; use a finite zFar or a disparity format"
            )
        wider = pixel_format.with_precision("float32")
        hint = f"; use {wider}" if wider is not pixel_format else ""
        raise DepthError(
            f"{pixel_format}: value {bad:g} exceeds the format's largest value {pixel_format.max_value:g}{hint}"
        )
    return rounded


@functools.lru_cache(maxsize=64)
def _lookup_table(mapping: DepthMapping, dtype: np.dtype, pixel_format: PixelFormat) -> np.ndarray:
    if dtype not in INTEGER_DTYPES:
        raise DepthError(f"lookup tables exist for uint8 and uint16 inputs, not {dtype}")
    codes = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)
    table = round_to_format(mapping.evaluate(codes, pixel_format.is_disparity), pixel_format)
    table.flags.writeable = False
    return table
