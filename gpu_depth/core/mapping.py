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
    #: Gray 0 = far, 1 = near, linear in depth (Facebook 3D photos).
    INVERTED_GRAY = "inverted-gray"
    #: Gray 0 = near, 1 = far, linear in disparity (DNG DepthFormat 2, GDepth RangeInverse).
    INVERSE_GRAY = "inverse-gray"
    #: KITTI depth: integer codes of metres × 256, 0 = invalid (``metric`` with depth_scale 256).
    KITTI = "kitti"
    #: Integer millimetres (Redwood, ScanNet, ARKitScenes), 0 = invalid (``metric`` with depth_scale 1000).
    MILLIMETRES = "mm16"
    #: Float metres (Depth Pro, metric Depth Anything), or integer codes with ``depth_scale`` codes per metre
    #: (TUM 5000, RealSense L515 4000); non-finite, 0 or negative = invalid.
    METRIC = "metric"
    #: Stereo disparity in pixels (float, or integer with ``depth_scale`` codes per pixel: KITTI 256):
    #: depth = focal_px · baseline / (d + doffs); d ≤ 0 = invalid.
    DISPARITY_PX = "disparity-px"
    #: Relative disparity, larger = nearer, rescaled so its range spans 1/far … 1/near (MiDaS, Depth
    #: Anything, and their visualised 8/16-bit PNGs).
    RELATIVE_DISPARITY = "relative-disparity"


_RANGED = {Preset.APPLE_GRAY, Preset.INVERTED_GRAY, Preset.INVERSE_GRAY, Preset.RELATIVE_DISPARITY}
_NATIVE_DISPARITY = {Preset.INVERSE_GRAY, Preset.RELATIVE_DISPARITY, Preset.DISPARITY_PX}
#: Integer codes per metre of the named integer presets.
UNITS_PER_METRE = {Preset.KITTI: 256.0, Preset.MILLIMETRES: 1000.0}
#: Presets whose values are metric (Accuracy absolute); the gray and relative ones are relative.
ABSOLUTE = {Preset.KITTI, Preset.MILLIMETRES, Preset.METRIC, Preset.DISPARITY_PX}
#: Presets taking a depth_scale for integer maps.
_SCALABLE = {Preset.METRIC, Preset.DISPARITY_PX}


