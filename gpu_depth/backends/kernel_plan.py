"""What the CUDA kernels in ``kernels/*.cu`` do to a batch of maps, and with which arguments.

Independent of the array library: the CuPy backend runs a plan on a device, the tests run the same
plan on the CPU with the kernels compiled for the host (``kernels/host_emulation.h``) and NumPy arrays.
``launch(name, grid, block, args)`` runs a kernel; ``xp`` is ``cupy`` or ``numpy``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.depthdata import row_bytes
from ..core.formats import PixelFormat, StoredFormat
from ..core.mapping import ABSOLUTE, DepthMapping, Preset
from ..core.metadata import PixelDataInfo
from ..core.quantize import StoredMap, round_bound
from ..errors import DepthError

SOURCES = ("convert.cu", "quantize.cu", "resample.cu", "holes.cu")
HEADER = "common.cuh"
#: Threads per block of every kernel.
BLOCK = 256
#: Every map of a batch starts on a multiple of this many bytes (whole memory transactions).
ALIGN = 256
#: Most maps in one launch (gridDim.y).
MAX_MAPS = 65535

#: struct MapLayout of kernels/common.cuh.
LAYOUT = np.dtype(
    [
        (name, "<i8")
        for name in (
            "in_offset",
            "in_pitch",
            "width",
            "height",
            "out_offset",
            "out_pitch",
            "out_width",
            "out_height",
            "tmp_offset",
        )
    ]
)

#: struct MapMapping of kernels/convert.cu: each map's mapping, so one launch covers maps of many mappings.
MAP_MAPPING = np.dtype(
    [("table_offset", "<i8"), ("kind", "<i4"), ("reciprocal", "<i4"), ("a", "<f8"), ("b", "<f8"), ("scale", "<f8")]
)

FLAG_OVERFLOW, FLAG_GRAY_RANGE, FLAG_HAS_NAN = 1, 2, 4
NO_MIN, NO_MAX = np.uint64(2**64 - 1), np.uint64(0)
METRES, GRAY, INVERTED, RELATIVE, DISPARITY_PX = 0, 1, 2, 3, 4

Launch = Callable[[str, tuple, tuple, tuple], None]


def kernel_sources(directory: Path) -> dict[str, str]:
    """The kernel sources by file name, from the directory holding them."""
    return {name: (directory / name).read_text() for name in SOURCES}


def module_source(directory: Path) -> str:
    """All kernels as one self-contained source (the shared header inlined), for one RawModule."""
    parts = [(directory / HEADER).read_text().replace("#pragma once", "")]
    parts += [text.replace(f'#include "{HEADER}"', "") for text in kernel_sources(directory).values()]
    return "\n".join(parts)


def kernel_names(source: str) -> list[str]:
    """The ``extern "C"`` kernels a source defines (directly or through its GD_* instantiation macros)."""
    direct = re.findall(r'^extern "C" __global__ void (\w+)\(', source, re.M)
    return direct + re.findall(r"^GD_[A-Z_]+\((\w+),", source, re.M)


def mapping_args(mapping: DepthMapping, fmt: PixelFormat) -> tuple[int, int, float, float, float]:
    """(kind, reciprocal, a, b, scale) of the evaluate kernels: native = a + t · b, x / scale or (x / scale + a) / b."""
    preset = mapping.preset
    reciprocal = int(fmt.is_disparity != mapping.native_is_disparity)
    if preset == Preset.DISPARITY_PX:
        return DISPARITY_PX, reciprocal, mapping.doffs, mapping.focal_px * mapping.baseline, mapping.scale
    if preset in ABSOLUTE:
        return METRES, reciprocal, 0.0, 0.0, mapping.scale
    near, far = float(mapping.near), float(mapping.far)
    if preset == Preset.RELATIVE_DISPARITY:
        kind, a, b = RELATIVE, 1.0 / far, 1.0 / near - 1.0 / far
    elif preset == Preset.INVERSE_GRAY:
        kind, a, b = GRAY, 1.0 / near, 1.0 / far - 1.0 / near
    else:
        kind, a, b = (INVERTED if preset == Preset.INVERTED_GRAY else GRAY), near, far - near
    return kind, reciprocal, a, b, 0.0


def distinct(mappings: Sequence[DepthMapping]) -> tuple[list[DepthMapping], np.ndarray]:
    """The batch's distinct mappings in order of first use, and each map's index among them."""
    first: dict[DepthMapping, int] = {}
    index = [first.setdefault(mapping, len(first)) for mapping in mappings]
    return list(first), np.array(index, np.int64)


def table_length(dtype: np.dtype) -> int:
    """Entries of one lookup table: every code of the integer dtype."""
    return int(np.iinfo(dtype).max) + 1


def mapping_table(mappings: Sequence[DepthMapping], dtype: np.dtype, fmt: PixelFormat) -> np.ndarray:
    """MAP_MAPPING per map: its mapping's arguments, and (integer codes) where its table starts in
    :func:`device_table` of the batch's distinct mappings."""
    unique, index = distinct(mappings)
    table = np.zeros(len(index), MAP_MAPPING)
    columns = np.array([mapping_args(mapping, fmt) for mapping in unique], np.float64)[index]
    for position, name in enumerate(("kind", "reciprocal", "a", "b", "scale")):
        table[name] = columns[:, position]
    if np.dtype(dtype).kind == "u":
        table["table_offset"] = index * table_length(dtype)
    return table


