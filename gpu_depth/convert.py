"""``convert``: gray or metric depth maps → DepthData in a Core Video depth format."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .backends import select_backend
from .depthdata import DepthData, DepthMetadata
from .errors import DepthError
from .formats import PixelFormat
from .mapping import FLOAT_DTYPES, INTEGER_DTYPES, DepthMapping

ArrayLike = np.ndarray  # or any object with __cuda_array_interface__ / DLPack on the cupy backend


def convert(
    maps: ArrayLike | Sequence[ArrayLike],
    pixel_format: PixelFormat | str,
    mapping: DepthMapping,
    *,
    row_alignment: int = 1,
    size: tuple[int, int] | None = None,
    metadata: DepthMetadata | None = None,
    backend: str = "auto",
) -> DepthData | list[DepthData]:
    """Convert one map (2-D) or a batch (a sequence, or a 3-D array) to DepthData.

    ``pixel_format``: ``hdis`` ``fdis`` ``hdep`` ``fdep``.  ``row_alignment``: BytesPerRow is padded to a
    multiple of it (1 = tight rows; padding is zero).  ``size``: (width, height) to area-resample to.
    Every value is the correctly rounded float16/float32 of the float64 result of ``mapping``;
    invalid pixels are NaN.  A map with no valid pixel is an error.
    """
    fmt = PixelFormat.parse(pixel_format)
    if not isinstance(mapping, DepthMapping):
        raise DepthError(f"mapping must be a DepthMapping, got {type(mapping).__name__}")
    single = getattr(maps, "ndim", None) == 2
    batch = [maps] if single else list(_split(maps))
    for index, values in enumerate(batch):
        _check_map(values, index)
    if size is not None:
        size = _check_size(size)
    engine = select_backend(backend)
    rows = engine.convert(batch, mapping, fmt, row_alignment, size)
    results = []
    for index, (values, map_rows) in enumerate(zip(batch, rows, strict=True)):
        width = size[0] if size else values.shape[1]
        _check_valid(map_rows, width, values.dtype, mapping, fmt, index)
        results.append(DepthData.from_rows(map_rows, fmt, width, metadata))
    return results[0] if single else results


def _split(maps: object) -> Iterable:
    if getattr(maps, "ndim", None) == 3:
        return (maps[i] for i in range(maps.shape[0]))
    if isinstance(maps, (str, bytes)) or not isinstance(maps, Iterable):
        raise DepthError(f"expected a 2-D map, a 3-D batch or a sequence of maps, got {type(maps).__name__}")
    return maps


def _check_map(values: object, index: int) -> None:
    shape, dtype = getattr(values, "shape", None), getattr(values, "dtype", None)
    if shape is None or dtype is None:
        raise DepthError(f"map {index}: expected an array, got {type(values).__name__}")
    if len(shape) != 2 or 0 in shape:
        raise DepthError(f"map {index}: expected a non-empty 2-D array, got shape {tuple(shape)}")
    if np.dtype(dtype) not in INTEGER_DTYPES + FLOAT_DTYPES:
        raise DepthError(f"map {index}: unsupported dtype {dtype}; use uint8, uint16 or float32")


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise DepthError(f"size must be (width, height), got {size!r}") from None
    if width <= 0 or height <= 0:
        raise DepthError(f"size must be positive, got {width}x{height}")
    return width, height


def _check_valid(
    rows: np.ndarray, width: int, dtype: np.dtype, mapping: DepthMapping, fmt: PixelFormat, index: int
) -> None:
    """Refuse a map without one valid pixel (all NaN, all KITTI zeros …)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "u" and not np.isnan(mapping.lookup_table(dtype, fmt)).any():
        return
    if np.isnan(rows[:, :width]).all():
        raise DepthError(f"map {index}: no valid depth pixel (all invalid or NaN)")
