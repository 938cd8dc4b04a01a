"""Hole filling: invalid (NaN) pixels take the farther of their nearest valid neighbours, as the KITTI
stereo devkit's ``interpolateBackground`` fills disparity maps.

Each row first: a hole between two valid pixels takes the farther of the two (larger depth, smaller
disparity), a hole at a row's end the nearest valid pixel of its row.  Then the same down each column,
which fills the rows that held no valid pixel.  Every filled value is a copy of a measured one (no
blending across an object's edge; occlusion holes, which lie behind the nearer surface, get the
background), so the map's values and bits stay those of its valid pixels.  ``kernels/holes.cu`` does
the same per row and column thread, to the bit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import DepthError
from .depthdata import DepthData


def fill_holes(values: np.ndarray, larger_is_farther: bool) -> np.ndarray:
    """A copy of the 2-D float map ``values`` with every NaN filled; DepthError if nothing is valid."""
    values = np.asarray(values)
    if values.ndim != 2 or values.dtype.kind != "f":
        raise DepthError(f"expected a 2-D float map to fill, got {values.ndim}-D {values.dtype}")
    if np.isnan(values).all():
        raise DepthError("the map has no valid pixel to fill its holes from")
    farther = np.fmax if larger_is_farther else np.fmin
    return _fill_lines(_fill_lines(values, farther).T, farther).T.copy()


def _fill_lines(values: np.ndarray, farther) -> np.ndarray:
    """Each row's holes: the farther of the nearest valid pixels left and right (either one at the ends)."""
    valid = ~np.isnan(values)
    if valid.all():
        return values.copy()
    width = values.shape[1]
    index = np.arange(width, dtype=np.int32)
    left = np.maximum.accumulate(np.where(valid, index, -1), axis=1)
    right = np.minimum.accumulate(np.where(valid, index, width)[:, ::-1], axis=1)[:, ::-1]
    nan = np.array(np.nan, values.dtype)
    left_value = np.where(left >= 0, np.take_along_axis(values, np.maximum(left, 0), 1), nan)
    right_value = np.where(right < width, np.take_along_axis(values, np.minimum(right, width - 1), 1), nan)
    return np.where(valid, values, farther(left_value, right_value))


def refuse_holes(values: np.ndarray, container: str) -> None:
    """DepthError when ``values`` has NaN pixels, for which ``container`` has no code."""
    holes = int(np.isnan(values).sum())
    if holes:
        raise DepthError(f"{container} depth maps cannot hold holes ({holes} NaN pixels): fill them (--holes fill)")


def fill_depth(depth: DepthData) -> tuple[DepthData, int]:
    """``depth`` with its holes filled and marked filtered, and the number of pixels filled."""
    holes = int(np.isnan(depth.array).sum())
    if not holes:
        return depth, 0
    filled = fill_holes(depth.array, larger_is_farther=not depth.pixel_format.is_disparity)
    metadata = replace(depth.metadata, filtered=True)
    return DepthData.from_array(filled, depth.pixel_format, metadata=metadata), holes