def _aligned(count, itemsize: int):
    """``count`` elements rounded up to whole ALIGN-byte blocks (ints or NumPy arrays)."""
    step = ALIGN // itemsize
    return -(-count // step) * step


@dataclass(frozen=True)
class ConvertPlan:
    """One launch group: maps of one dtype, all resampled (``resize``) or none."""

    dtype: np.dtype
    fmt: PixelFormat
    resize: bool
    layout: np.ndarray  # LAYOUT per map, of the final stage
    rows_shapes: list[tuple[int, int]]  # (height, elements per row) of each map's output rows
    in_size: int  # elements of the packed input
    out_size: int  # elements of the packed output rows
    values_layout: np.ndarray | None  # resize: evaluation into a tight float64 buffer of values_size
    values_size: int
    scratch_size: int  # resize: float64 elements of the area scratch

    @property
    def count(self) -> int:
        return len(self.layout)

    @property
    def input_layout(self) -> np.ndarray:
        """The layout whose in_* fields place each map in the packed input."""
        return self.layout if self.values_layout is None else self.values_layout

    @property
    def nbytes(self) -> int:
        """Device memory this group needs besides the lookup table."""
        return (
            self.in_size * self.dtype.itemsize
            + self.out_size * self.fmt.bytes_per_pixel
            + 8 * (self.values_size + self.scratch_size)
            + self.layout.nbytes * 2
        )


def plan_convert(
    shapes: Sequence[tuple[int, int]],
    dtype: np.dtype,
    fmt: PixelFormat,
    row_alignment: int,
    size: tuple[int, int] | None,
    packed: bool = False,
) -> ConvertPlan:
    """The layout of maps of one dtype, each resampled to ``size`` (width, height) or none of them.

    ``packed``: the maps already lie back to back in one buffer (a C-contiguous batch), used in place.
    """
    dtype, resize = np.dtype(dtype), size is not None
    height, width = np.array(shapes, np.int64).reshape(-1, 2).T
    out_width, out_height = (np.full_like(width, size[0]), np.full_like(height, size[1])) if resize else (width, height)
    unit = fmt.bytes_per_pixel
    step = row_bytes(fmt, 1, row_alignment)  # validates the alignment; BytesPerRow is a multiple of it
    pitch = -(-out_width * unit // step) * step // unit if row_alignment > 1 else out_width
    in_sizes = width * height if packed else _aligned(width * height, dtype.itemsize)
    out_sizes = _aligned(out_height * pitch, unit)
    layout = np.zeros(len(width), LAYOUT)
    for name, column in (("in_offset", _starts(in_sizes)), ("in_pitch", width), ("width", width), ("height", height)):
        layout[name] = column
    for name, column in (("out_offset", _starts(out_sizes)), ("out_pitch", pitch)):
        layout[name] = column
    layout["out_width"], layout["out_height"] = out_width, out_height
    values, values_size, scratch_size = None, 0, 0
    if resize:  # evaluate into tight float64 maps, then resample from them
        values = layout.copy()
        values_sizes, scratch_sizes = _aligned(width * height, 8), _aligned(2 * out_height * width, 8)
        values["out_offset"], values["out_pitch"] = _starts(values_sizes), width
        values["out_width"], values["out_height"] = width, height
        layout["in_offset"], layout["tmp_offset"] = values["out_offset"], _starts(scratch_sizes)
        values_size, scratch_size = int(values_sizes.sum()), int(scratch_sizes.sum())
    rows_shapes = list(zip(out_height.tolist(), pitch.tolist(), strict=True))
    in_size, out_size = int(in_sizes.sum()), int(out_sizes.sum())
    return ConvertPlan(dtype, fmt, resize, layout, rows_shapes, in_size, out_size, values, values_size, scratch_size)


def _starts(sizes: np.ndarray) -> np.ndarray:
    """Offsets of consecutive blocks of ``sizes`` elements."""
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def groups(maps: Sequence, size: tuple[int, int] | None) -> list[tuple[list[int], np.dtype, bool]]:
    """Runs of consecutive maps sharing a dtype and whether they are resampled (NumPy leaves a map
    whose shape already is ``size`` as it is): (indices, dtype, resize) in order."""
    runs: list[tuple[list[int], np.dtype, bool]] = []
    for index, values in enumerate(maps):
        height, width = values.shape
        key = (np.dtype(values.dtype), size is not None and tuple(size) != (width, height))
        if runs and runs[-1][1:] == key and len(runs[-1][0]) < MAX_MAPS:
            runs[-1][0].append(index)
        else:
            runs.append(([index], *key))
    return runs


def pack(maps: Sequence, layout: np.ndarray, buffer) -> None:
    """Copy each map into its place (a plan's ``input_layout``) in the flat batch buffer."""
    for values, entry in zip(maps, layout, strict=True):
        offset, pitch, height = int(entry["in_offset"]), int(entry["in_pitch"]), int(entry["height"])
        target = buffer[offset : offset + height * pitch].reshape(height, pitch)
        target[:, : int(entry["width"])] = values


def unpack(buffer, plan: ConvertPlan) -> list:
    """Views of each map's output rows in the flat output buffer."""
    views = []
    for entry, (height, pitch) in zip(plan.layout, plan.rows_shapes, strict=True):
        offset = int(entry["out_offset"])
        views.append(buffer[offset : offset + height * pitch].reshape(height, pitch))
    return views


def grid_for_rows(layout: np.ndarray, blocks: int) -> tuple[int, int]:
    """Grid of the row-striding kernels: about ``blocks`` blocks in all, no more than rows per map."""
    per_map = max(1, blocks // len(layout))
    return min(per_map, int(layout["out_height"].max()), int(layout["height"].max())), len(layout)


def _grid_for_items(items: int, maps: int, blocks: int) -> tuple[int, int]:
    """Grid of the one-thread-per-item kernels: about ``blocks`` blocks in all (grid-stride beyond)."""
    return max(1, min(-(-items // BLOCK), blocks // maps)), maps


def run_convert(
    launch: Launch,
    xp,
    plan: ConvertPlan,
    mappings: Sequence[DepthMapping],
    tables,
    d_in,
    d_out,
    blocks: int,
):
    """Launch the kernels of ``plan`` from the packed input ``d_in`` into the packed rows ``d_out``.

    ``mappings``: one per map.  ``tables``: integer inputs' :func:`device_table` of the distinct
    mappings, on the device.  Returns the per-map flags (device int32), to check once the stream is done.
    """
    count, fmt, source = plan.count, plan.fmt, plan.dtype.name
    for mapping in distinct(mappings)[0]:
        mapping.check_dtype(plan.dtype)
    flags = xp.zeros(count, xp.int32)
    layout = xp.asarray(plan.layout.view(np.int64))
    host_mappings = mapping_table(mappings, plan.dtype, fmt)
    map_mappings = xp.asarray(host_mappings.view(np.int64))
    stage_layout, stage_out = layout, d_out
    if plan.resize:
        stage_layout, stage_out = xp.asarray(plan.values_layout.view(np.int64)), xp.empty(plan.values_size, xp.float64)
    target = "float64" if plan.resize else fmt.dtype.name
    grid = grid_for_rows(plan.input_layout, blocks)
    if plan.dtype.kind == "u":
        launch(f"gather_{source}_{target}", grid, (BLOCK,), (d_in, tables, stage_out, stage_layout, map_mappings))
    else:
        ranges = xp.zeros(2 * count, xp.uint64)
        if (host_mappings["kind"] == RELATIVE).any():
            ranges[0::2] = NO_MIN
            launch(f"finite_range_{source}", grid, (BLOCK,), (d_in, stage_layout, ranges))
        args = (d_in, stage_out, stage_layout, map_mappings, ranges, flags)
        launch(f"evaluate_{source}_{target}", grid, (BLOCK,), args)
    if plan.resize:
        scratch = xp.empty(plan.scratch_size, xp.float64)
        spans = plan.layout["out_height"] * plan.layout["width"], plan.layout["out_height"] * plan.layout["out_width"]
        columns, rows = (_grid_for_items(int(n.max()), count, blocks) for n in spans)
        launch("area_columns", columns, (BLOCK,), (stage_out, scratch, layout, flags))
        launch(f"area_rows_{fmt.dtype.name}", rows, (BLOCK,), (scratch, d_out, layout, flags))
    return flags


def device_table(
    mappings: Sequence[DepthMapping], dtype: np.dtype, fmt: PixelFormat, resize: bool
) -> np.ndarray | None:
    """The host lookup tables an integer plan gathers from, one per mapping back to back (None for float inputs).

    Without resampling each is ``lookup_table`` itself; before resampling, the float64 values of every
    code (``evaluate`` is elementwise for integer inputs, so the table is exactly what it returns).
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "u":
        return None
    if not resize:
        return np.concatenate([mapping.lookup_table(dtype, fmt) for mapping in mappings])
    return np.concatenate([mapping.code_values(dtype, fmt.is_disparity) for mapping in mappings])


def table_bytes(dtype: np.dtype, fmt: PixelFormat, resize: bool) -> int:
    """Device bytes of one mapping's table in :func:`device_table` (0 for float inputs)."""
    dtype = np.dtype(dtype)
    return table_length(dtype) * (8 if resize else fmt.bytes_per_pixel) if dtype.kind == "u" else 0


def flagged(flags: np.ndarray) -> int | None:
    """Index of the first map whose kernel flagged an error (overflow, gray outside [0, 1])."""
    bad = np.flatnonzero(np.asarray(flags) & (FLAG_OVERFLOW | FLAG_GRAY_RANGE))
    return int(bad[0]) if bad.size else None


def raise_like_numpy(values: np.ndarray, mapping: DepthMapping, fmt: PixelFormat, row_alignment: int, size) -> None:
    """Raise the DepthError the NumPy path raises for a map a kernel flagged (same text, by construction)."""
    from .numpy_backend import convert_map

    convert_map(np.asarray(values), mapping, fmt, row_alignment, size)
    raise RuntimeError("a kernel flagged a map that the NumPy path converts: the kernels disagree with NumPy")


@dataclass(frozen=True)
class QuantizePlan:
    """Maps of one format read from their rows, quantised into tight stored maps."""

    fmt: PixelFormat
    stored: StoredFormat
    layout: np.ndarray
    in_size: int
    out_size: int

    @property
    def input_layout(self) -> np.ndarray:
        return self.layout


def plan_quantize(shapes: Sequence[tuple[int, int, int]], fmt: PixelFormat, stored: StoredFormat) -> QuantizePlan:
    """Layout of maps given as (height, width, elements per row) of their DepthData rows."""
    layout = np.zeros(len(shapes), LAYOUT)
    in_size = out_size = 0
    for index, (height, width, pitch) in enumerate(shapes):
        layout[index] = (in_size, pitch, width, height, out_size, width, width, height, 0)
        in_size += _aligned(height * pitch, fmt.bytes_per_pixel)
        out_size += _aligned(height * width, stored.dtype.itemsize)
    return QuantizePlan(fmt, stored, layout, in_size, out_size)


def run_finite_range(launch: Launch, xp, plan: QuantizePlan, d_in, blocks: int):
    """Device keys (min, max) per map of the finite samples; see :func:`bounds`."""
    keys = xp.zeros(2 * plan.layout.size, xp.uint64)
    keys[0::2] = NO_MIN
    layout = xp.asarray(plan.layout.view(np.int64))
    launch(f"finite_range_{plan.fmt.dtype.name}", grid_for_rows(plan.layout, blocks), (BLOCK,), (d_in, layout, keys))
    return keys, layout


def quantize_params(depths: Sequence, keys: np.ndarray, stored: StoredFormat) -> tuple[np.ndarray, list]:
    """(low, scale, IntMin) per map for the quantize kernel and (IntMin, FloatMin, FloatMax) per map, as
    ``quantize`` computes them from each map's finite min/max keys and its holes (IntMin 1 when the host
    map has a NaN); a map without a finite value is refused."""
    params, ranges = [], []
    for depth, (low_key, high_key) in zip(depths, np.asarray(keys, np.uint64).reshape(-1, 2), strict=True):
        if low_key == NO_MIN:
            raise DepthError(f"{depth.width}x{depth.height} depth map has no finite value to store")
        low = round_bound(_unkey(int(low_key)), up=False)
        high = round_bound(_unkey(int(high_key)), up=True)
        bottom = int(not np.isfinite(depth.array).all())
        params.append((low, (stored.max_code - bottom) / (high - low) if high > low else 0.0, bottom))
        ranges.append((bottom, low, high))
    return np.array(params, np.float64).reshape(-1), ranges


def stored_map(depth, pixels: np.ndarray, bounds: tuple[int, float, float], stored: StoredFormat) -> StoredMap:
    """The StoredMap ``quantize`` returns for ``depth`` around the kernel's pixels; ``bounds``: IntMin, FloatMin/Max."""
    fmt = depth.pixel_format
    bottom, low, high = bounds
    info = PixelDataInfo(fmt.quantity, fmt.code, stored.code, bottom, stored.max_code, low, high)
    return StoredMap(pixels, info, depth.metadata)


def _unkey(key: int) -> float:
    bits = key & ~(1 << 63) if key >> 63 else ~key & (2**64 - 1)
    return float(np.array(bits, np.uint64).view(np.float64))


def run_quantize(launch: Launch, xp, plan: QuantizePlan, d_in, layout, params: np.ndarray, d_out, blocks: int) -> None:
    """Write the stored maps; ``params`` holds (low, scale, IntMin) per map."""
    name = f"quantize_{plan.fmt.dtype.name}_{plan.stored.dtype.name}"
    args = (d_in, d_out, layout, xp.asarray(params, xp.float64), np.float64(plan.stored.max_code))
    launch(name, grid_for_rows(plan.layout, blocks), (BLOCK,), args)


def plan_fill(shapes: Sequence[tuple[int, int, int]], fmt: PixelFormat) -> tuple[np.ndarray, int]:
    """Layout of maps given as (height, width, elements per row) of their rows, the same in and out,
    and the elements of the buffers holding them all."""
    layout = np.zeros(len(shapes), LAYOUT)
    size = 0
    for index, (height, width, pitch) in enumerate(shapes):
        layout[index] = (size, pitch, width, height, size, pitch, width, height, 0)
        size += _aligned(height * pitch, fmt.bytes_per_pixel)
    return layout, size


def run_fill_holes(launch: Launch, xp, fmt: PixelFormat, layout: np.ndarray, d_rows, d_tmp, d_out, blocks: int):
    """Fill the holes of every map (``core.holes.fill_holes``): rows from ``d_rows`` into ``d_tmp``, then
    columns from ``d_tmp`` into ``d_out``; a depth map's farther value is the larger, a disparity map's the smaller."""
    name, device_layout = f"fill_lines_{fmt.dtype.name}", xp.asarray(layout.view(np.int64))
    larger = np.int32(not fmt.is_disparity)
    for columns, source, target in ((0, d_rows, d_tmp), (1, d_tmp, d_out)):
        lines = int(layout["width" if columns else "height"].max())
        grid = _grid_for_items(lines, len(layout), blocks)
        launch(name, grid, (BLOCK,), (source, target, device_layout, np.int32(columns), larger))


def check_batch(maps: Sequence, fmt: PixelFormat, row_alignment: int, size) -> None:
    """Host-side validation before any launch: shapes, dtypes, alignment and size."""
    from ..core.mapping import FLOAT_DTYPES, INTEGER_DTYPES

    for index, values in enumerate(maps):
        shape, dtype = getattr(values, "shape", None), getattr(values, "dtype", None)
        if shape is None or len(shape) != 2 or 0 in shape:
            raise DepthError(f"map {index}: expected a non-empty 2-D array, got shape {shape}")
        if np.dtype(dtype) not in INTEGER_DTYPES + FLOAT_DTYPES:
            raise DepthError(f"map {index}: unsupported dtype {dtype}; use uint8, uint16 or float32")
    row_bytes(fmt, 1, row_alignment)
    if size is not None and (len(size) != 2 or min(size) <= 0):
        raise DepthError(f"size must be a positive (width, height), got {size!r}")
