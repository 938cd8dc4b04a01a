"""The CuPy backend: the kernels of ``kernels/*.cu`` on an NVIDIA GPU, one launch per batch of maps.

Host maps are packed into pinned staging buffers and flow through two CUDA streams (double
buffering): while the kernels of batch k run on one stream, batch k+1 is packed and uploaded on the
other, and batch k−1's download completes.  Maps already on the device (DLPack, e.g. a PyTorch
tensor, or ``__cuda_array_interface__``) never pass through the host; a C-contiguous device batch is
read in place.  :meth:`CupyBackend.convert` returns host rows, :meth:`CupyBackend.convert_device`
keeps them on the device.  Results are the NumPy backend's bytes.  Each map may have its own mapping:
a batch's launch reads each map's mapping from a per-map table, and integer codes gather from the
batch's lookup tables, one per distinct mapping, back to back.

Stream rules: with device maps or results, both slot streams wait (on the device, through an
event) for the caller's current stream, so device maps may still be being written there; host maps
to host rows never wait for it.  A batch's lookup tables are uploaded on a slot's stream, and each slot
waits on their event; a batch keeps its tables alive until it is done.
Device results are allocated from the caller's stream's pool and are complete when
``convert_device`` returns: use them on that stream, or order other streams after it.  Host results
are pageable copies out of a fixed pinned buffer per slot.
"""

from __future__ import annotations

import importlib.resources
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cupy
import cupyx
import numpy as np

from ..core.depthdata import DepthData
from ..core.formats import PixelFormat, StoredFormat
from ..core.mapping import DepthMapping
from ..core.quantize import StoredMap
from ..errors import DepthError
from . import kernel_plan as kp
from . import per_map

#: Share of the free device memory (plus the pool's cached blocks) the two batches in flight may take.
MEMORY_FRACTION = 0.5
#: Largest batch: small enough that uploads, kernels and downloads of neighbouring batches overlap.
BATCH_BYTES = 256 << 20
#: Blocks per launch for each streaming multiprocessor (enough to hide memory latency).
BLOCKS_PER_SM = 8
#: Threads that pack host maps into pinned memory (NumPy copies release the GIL).
PACKERS = min(8, os.cpu_count() or 1)
#: Bytes of lookup tables (a batch's, one per distinct mapping, each at most 512 KiB) cached on the device.
TABLE_BYTES = 32 << 20
#: DLPack device types of CUDA memory (kDLCUDA, kDLCUDAManaged).
CUDA_DLPACK_DEVICES = (2, 13)


def kernel_directory() -> Path:
    """Where the ``.cu`` sources are: the installed package data, else the checkout's ``kernels/``."""
    try:
        files = importlib.resources.files("gpu_depth.kernels")
        if files.joinpath(kp.HEADER).is_file():
            return files
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "kernels"


def host_default_nan() -> str:
    """The NaN this CPU's NumPy makes from inf − inf (x86: negative, AArch64: positive), as a C literal."""
    with np.errstate(invalid="ignore"):
        nan = np.array([np.inf]) - np.inf
    return f"0x{int(nan.view(np.uint64)[0]):016X}ULL"


def module_options() -> tuple[str, ...]:
    """NVRTC options of the kernel module (CuPy adds -arch, -ftz=true and --device-as-default-execution-space)."""
    return ("-std=c++17", f"-DGD_DEFAULT_NAN={host_default_nan()}")


@cupy.memoize(for_each_device=True)
def kernel_module() -> cupy.RawModule:
    """All kernels in one module, compiled once per process and device."""
    return cupy.RawModule(code=kp.module_source(kernel_directory()), options=module_options())


def as_array(values: object) -> np.ndarray | cupy.ndarray:
    """A NumPy array, or a CuPy array for data already on a CUDA device (no copy through the host)."""
    if isinstance(values, (np.ndarray, cupy.ndarray)):
        return values
    if hasattr(values, "__dlpack_device__"):  # first: event-based, where the interface syncs the host
        if values.__dlpack_device__()[0] in CUDA_DLPACK_DEVICES:
            return cupy.from_dlpack(values)
        if not hasattr(values, "__cuda_array_interface__"):
            return np.from_dlpack(values)
    if hasattr(values, "__cuda_array_interface__"):
        return cupy.asarray(values)
    return np.asarray(values)


def contiguous_batch(maps: Sequence) -> cupy.ndarray | None:
    """The maps as one flat device array when they already lie back to back (a C-contiguous 3-D batch)."""
    first = maps[0]
    if not isinstance(first, cupy.ndarray):
        return None
    address = first.data.ptr
    for values in maps:
        if not isinstance(values, cupy.ndarray) or not values.flags.c_contiguous or values.data.ptr != address:
            return None
        address += values.nbytes
    total = sum(v.size for v in maps)
    return cupy.ndarray((total,), first.dtype, memptr=first.data)


