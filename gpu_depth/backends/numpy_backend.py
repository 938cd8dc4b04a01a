"""The NumPy backend: lookup-table gathers for integer maps, one float64 evaluation otherwise."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..core.depthdata import DepthData, empty_rows
from ..core.formats import PixelFormat, StoredFormat
from ..core.mapping import DepthMapping, round_to_format
from ..core.quantize import StoredMap, quantize
from ..core.resample import area_resize
from . import per_map


class NumpyBackend:
    name = "numpy"

    def convert(
        self,
        maps: list,
        mapping: DepthMapping | Sequence[DepthMapping],
        pixel_format: PixelFormat,
        row_alignment: int,
        size: tuple[int, int] | None,
    ) -> list[np.ndarray]:
        """Rows of each map, converted with its mapping (``mapping``, or one per map), one after the other."""
        mappings = per_map(mapping, len(maps))
        return [
            convert_map(np.asarray(m), each, pixel_format, row_alignment, size)
            for m, each in zip(maps, mappings, strict=True)
        ]

    def quantize(self, depths: Sequence[DepthData], stored_format: StoredFormat = StoredFormat.L008) -> list[StoredMap]:
        """``gpu_depth.core.quantize.quantize`` of each map, one after the other."""
        stored = StoredFormat.parse(stored_format)
        return [quantize(depth, stored) for depth in depths]


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
        result = area_resize(_evaluated(values, mapping, pixel_format.is_disparity), width, height)
    elif values.dtype.kind == "u":
        rows = empty_rows(pixel_format, width, height, row_alignment)
        gather(mapping.lookup_table(values.dtype, pixel_format), values, rows[:, :width])
        return rows
    else:
        result = mapping.evaluate(values, pixel_format.is_disparity)
    rows = empty_rows(pixel_format, width, height, row_alignment)
    rows[:, :width] = round_to_format(result, pixel_format)
    return rows


def _evaluated(values: np.ndarray, mapping: DepthMapping, disparity: bool) -> np.ndarray:
    """``mapping.evaluate(values)``: integer codes looked up among every code's value (0.4 ms, not 1.6 ms, for
    762K codes), float values evaluated."""
    if values.dtype.kind == "u":
        return mapping.code_values(values.dtype, disparity).take(values)
    return mapping.evaluate(values, disparity)


#: Maps smaller than this many pixels are gathered on the calling thread.
PARALLEL_PIXELS = 1 << 20
WORKERS = os.cpu_count() or 1


def gather(table: np.ndarray, codes: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = table[codes]``, split into row bands across threads (NumPy releases the GIL)."""
    if codes.size < PARALLEL_PIXELS:
        np.take(table, codes, out=out, mode="clip")
        return
    band = -(-codes.shape[0] // (4 * WORKERS))
    starts = range(0, codes.shape[0], band)
    list(_pool().map(lambda s: np.take(table, codes[s : s + band], out=out[s : s + band], mode="clip"), starts))


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(WORKERS, thread_name_prefix="gpu-depth-gather")
