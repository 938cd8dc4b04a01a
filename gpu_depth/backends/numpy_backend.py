"""The NumPy backend: lookup-table gathers for integer maps, one float64 evaluation otherwise."""

from __future__ import annotations

import numpy as np

from ..depthdata import empty_rows
from ..formats import PixelFormat
from ..mapping import DepthMapping, round_to_format
from ..resample import area_resize


class NumpyBackend:
    name = "numpy"

    def convert(
        self,
        maps: list,
        mapping: DepthMapping,
        pixel_format: PixelFormat,
        row_alignment: int,
        size: tuple[int, int] | None,
    ) -> list[np.ndarray]:
        return [convert_map(np.asarray(m), mapping, pixel_format, row_alignment, size) for m in maps]


def convert_map(
    values: np.ndarray,
    mapping: DepthMapping,
    pixel_format: PixelFormat,
    row_alignment: int = 1,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Rows of one map in ``pixel_format``, resampled by area to ``size`` (width, height) if given."""
    height, width = values.shape
    if size is not None and size != (width, height):
        width, height = size
        result = area_resize(mapping.evaluate(values, pixel_format.is_disparity), width, height)
    elif values.dtype.kind == "u":
        rows = empty_rows(pixel_format, width, height, row_alignment)
        np.take(mapping.lookup_table(values.dtype, pixel_format), values, out=rows[:, :width], mode="clip")
        return rows
    else:
        result = mapping.evaluate(values, pixel_format.is_disparity)
    rows = empty_rows(pixel_format, width, height, row_alignment)
    rows[:, :width] = round_to_format(result, pixel_format)
    return rows