@dataclass
class _Table:
    values: cupy.ndarray | None  # the distinct mappings' tables back to back; None: float inputs need none
    ready: cupy.cuda.Event | None  # recorded after the upload, on the stream that made it


@dataclass
class _Batch:
    indices: list[int]
    maps: list  # NumPy or CuPy arrays
    mappings: list[DepthMapping]  # one per map
    plan: kp.ConvertPlan
    out: cupy.ndarray | np.ndarray  # the rows: on the device, or in the slot's pinned buffer
    flags: np.ndarray  # pinned, filled when the slot's event fires
    table: _Table  # kept alive while the batch runs: it may belong to the other slot's pool, or be evicted


class _Slot:
    """One of the two batches in flight: its stream, staging buffers and batch."""

    def __init__(self) -> None:
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.done = cupy.cuda.Event(disable_timing=True)
        self.staging: np.ndarray | None = None
        self.host_out: np.ndarray | None = None
        self.device_in: cupy.ndarray | None = None
        self.flags = cupyx.empty_pinned(kp.MAX_MAPS, np.int32)
        self.batch: _Batch | None = None

    def staging_view(self, count: int, dtype: np.dtype) -> np.ndarray:
        return self._pinned("staging", count * dtype.itemsize).view(dtype)

    def output_view(self, count: int, dtype: np.dtype) -> np.ndarray:
        return self._pinned("host_out", count * dtype.itemsize).view(dtype)

    def _pinned(self, name: str, nbytes: int) -> np.ndarray:
        """The first ``nbytes`` of the pinned buffer ``name``, grown if it is smaller."""
        if getattr(self, name) is None or getattr(self, name).nbytes < nbytes:
            setattr(self, name, None)  # back to the pinned pool first
            setattr(self, name, cupyx.empty_pinned(nbytes, np.uint8))
        return getattr(self, name)[:nbytes]

    def input_view(self, count: int, dtype: np.dtype) -> cupy.ndarray:
        nbytes = count * dtype.itemsize
        if self.device_in is None or self.device_in.nbytes < nbytes:
            self.device_in = None  # back to the pool before the larger allocation
            self.device_in = cupy.empty(nbytes, cupy.uint8)
        return self.device_in[:nbytes].view(dtype)


class _DeviceState:
    """What every backend on one device shares across calls: streams, buffers, kernels and tables."""

    def __init__(self) -> None:
        self.device = cupy.cuda.Device()
        self.blocks = BLOCKS_PER_SM * self.device.attributes["MultiProcessorCount"]
        self.slots = (_Slot(), _Slot())
        self.functions: dict[str, cupy.RawKernel] = {}
        self.tables: OrderedDict[tuple, _Table] = OrderedDict()  # least recently used first
        self.table_bytes = 0  # of the cached tables
        self.packers = ThreadPoolExecutor(PACKERS, thread_name_prefix="gpu-depth-pack")
        self.lock = threading.Lock()  # one conversion at a time uses the slots


def _after(stream: cupy.cuda.Stream, other: cupy.cuda.Stream) -> None:
    """Order later work on ``stream`` after the work queued on ``other`` so far (no host wait)."""
    stream.wait_event(other.record())


@cupy.memoize(for_each_device=True)
def _device_state() -> _DeviceState:
    return _DeviceState()