@dataclass(frozen=True)
class DepthMapping:
    """A preset plus what it needs: zNear/zFar (metres) for gray and relative presets, codes per metre
    (or per pixel of disparity) for integer metric maps, and the stereo rig for ``disparity-px``.

    ``DepthMapping("apple-gray", near=0.5, far=8)`` maps gray 0 to 0.5 m and gray 1 to 8 m;
    ``DepthMapping("metric", depth_scale=5000)`` reads TUM's uint16 codes as 1/5000 m;
    ``DepthMapping("disparity-px", focal_px=721.5, baseline=0.54, depth_scale=256)`` reads KITTI disparity.
    Integer gray inputs are normalised by their largest code (255 or 65535); float inputs are used as
    they are, except relative disparity, which each map's own finite min/max normalises.
    """

    preset: Preset = Preset.APPLE_GRAY
    near: float | None = None
    far: float | None = None
    depth_scale: float | None = None
    focal_px: float | None = None
    baseline: float | None = None
    doffs: float = 0.0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "preset", Preset(self.preset))
        except ValueError:
            names = ", ".join(p.value for p in Preset)
            raise DepthError(f"unknown preset {self.preset!r}; expected one of {names}") from None
        if self.preset in _RANGED:
            self._check_range()
        elif self.near is not None or self.far is not None:
            raise DepthError(f"preset {self.preset.value} takes no --near/--far: its values are metric")
        if self.depth_scale is not None:
            self._check_scale()
        if self.preset == Preset.DISPARITY_PX:
            self._check_rig()
        elif self.focal_px is not None or self.baseline is not None or self.doffs:
            raise DepthError(
                f"--focal-px, --baseline and --doffs belong to --preset disparity-px, not {self.preset.value}"
            )

    def _check_range(self) -> None:
        near, far, name = self.near, self.far, self.preset.value
        if near is None or far is None:
            raise DepthError(f"preset {name} needs --near and --far (metres)")
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

    def _check_scale(self) -> None:
        name, scale = self.preset.value, self.depth_scale
        if self.preset in UNITS_PER_METRE:
            raise DepthError(
                f"preset {name} is --preset metric --depth-scale {UNITS_PER_METRE[self.preset]:g}; give one of them"
            )
        if self.preset not in _SCALABLE:
            raise DepthError(f"--depth-scale belongs to --preset metric or disparity-px, not {name}")
        if not (math.isfinite(scale) and scale > 0):
            raise DepthError(f"--depth-scale must be a positive number of codes per unit, got {scale}")

    def _check_rig(self) -> None:
        for flag, value in (("--focal-px", self.focal_px), ("--baseline", self.baseline)):
            if value is None:
                raise DepthError("preset disparity-px needs --focal-px (pixels) and --baseline (metres)")
            if not (math.isfinite(value) and value > 0):
                raise DepthError(f"{flag} must be a positive number, got {value}")
        if not math.isfinite(self.doffs):
            raise DepthError(f"--doffs must be a finite number of pixels, got {self.doffs}")

    @property
    def native_is_disparity(self) -> bool:
        """Whether the preset is linear in disparity (True) or in depth (False)."""
        return self.preset in _NATIVE_DISPARITY

    @property
    def accuracy(self) -> str:
        """AVDepthData's accuracy of what the mapping makes: ``absolute`` for metric inputs, else ``relative``."""
        return "absolute" if self.preset in ABSOLUTE else "relative"

    @property
    def scale(self) -> float:
        """Input units per metre (or per pixel of disparity) of the metric presets; 1 for float inputs."""
        return self.depth_scale or UNITS_PER_METRE.get(self.preset, 1.0)

    def describe(self) -> str:
        """The mapping in one line, as the run's summary and report print it."""
        name = self.preset.value
        if self.preset in _RANGED:
            return f"{name}, near {self.near:g} m, far {self.far:g} m"
        per = f"codes / {self.scale:g}" if self.scale != 1.0 or self.depth_scale else "values"
        if self.preset == Preset.DISPARITY_PX:
            shift = f" + {self.doffs:g}" if self.doffs else ""
            return f"{name}: depth = {self.focal_px:g} px · {self.baseline:g} m / (pixels{shift}), pixels = {per}"
        return f"{name}: metres = {per}, 0 = invalid"

    def check_dtype(self, dtype: np.dtype | str) -> None:
        """Refuse a map whose dtype the preset cannot mean (integer codes as metres, floats as codes)."""
        dtype, name = np.dtype(dtype), self.preset.value
        if dtype.kind == "u" and self.preset == Preset.METRIC and self.depth_scale is None:
            raise DepthError(
                f"preset metric reads float metres, but this map holds {dtype} codes: give --depth-scale N, its codes "
                "per metre (5000 TUM, 4000 RealSense L515), or --preset mm16 (millimetres) or kitti (metres x 256)"
            )
        if dtype.kind == "u" and self.preset == Preset.DISPARITY_PX and self.depth_scale is None:
            raise DepthError(
                f"preset disparity-px reads float pixels, but this map holds {dtype} codes: give --depth-scale N, "
                "its codes per pixel (KITTI stereo: 256)"
            )
        if dtype.kind == "f" and (self.preset in UNITS_PER_METRE or self.depth_scale is not None):
            what = f"--depth-scale {self.depth_scale:g}" if self.depth_scale else f"preset {name}"
            fits = (
                "--preset disparity-px without --depth-scale"
                if self.preset == Preset.DISPARITY_PX
                else "--preset metric"
            )
            raise DepthError(f"{what} reads integer codes, but this map holds {dtype} values: use {fits}")

    def evaluate(self, values: np.ndarray, disparity: bool) -> np.ndarray:
        """Depth (m) or disparity (1/m) of each input value in float64; NaN where invalid."""
        values = np.asarray(values)
        if values.dtype not in INTEGER_DTYPES + FLOAT_DTYPES:
            raise DepthError(f"unsupported depth map dtype {values.dtype}; use uint8, uint16 or float32")
        self.check_dtype(values.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            native = self._native(values)
            return native if disparity == self.native_is_disparity else 1.0 / native

    def _native(self, values: np.ndarray) -> np.ndarray:
        if self.preset == Preset.DISPARITY_PX:
            return _inverse_depth(values, self.scale, self.doffs, self.focal_px * self.baseline)
        if self.preset in ABSOLUTE:
            return _metres(values, self.scale)
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

    def code_values(self, dtype: np.dtype | str, disparity: bool) -> np.ndarray:
        """:meth:`evaluate` of every code of an integer dtype, unrounded: ``code_values(...)[codes]`` is
        ``evaluate(codes)``, which is elementwise for integer codes."""
        return _code_values(self, np.dtype(dtype), disparity)


def _metres(values: np.ndarray, scale: float) -> np.ndarray:
    metres = values.astype(np.float64) / scale
    metres[~(metres > 0) | np.isinf(metres)] = INVALID
    return metres


def _inverse_depth(values: np.ndarray, scale: float, doffs: float, focal_baseline: float) -> np.ndarray:
    """1/m of stereo disparity: (d / scale + doffs) / (f · B); invalid unless d > 0 and the result is > 0, finite."""
    raw = values.astype(np.float64)
    inverse = (raw / scale + doffs) / focal_baseline
    inverse[~(raw > 0) | ~(inverse > 0) | np.isinf(inverse)] = INVALID
    return inverse


def _gray(values: np.ndarray, inverted: bool) -> np.ndarray:
    if values.dtype.kind == "u":
        top = float(np.iinfo(values.dtype).max)
        codes = values.astype(np.float64)
        return ((top - codes) if inverted else codes) / top
    gray = values.astype(np.float64)
    outside = (gray < 0) | (gray > 1)
    if outside.any():
        where = np.unravel_index(int(np.argmax(outside)), gray.shape)
        raise DepthError(
            f"gray value {gray[where]} at index {tuple(map(int, where))} is outside [0, 1] "
            "(float gray maps hold 0..1; for metres use --preset metric)"
        )
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


@functools.lru_cache(maxsize=16)  # 512 KiB each for uint16
def _code_values(mapping: DepthMapping, dtype: np.dtype, disparity: bool) -> np.ndarray:
    if dtype not in INTEGER_DTYPES:
        raise DepthError(f"code tables exist for uint8 and uint16 inputs, not {dtype}")
    table = mapping.evaluate(np.arange(np.iinfo(dtype).max + 1, dtype=dtype), disparity)
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=64)
def _lookup_table(mapping: DepthMapping, dtype: np.dtype, pixel_format: PixelFormat) -> np.ndarray:
    if dtype not in INTEGER_DTYPES:
        raise DepthError(f"lookup tables exist for uint8 and uint16 inputs, not {dtype}")
    codes = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)
    table = round_to_format(mapping.evaluate(codes, pixel_format.is_disparity), pixel_format)
    table.flags.writeable = False
    return table
