"""What a depth map's container says about it besides the pixels: AVDepthData's metadata and the
camera calibration, and the ``apdi`` description of the stored integer map."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import DepthError
from .formats import PixelFormat, StoredFormat


@dataclass(frozen=True)
class CameraCalibration:
    """AVCameraCalibrationData's fields, matrices row-major (the XMP stores them column-major)."""

    intrinsic_matrix: tuple[tuple[float, float, float], ...]
    reference_dimensions: tuple[int, int]
    extrinsic_matrix: tuple[tuple[float, float, float, float], ...] = (
        (1.0, 0.0, 0.0, 0.0),
        (0.0, 1.0, 0.0, 0.0),
        (0.0, 0.0, 1.0, 0.0),
    )
    lens_distortion_coefficients: tuple[float, ...] = ()
    inverse_lens_distortion_coefficients: tuple[float, ...] = ()
    lens_distortion_center: tuple[float, float] | None = None
    pixel_size: float | None = None  # millimetres

    def __post_init__(self) -> None:
        if np.shape(self.intrinsic_matrix) != (3, 3) or np.shape(self.extrinsic_matrix) != (3, 4):
            raise DepthError("camera calibration: intrinsic matrix must be 3x3 and extrinsic 3x4")
        if len(self.reference_dimensions) != 2 or min(self.reference_dimensions) <= 0:
            raise DepthError(f"camera calibration: bad reference dimensions {self.reference_dimensions}")


@dataclass(frozen=True)
class DepthMetadata:
    """What AVDepthData says about its map besides the pixels; None where it is not known.

    Reading reports only what the file holds (a GDepth or a bare-SEI map holds none of these);
    writing fills what is None from one of the :data:`WRITE_PROFILES`.
    """

    accuracy: str | None = None  # "relative" or "absolute"
    filtered: bool | None = None
    quality: str | None = None  # "high" or "low"
    version: int | None = None  # DepthDataVersion
    calibration: CameraCalibration | None = None
    #: Portrait signals (depthData:PortraitScore, PortraitScoreIsHigh): iPhones with a portrait matte write
    #: 0.97…/True, macOS ImageIO 0/False for a custom map.
    portrait_score: float | None = None
    portrait_score_is_high: bool | None = None

    def __post_init__(self) -> None:
        if self.accuracy not in (None, "relative", "absolute"):
            raise DepthError(f"metadata Accuracy must be relative or absolute, got {self.accuracy!r}")
        if self.quality not in (None, "high", "low"):
            raise DepthError(f"metadata Quality must be high or low, got {self.quality!r}")

    def for_writing(self, profile: str = "imageio") -> DepthMetadata:
        """The metadata with every unknown field as the writer ``profile`` (a :data:`WRITE_PROFILES` key)
        writes it; a field the profile omits stays unknown (and unwritten)."""
        if profile not in WRITE_PROFILES:
            raise DepthError(f"unknown XMP profile {profile!r}; expected {' or '.join(WRITE_PROFILES)}")
        filled = {k: v for k, v in WRITE_PROFILES[profile].items() if getattr(self, k) is None}
        return replace(self, **filled)


#: What a written depth XMP says where the metadata leaves a field unknown, by writer:
#: ``imageio`` (the default): what macOS ImageIO writes for a custom map handed to
#: ``CGImageDestinationAddAuxiliaryDataInfo``, the path Apple documents for custom depth: Filtered False,
#: Quality low, PortraitScore 0, PortraitScoreIsHigh False and no DepthDataVersion;
#: ``iphone``: what an iPhone Portrait capture writes (the iPhone 14 sample's values).
WRITE_PROFILES: dict[str, dict[str, object]] = {
    "imageio": {
        "accuracy": "relative",
        "filtered": False,
        "quality": "low",
        "portrait_score": 0.0,
        "portrait_score_is_high": False,
    },
    "iphone": {
        "accuracy": "relative",
        "filtered": True,
        "quality": "high",
        "version": 85538,
        "portrait_score": 0.978223,
        "portrait_score_is_high": True,
    },
}


@dataclass(frozen=True)
class PixelDataInfo:
    """The ``apdi`` properties: what the stored integer map is and how it maps to floats."""

    image_type: str  # "disparity" or "depth"
    native_format: int  # CVPixelFormat code AVDepthData reports ('hdis' …)
    stored_format: int  # 'L008' or 'L016'
    int_min: int
    int_max: int
    float_min: float
    float_max: float
    subtype: str | None = None  # e.g. "portraiteffectsmatte" for mattes

    @property
    def is_depth_map(self) -> bool:
        """True for a disparity or depth map, False for mattes and other auxiliary images."""
        return is_depth_type(self.image_type, self.subtype)

    def problems(self) -> list[str]:
        """What makes the values unusable, one line each (empty: none): a NativeFormat of another quantity
        than the image type, a StoredFormat that is not L008/L016 or an IntMin..IntMax outside its codes,
        a FloatMin..FloatMax that is not finite, reversed, or too wide for float64 arithmetic.  Readers refuse
        such a map and ``gpu-depth verify`` calls each an error."""
        problems = []
        try:
            native = PixelFormat.parse(self.native_format)
            if native.quantity != self.image_type:
                problems.append(f"apdi:NativeFormat {native.fourcc} holds {native.quantity}, not {self.image_type}")
        except DepthError:
            problems.append(f"apdi:NativeFormat {self.native_format} is not hdis, fdis, hdep or fdep")
        try:
            top = StoredFormat.parse(self.stored_format).max_code
            if not 0 <= self.int_min < self.int_max <= top:
                problems.append(
                    f"apdi:IntMinValue/IntMaxValue {self.int_min}/{self.int_max} are not a range in 0..{top}"
                )
        except DepthError:
            problems.append(f"apdi:StoredFormat {self.stored_format} is not L008 or L016")
        low, high = self.float_min, self.float_max
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            problems.append(f"apdi:FloatMinValue/FloatMaxValue {low:g}/{high:g} are not a finite range (min <= max)")
        elif not math.isfinite((high - low) * max(1, self.int_max - self.int_min)):  # as dequantize computes
            problems.append(f"apdi:FloatMinValue/FloatMaxValue {low:g}/{high:g} span more than a float64 holds")
        return problems


def is_depth_type(image_type: object, subtype: object = None) -> bool:
    """Whether ``apdi:AuxiliaryImageType`` (and ``AuxiliaryImageSubType``) name a disparity or depth map:
    mattes are ``depth`` with a subtype, gain maps and unknown types are other words."""
    return image_type in ("disparity", "depth") and subtype in (None, "")
