"""Area (box) resampling of depth maps, NaN-aware: each output pixel is the mean of the valid input
area it covers, with fractional pixels weighted by their covered fraction (iPhones store 768×576
maps for 4032×3024 photos)."""

from __future__ import annotations

import numpy as np

from .errors import DepthError


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


def _integrate(values: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Integral of the piecewise-constant ``values`` over each of ``size`` equal spans of ``axis``.

    Linear interpolation of the cumulative sum gives exact fractional coverage in O(n).
    """
    values = np.moveaxis(values, axis, 0)
    length = values.shape[0]
    cumulative = np.empty((length + 1, *values.shape[1:]))
    cumulative[0] = 0.0
    np.cumsum(values, axis=0, out=cumulative[1:])
    edges = np.arange(size + 1, dtype=np.float64) * (length / size)
    whole = np.minimum(np.floor(edges).astype(np.intp), length - 1)
    fraction = (edges - whole).reshape((-1,) + (1,) * (values.ndim - 1))
    at_edges = cumulative[whole] + fraction * values[whole]
    return np.moveaxis(np.diff(at_edges, axis=0), 0, axis)
