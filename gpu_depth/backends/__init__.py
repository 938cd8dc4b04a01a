"""Conversion backends: NumPy everywhere, CuPy where an NVIDIA GPU answers.

A backend turns a batch of validated 2-D maps into rows of the output format: a list of
(height, BytesPerRow / bytes per pixel) host arrays whose padding is zero.  The batch has one
mapping for all its maps, or one per map (:func:`per_map`).  ``quantize`` gives the stored 8/16-bit maps
(:func:`gpu_depth.core.quantize.quantize`'s bits) of a batch of DepthData, as the pipeline's conversion stage
stores them for their containers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ..core.depthdata import DepthData
from ..core.formats import PixelFormat, StoredFormat
from ..core.mapping import DepthMapping
from ..core.quantize import StoredMap
from ..errors import DepthError

log = logging.getLogger("gpu_depth")

NAMES = ("auto", "cupy", "numpy")


class Backend(Protocol):
    name: str

    def convert(
        self,
        maps: list,
        mapping: DepthMapping | Sequence[DepthMapping],
        pixel_format: PixelFormat,
        row_alignment: int,
        size: tuple[int, int] | None,
    ) -> list[np.ndarray]: ...

    def quantize(self, depths: Sequence[DepthData], stored_format: StoredFormat) -> list[StoredMap]: ...


def per_map(mapping: DepthMapping | Sequence[DepthMapping], count: int) -> list[DepthMapping]:
    """One mapping per map: ``mapping`` for all ``count`` maps, or the sequence of one per map."""
    if isinstance(mapping, DepthMapping):
        return [mapping] * count
    if isinstance(mapping, (str, bytes)) or not isinstance(mapping, Sequence):
        raise DepthError(f"mapping must be a DepthMapping or a sequence of one per map, got {type(mapping).__name__}")
    if len(mapping) != count:
        raise DepthError(f"got {len(mapping)} mappings for {count} maps")
    for index, each in enumerate(mapping):
        if not isinstance(each, DepthMapping):
            raise DepthError(f"mapping {index} must be a DepthMapping, got {type(each).__name__}")
    return list(mapping)


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
