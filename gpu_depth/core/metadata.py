"""What a depth map's container says about it besides the pixels: AVDepthData's metadata and the
camera calibration, and the ``apdi`` description of the stored integer map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DepthError

#: DepthDataVersion written by iOS 16 (0x00010005).
DEPTH_DATA_VERSION = 65541


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
    """What AVDepthData says about its map besides the pixels."""

    accuracy: str = "relative"  # or "absolute"
    filtered: bool = True
    quality: str = "high"  # or "low"
    version: int = DEPTH_DATA_VERSION
    calibration: CameraCalibration | None = None

    def __post_init__(self) -> None:
        if self.accuracy not in ("relative", "absolute"):
            raise DepthError(f"metadata Accuracy must be relative or absolute, got {self.accuracy!r}")
        if self.quality not in ("high", "low"):
            raise DepthError(f"metadata Quality must be high or low, got {self.quality!r}")


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
        return self.image_type in ("disparity", "depth") and self.subtype is None
