"""gpu_depth: Apple-compatible depth and disparity maps, converted in bulk and attached to photos."""

from .api import attach_auxiliary, attach_depth, read_auxiliary, read_depth, read_mattes
from .convert import convert
from .core.auxiliary import Matte
from .core.depthdata import DepthData
from .core.formats import PixelFormat, StoredFormat
from .core.mapping import DepthMapping, Preset
from .core.metadata import CameraCalibration, DepthMetadata
from .errors import DepthError

__version__ = "0.1.0"

__all__ = [
    "CameraCalibration",
    "DepthData",
    "DepthError",
    "DepthMapping",
    "DepthMetadata",
    "Matte",
    "PixelFormat",
    "Preset",
    "StoredFormat",
    "attach_auxiliary",
    "attach_depth",
    "convert",
    "read_auxiliary",
    "read_depth",
    "read_mattes",
]
