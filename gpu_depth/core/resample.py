"""Area (box) resampling of depth maps, NaN-aware: each output pixel is the mean of the valid input
area it covers, with fractional pixels weighted by their covered fraction (iPhones store 768×576
maps for 4032×3024 photos)."""

from __future__ import annotations

import numpy as np

from ..errors import DepthError

try:
    from . import _resample as _compiled  # the C integral, where the package was built with a C compiler
except ImportError:
    _compiled = None


def area_resize(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resample a 2-D float map to ``width`` × ``height`` by area averaging, in float64.

    NaN pixels are left out of each mean; an output pixel that covers only NaN is NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise DepthError(f"expected a 2-D map to resample, got {values.ndim}-D")
    if width <= 0 or height <= 0:
        raise DepthError(f"resample size must be positive, got {width}x{height}")
    invalid = np.isnan(values)
    if not invalid.any():
        return _integrate(_integrate(values, 0, height), 1, width) / (values.size / (width * height))
    valid = ~invalid
    sums, counts = np.where(valid, values, 0.0), valid.astype(np.float64)
    for axis, size in ((0, height), (1, width)):
        sums, counts = (_integrate(a, axis, size) for a in (sums, counts))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def compiled() -> bool:
    """Whether :func:`area_resize` integrates in C (else in NumPy)."""
    return _compiled is not None


def _integrate(values: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Integral of the piecewise-constant ``values`` over each of ``size`` equal spans of ``axis``.

    Each span touches at most ``ceil(length / size) + 1`` pixels; tap k adds, for every span at
    once, its k-th pixel times the length of that pixel inside the span (pixels in ascending order).
    In C (``_resample.c``) where built: the same sums to the bit, in one pass.
    """
    if _compiled is not None:
        values = np.ascontiguousarray(values, dtype=np.float64)
        height, width = values.shape
        out = np.empty((size, width) if axis == 0 else (height, size))
        _compiled.integrate(values, height, width, axis, out, size)
        return out
    values = np.moveaxis(values, axis, 0)
    length = values.shape[0]
    edges = np.arange(size + 1, dtype=np.float64) * (length / size)
    start = np.floor(edges[:-1]).astype(np.intp)
    shape = (-1,) + (1,) * (values.ndim - 1)
    total = np.zeros((size, *values.shape[1:]))
    for tap in range(-(-length // size) + 1):
        pixel = start + tap
        covered = np.clip(np.minimum(edges[1:], pixel + 1) - np.maximum(edges[:-1], pixel), 0.0, None)
        covered[pixel >= length] = 0.0
        total += covered.reshape(shape) * values[np.minimum(pixel, length - 1)]
    return np.moveaxis(total, 0, axis)
