"""Conversion backends: NumPy everywhere, CuPy where an NVIDIA GPU answers.

A backend turns a batch of validated 2-D maps into rows of the output format: a list of
(height, BytesPerRow / bytes per pixel) host arrays whose padding is zero.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from ..core.formats import PixelFormat
from ..core.mapping import DepthMapping
from ..errors import DepthError

log = logging.getLogger("gpu_depth")

NAMES = ("auto", "cupy", "numpy")


class Backend(Protocol):
    name: str

    def convert(
        self,
        maps: list,
        mapping: DepthMapping,
        pixel_format: PixelFormat,
        row_alignment: int,
        size: tuple[int, int] | None,
    ) -> list[np.ndarray]: ...


def select_backend(name: str = "auto") -> Backend:
    """The backend called ``name``; ``auto`` is CuPy when a device answers, else NumPy (logged)."""
    if name not in NAMES:
        raise DepthError(f"unknown backend {name!r}; expected one of {', '.join(NAMES)}")
    if name == "numpy":
        from .numpy_backend import NumpyBackend

        return NumpyBackend()
    reason = cupy_unavailable()
    if reason is None:
        from .cupy_backend import CupyBackend

        backend = CupyBackend()
    elif name == "cupy":
        raise DepthError(f"backend cupy is not usable: {reason}")
    else:
        from .numpy_backend import NumpyBackend

        backend = NumpyBackend()
        log.info("gpu_depth: using the numpy backend (%s)", reason)
    return backend


def cupy_unavailable() -> str | None:
    """Why CuPy cannot run here, or None when it can."""
    try:
        import cupy
    except ImportError:
        return "cupy is not installed"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA device"
    except Exception as exc:  # CUDA raises driver/runtime errors of several kinds
        return f"no CUDA device answers ({str(exc).splitlines()[0]})"
    try:
        from . import cupy_backend  # noqa: F401
    except ImportError as exc:
        return f"the cupy backend is not available ({exc})"
    return None