class CupyBackend:
    """Converts batches on the current CUDA device, reusing that device's streams and buffers."""

    name = "cupy"

    def __init__(self) -> None:
        self._state = _device_state()
        self.device = self._state.device

    def convert(
        self,
        maps: list,
        mapping: DepthMapping | Sequence[DepthMapping],
        pixel_format: PixelFormat,
        row_alignment: int,
        size: tuple[int, int] | None,
    ) -> list[np.ndarray]:
        """Rows of each map on the host: one pageable array each.  ``mapping``: one for all, or one per map."""
        return self._run(maps, mapping, PixelFormat.parse(pixel_format), row_alignment, size, to_host=True)

    def convert_device(
        self,
        maps: list,
        mapping: DepthMapping | Sequence[DepthMapping],
        pixel_format: PixelFormat | str,
        row_alignment: int = 1,
        size: tuple[int, int] | None = None,
    ) -> list[cupy.ndarray]:
        """Like :meth:`convert`, but the rows stay on the device: CuPy views of one buffer per batch,
        allocated on the caller's current stream and complete on return."""
        return self._run(maps, mapping, PixelFormat.parse(pixel_format), row_alignment, size, to_host=False)

    # ---- the pipeline ----

    def _run(self, maps, mapping, fmt, row_alignment, size, to_host: bool) -> list:
        maps = [as_array(m) for m in maps]
        mappings = per_map(mapping, len(maps))
        kp.check_batch(maps, fmt, row_alignment, size)
        with self._state.lock:
            caller = cupy.cuda.get_current_stream()
            if not to_host or any(isinstance(m, cupy.ndarray) for m in maps):
                for slot in self._state.slots:
                    _after(slot.stream, caller)  # the caller's stream produced the device maps
            return self._pipeline(maps, mappings, fmt, row_alignment, size, None if to_host else caller)

    def _pipeline(self, maps, mappings, fmt, row_alignment, size, caller) -> list:
        """Rows of every map; ``caller``: the stream owning device results (None: host results)."""
        rows: list = [None] * len(maps)

        def finish(slot: _Slot) -> None:
            self._finish(slot, rows, fmt, row_alignment, size)

        number = 0
        try:
            for number, batch in enumerate(self._batches(maps, mappings, fmt, row_alignment, size), start=1):
                slot, previous = self._state.slots[number % 2], self._state.slots[(number + 1) % 2]
                finish(slot)  # batch number − 2: its buffers become free
                try:
                    self._start(slot, *batch, caller)
                except DepthError:
                    finish(previous)  # an earlier batch's error comes first, as in the NumPy path
                    raise
            finish(self._state.slots[(number + 1) % 2])
            finish(self._state.slots[number % 2])
        finally:
            for slot in self._state.slots:
                slot.stream.synchronize()
                slot.batch = None
        return rows

    def _batches(
        self, maps, mappings, fmt, row_alignment, size
    ) -> Iterator[tuple[list[int], list, list, kp.ConvertPlan]]:
        """(indices, maps, mappings, plan) per batch, in map order, each within the memory budget
        (the lookup table of each distinct mapping included)."""
        free, _ = cupy.cuda.runtime.memGetInfo()
        budget = min(BATCH_BYTES, (free + cupy.get_default_memory_pool().free_bytes()) * MEMORY_FRACTION / 2)
        for indices, dtype, resize in kp.groups(maps, size):
            target = size if resize else None
            table = kp.table_bytes(dtype, fmt, resize)
            costs: dict[tuple[int, int], int] = {}
            chosen: list[int] = []
            seen: set[DepthMapping] = set()
            used = 0
            for index in [*indices, None]:
                if index is not None:
                    shape = maps[index].shape
                    if shape not in costs:
                        costs[shape] = kp.plan_convert([shape], dtype, fmt, row_alignment, target).nbytes
                    cost = costs[shape] + (0 if mappings[index] in seen else table)
                    if not chosen or used + cost <= budget:
                        chosen.append(index)
                        seen.add(mappings[index])
                        used += cost
                        continue
                members = [maps[i] for i in chosen]
                packed = contiguous_batch(members) is not None
                yield (
                    chosen,
                    members,
                    [mappings[i] for i in chosen],
                    kp.plan_convert([m.shape for m in members], dtype, fmt, row_alignment, target, packed),
                )
                if index is not None:
                    chosen, seen, used = [index], {mappings[index]}, costs[maps[index].shape] + table

    def _start(self, slot: _Slot, indices, members, mappings: list[DepthMapping], plan, caller) -> None:
        table = self._table(slot, mappings, plan)
        if caller is not None:  # device results: from the caller's (the current) stream's pool
            d_out = cupy.empty(plan.out_size, plan.fmt.dtype)
        with slot.stream:
            d_in = contiguous_batch(members)
            if d_in is None:
                d_in = slot.input_view(plan.in_size, plan.dtype)
                self._upload(slot, members, plan, d_in)
            if caller is None:
                d_out = cupy.empty(plan.out_size, plan.fmt.dtype)
            flags = kp.run_convert(self._launch, cupy, plan, mappings, table.values, d_in, d_out, self._state.blocks)
            host_flags = slot.flags[: plan.count]
            flags.get(stream=slot.stream, out=host_flags, blocking=False)
            out = d_out
            if caller is None:
                out = slot.output_view(plan.out_size, plan.fmt.dtype)
                d_out.get(stream=slot.stream, out=out, blocking=False)
            slot.done.record(slot.stream)
        slot.batch = _Batch(indices, members, mappings, plan, out, host_flags, table)

    def _upload(self, slot: _Slot, members: list, plan: kp.ConvertPlan, d_in: cupy.ndarray) -> None:
        """Pack host maps in pinned memory (on several threads) and copy them up; device maps copy on the device."""
        layout = plan.input_layout
        if all(isinstance(m, np.ndarray) for m in members):
            staging = slot.staging_view(plan.in_size, plan.dtype)
            share = -(-len(members) // PACKERS)  # maps per packing thread
            starts = range(0, len(members), share)
            pack = self._state.packers.submit
            jobs = [pack(kp.pack, members[i : i + share], layout[i : i + share], staging) for i in starts]
            for job in jobs:
                job.result()
            d_in.set(staging, stream=slot.stream)
        else:
            kp.pack([cupy.asarray(m) for m in members], layout, d_in)

    def _finish(self, slot: _Slot, rows: list, fmt, row_alignment, size) -> None:
        batch, slot.batch = slot.batch, None
        if batch is None:
            return
        slot.done.synchronize()
        bad = kp.flagged(batch.flags)
        if bad is not None:
            target = size if batch.plan.resize else None
            kp.raise_like_numpy(cupy.asnumpy(batch.maps[bad]), batch.mappings[bad], fmt, row_alignment, target)
        views = kp.unpack(batch.out, batch.plan)
        if isinstance(batch.out, np.ndarray):  # out of the slot's pinned buffer, which the next batch reuses
            views = list(self._state.packers.map(np.array, views))
        for index, view in zip(batch.indices, views, strict=True):
            rows[index] = view

    def _table(self, slot: _Slot, mappings: list[DepthMapping], plan: kp.ConvertPlan) -> _Table:
        """The lookup tables of the batch's distinct mappings, uploaded on ``slot``'s stream if new, ordered
        before their use there; the least recently used are dropped beyond TABLE_BYTES (a batch keeps its own)."""
        if plan.dtype.kind != "u":
            return _Table(None, None)
        state, unique = self._state, tuple(kp.distinct(mappings)[0])
        key = (unique, plan.dtype, plan.fmt, plan.resize)
        table = state.tables.get(key)
        if table is None:
            host = np.ascontiguousarray(kp.device_table(unique, plan.dtype, plan.fmt, plan.resize))
            with slot.stream:
                table = _Table(cupy.asarray(host), slot.stream.record())
            state.tables[key] = table
            state.table_bytes += table.values.nbytes
            while state.table_bytes > TABLE_BYTES:
                state.table_bytes -= state.tables.popitem(last=False)[1].values.nbytes
        else:
            state.tables.move_to_end(key)
        slot.stream.wait_event(table.ready)
        return table

    def _launch(self, name: str, grid: tuple, block: tuple, args: tuple) -> None:
        """Launch after checking what CuPy does not: contiguous arrays on this device, typed scalars, grid."""
        for position, arg in enumerate(args):
            if isinstance(arg, cupy.ndarray):
                if not arg.flags.c_contiguous or arg.device.id != self.device.id:
                    raise TypeError(
                        f"{name}: argument {position} must be a contiguous array on device {self.device.id}"
                    )
            elif not isinstance(arg, np.generic):
                raise TypeError(f"{name}: argument {position} must be a CuPy array or a typed NumPy scalar")
        if not (grid[0] > 0 and 0 < grid[1] <= kp.MAX_MAPS and block == (kp.BLOCK,)):
            raise ValueError(f"{name}: bad launch grid {grid} block {block}")
        if name not in self._state.functions:
            self._state.functions[name] = kernel_module().get_function(name)
        self._state.functions[name](grid, block, args)

    # ---- storage quantisation ----

    def quantize(self, depths: Sequence[DepthData], stored_format: StoredFormat = StoredFormat.L008) -> list[StoredMap]:
        """``gpu_depth.quantize.quantize`` of each map, computed on the device: the same pixels and bounds."""
        stored = StoredFormat.parse(stored_format)
        results: list = [None] * len(depths)
        for fmt in dict.fromkeys(d.pixel_format for d in depths):
            indices = [i for i, d in enumerate(depths) if d.pixel_format is fmt]
            members = [depths[i] for i in indices]
            plan = kp.plan_quantize(
                [(d.height, d.width, d.bytes_per_row // fmt.bytes_per_pixel) for d in members], fmt, stored
            )
            d_in = cupy.zeros(plan.in_size, fmt.dtype)
            kp.pack([cupy.asarray(np.ascontiguousarray(d.array)) for d in members], plan.input_layout, d_in)
            keys, layout = kp.run_finite_range(self._launch, cupy, plan, d_in, self._state.blocks)
            params, ranges = kp.quantize_params(members, keys.get(), stored)
            d_out = cupy.empty(plan.out_size, stored.dtype)
            kp.run_quantize(self._launch, cupy, plan, d_in, layout, params, d_out, self._state.blocks)
            pixels = d_out.get()
            for index, entry, bounds in zip(indices, plan.layout, ranges, strict=True):
                depth = depths[index]
                offset, count = int(entry["out_offset"]), depth.width * depth.height
                map_pixels = pixels[offset : offset + count].reshape(depth.height, depth.width)
                results[index] = kp.stored_map(depth, map_pixels, bounds, stored)
        return results
