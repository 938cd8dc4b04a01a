"""Hole filling: the farther valid neighbour, rows then columns, values copied bit for bit."""

import numpy as np
import pytest

from gpu_depth import DepthError
from gpu_depth.core.depthdata import DepthData
from gpu_depth.core.holes import fill_depth, fill_holes
from gpu_depth.core.metadata import DepthMetadata

NAN = np.nan


def test_a_hole_takes_the_farther_neighbour_and_row_ends_the_nearest():
    row = np.array([[NAN, 2.0, NAN, NAN, 5.0, NAN]], np.float32)
    assert fill_holes(row, larger_is_farther=True).tolist() == [[2, 2, 5, 5, 5, 5]]  # depth: larger is farther
    assert fill_holes(row, larger_is_farther=False).tolist() == [[2, 2, 2, 2, 5, 5]]  # disparity: smaller


def test_rows_without_a_valid_pixel_are_filled_down_the_columns():
    values = np.array([[1.0, NAN, 3.0], [NAN, NAN, NAN], [4.0, NAN, NAN]], np.float16)
    assert fill_holes(values, larger_is_farther=True).tolist() == [[1, 3, 3], [4, 4, 4], [4, 4, 4]]


def test_filled_values_are_copies_of_valid_ones():
    rng = np.random.default_rng(2)
    values = rng.lognormal(0, 1, (40, 50)).astype(np.float32)
    values[rng.random(values.shape) < 0.8] = NAN
    filled = fill_holes(values, larger_is_farther=False)
    valid = ~np.isnan(values)
    assert np.array_equal(filled[valid], values[valid]) and set(filled.ravel()) <= set(values[valid])


def test_a_map_without_valid_pixels_cannot_be_filled():
    with pytest.raises(DepthError, match="no valid pixel"):
        fill_holes(np.full((2, 2), NAN, np.float32), larger_is_farther=True)


def test_fill_depth_counts_and_marks_the_map_filtered():
    depth = DepthData.from_array(np.array([[NAN, 1.0], [2.0, NAN]]), "fdep", metadata=DepthMetadata(filtered=False))
    filled, count = fill_depth(depth)
    assert count == 2 and filled.metadata.filtered and filled.array.tolist() == [[1, 1], [2, 2]]
    assert fill_depth(filled) == (filled, 0)
