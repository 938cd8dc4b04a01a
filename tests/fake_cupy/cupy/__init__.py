"""A stand-in for CuPy on machines without a GPU: the stream simulator of gpu_depth's test suite.

tests/conftest.py puts it first on ``sys.path`` when real CuPy is absent, so the real
``gpu_depth/backends/cupy_backend.py`` runs on it; tests/backends switches its one device on.

- Device arrays live over NumPy.  Every device operation (copies, fills, kernel launches) is queued
  on its stream and runs only when the host waits: ``Stream``/``Event.synchronize``, blocking copies
  (``get()``, ``asnumpy``, copies into pageable memory), ``__cuda_array_interface__`` consumers.
  ``wait_event`` orders streams.  Copies from pageable memory read it when issued, from pinned memory
  when they run.
- New device and pinned memory holds poison; a device block freed (its last array dropped) is
  poisoned on its owner stream's timeline, as CuPy's stream-ordered pool hands it to that stream's
  next allocation; freed pinned memory is poisoned at once.
- Every device access is also checked when issued against vector clocks (``_sim``): a read not
  ordered after the block's last write, a write not ordered after earlier uses, or a free not
  ordered after every use raises ``RaceError`` at the next simulator call, whatever order the
  queues happen to run in.
- ``RawModule`` compiles the exact module source and options with kernels/host_emulation.h and
  g++ (tests/helpers/host_kernels.py); launches run those kernels on the arrays' bytes.

Teeth (checked by hand once for issue 18, /tmp script deleting each point in turn and running
tests/backends/test_simulator.py and test_cupy_backend.py): the synchronisation points of
gpu_depth/backends/cupy_backend.py, and a test that fails when that point alone is deleted:

1. ``_run``: both slot streams wait (event) for the caller's stream when maps or results are on the
   device → test_device_maps_to_device_rows_like_numpy, test_input_still_being_written_when_converted.
2. ``_start``: device results allocated on the caller's stream, not the slot's →
   test_device_results_belong_to_the_callers_stream (RaceError: freed while the consumer reads).
3. ``_table``: the slot waits on the table's upload event → test_host_results_are_pageable_… (RaceError).
4. ``_table``: tables uploaded on the slot's stream, not the caller's →
   test_new_tables_do_not_wait_for_the_callers_stream.
5. ``_Batch.table``: a batch keeps its table alive → test_table_eviction_under_load (RaceError at the free).
6. ``_pipeline``: ``finish(slot)`` before the slot takes a new batch → test_many_batches_keep_order_and_errors.
7. ``_finish``: ``slot.done.synchronize()`` before reading flags and rows → every host-result test.
8. ``_pipeline``: the final ``slot.stream.synchronize()`` → test_errors_leave_the_slots_idle (RaceError at the free).
9. ``_start``: ``slot.done`` recorded after the downloads → every host-result test (poison flags).
10. ``_finish``: host rows copied out of the slot's pinned buffer → test_pinned_memory_stays_bounded.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _sim, cuda
from .cuda import get_current_stream

__version__ = "13.6.0+simulator"
SIMULATOR = _sim

uint8, uint16, uint32, uint64 = np.uint8, np.uint16, np.uint32, np.uint64
int32, int64, float16, float32, float64 = np.int32, np.int64, np.float16, np.float32, np.float64


class ndarray:
    """A device array: a NumPy view of a simulated device allocation."""

    def __init__(self, shape, dtype=float, memptr: cuda.MemoryPointer | None = None, strides=None) -> None:
        dtype, shape = np.dtype(dtype), tuple(np.atleast_1d(shape).tolist()) if shape != () else ()
        if memptr is None:
            memptr = _allocate(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
        self._mem = memptr.mem
        offset = memptr.ptr - memptr.mem.ptr
        self._a = np.ndarray(shape, dtype, buffer=memptr.mem.block.raw, offset=offset, strides=strides)

    @classmethod
    def _view(cls, mem: _sim.Memory, values: np.ndarray) -> ndarray:
        array = cls.__new__(cls)
        array._mem, array._a = mem, values
        return array

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    ndim = property(lambda self: self._a.ndim)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: self._view(self._mem, self._a.T))
    data = property(lambda self: cuda.MemoryPointer(self._mem, self._a.ctypes.data))
    device = property(lambda self: cuda.Device())

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getitem__(self, key) -> ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(not isinstance(k, (int, np.integer, slice, type(None), type(Ellipsis))) for k in key):
            raise NotImplementedError("the simulator supports basic indexing only")
        return self._view(self._mem, self._a[key if Ellipsis in key else (*key, Ellipsis)])

    def __setitem__(self, key, value) -> None:
        _copy(self[key], value, get_current_stream())

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` instead.")

    def fill(self, value) -> None:
        self[...] = value

    def view(self, dtype) -> ndarray:
        return self._view(self._mem, self._a.view(dtype))

    def reshape(self, *shape) -> ndarray:
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        try:
            return self._view(self._mem, np.reshape(self._a, shape, copy=False))
        except ValueError:
            return self.copy().reshape(shape)

    def ravel(self) -> ndarray:
        return self.reshape(-1)

    def copy(self) -> ndarray:
        result = empty(self.shape, self.dtype)
        result[...] = self
        return result

    def astype(self, dtype) -> ndarray:
        result = empty(self.shape, dtype)
        result[...] = self
        return result

    def get(self, stream: cuda.Stream | None = None, order: str = "C", out: np.ndarray | None = None, blocking=True):
        """Device → host copy; into pageable memory it completes before returning, as CUDA's does."""
        stream = stream or get_current_stream()
        out = np.empty(self.shape, self.dtype) if out is None else out
        pinned = _sim.pinned_raw(out)
        target = out if pinned is None else pinned
        source = self._a
        stream.timeline.enqueue(lambda: np.copyto(target, source), reads=[self._mem.block])
        if blocking or pinned is None:
            stream.synchronize()
        return out

    def set(self, values: np.ndarray, stream: cuda.Stream | None = None) -> None:
        _copy(self, values, stream or get_current_stream())

    @property
    def __cuda_array_interface__(self) -> dict:
        stream = get_current_stream()
        return {
            "shape": self.shape,
            "typestr": self.dtype.str,
            "data": (self._a.ctypes.data, False),
            "strides": None if self.flags.c_contiguous else self.strides,
            "version": 3,
            "stream": stream.ptr or 1,
        }

    def __dlpack__(self, stream: int | None = None, **kwargs) -> _Capsule:
        """Event-based hand-over: the consumer's stream waits for the producer's current stream."""
        _sim.stats["dlpack"] += 1
        consumer = cuda.stream_of(stream if stream is not None else 1)
        producer = get_current_stream()
        if consumer is not None and consumer is not producer:
            consumer.wait_event(producer.record())
        return _Capsule(self)

    def __dlpack_device__(self) -> tuple[int, int]:
        return 2, 0


class _Capsule:
    def __init__(self, array: ndarray) -> None:
        self.array = array


def _allocate(nbytes: int) -> cuda.MemoryPointer:
    cuda.runtime.check_enabled()
    memory = _sim.Memory(nbytes, get_current_stream().timeline)
    return cuda.MemoryPointer(memory, memory.ptr)


def _copy(target: ndarray, value, stream: cuda.Stream) -> None:
    """``target[...] = value`` on ``stream``: from the device, pinned memory (read when it runs) or pageable."""
    reads = []
    if isinstance(value, ndarray):
        source, reads = value._a, [value._mem.block]
    elif isinstance(value, np.ndarray) and _sim.pinned_raw(value) is not None:
        source = _sim.pinned_raw(value)
    else:
        source = np.array(value, copy=True)
    view = target._a
    stream.timeline.enqueue(lambda: np.copyto(view, source, casting="unsafe"), reads=reads, writes=[target._mem.block])


def empty(shape, dtype=float) -> ndarray:
    return ndarray(shape, dtype)


def zeros(shape, dtype=float) -> ndarray:
    array = ndarray(shape, dtype)
    array.fill(0)
    return array


def asarray(values, dtype=None) -> ndarray:
    if isinstance(values, ndarray):
        return values if dtype is None or np.dtype(dtype) == values.dtype else values.astype(dtype)
    if hasattr(values, "__cuda_array_interface__"):
        return _from_interface(values.__cuda_array_interface__)
    host = np.asarray(values, dtype)
    array = empty(host.shape, host.dtype)
    array.set(host)
    return array


def ascontiguousarray(values) -> ndarray:
    values = asarray(values)
    return values if values.flags.c_contiguous else values.copy()


def _from_interface(interface: dict) -> ndarray:
    """As CuPy reads a CUDA array interface: after synchronising the producer's stream on the host."""
    _sim.stats["cuda_array_interface"] += 1
    stream = interface.get("stream")
    if stream is not None:
        cuda.stream_of(stream).synchronize()
    ptr = interface["data"][0]
    memory = _sim.device_memory(ptr)
    if memory is None:
        raise ValueError(f"0x{ptr:x} is not simulated device memory")
    values = np.ndarray(
        interface["shape"], interface["typestr"], memory.block.raw, ptr - memory.ptr, interface.get("strides")
    )
    return ndarray._view(memory, values)


def from_dlpack(values) -> ndarray:
    capsule = values.__dlpack__(stream=get_current_stream().ptr or 1)
    if not isinstance(capsule, _Capsule):
        raise TypeError("the simulator takes DLPack capsules of simulated arrays only")
    return capsule.array


def asnumpy(values, stream: cuda.Stream | None = None) -> np.ndarray:
    return values.get(stream) if isinstance(values, ndarray) else np.asarray(values)


def memoize(for_each_device: bool = False):
    return functools.cache


class _Pool:
    def free_bytes(self) -> int:
        return 0

    def used_bytes(self) -> int:
        return sum(ref().size for ref in list(_sim._device.values()) if ref() is not None)


_pool = _Pool()


def get_default_memory_pool() -> _Pool:
    return _pool


class RawModule:
    """The module's source and options compiled for the host (tests/helpers/host_kernels.py)."""

    def __init__(self, code: str, options: tuple = (), **kwargs) -> None:
        from helpers.host_kernels import compile_host

        self.library = compile_host(code, tuple(options))

    def get_function(self, name: str) -> RawKernel:
        return RawKernel(self.library, name)


class RawKernel:
    def __init__(self, library, name: str) -> None:
        from helpers.host_kernels import read_only

        getattr(library, f"emu_{name}")  # unknown names fail here, as cuModuleGetFunction does
        self.library, self.name, self.read_only = library, name, read_only(library, name)

    def __call__(self, grid: tuple, block: tuple, args: tuple, shared_mem: int = 0) -> None:
        from helpers.host_kernels import launch

        stream = get_current_stream()
        arrays = [(i, a) for i, a in enumerate(args) if isinstance(a, ndarray)]
        reads = [a._mem.block for _, a in arrays]
        writes = [a._mem.block for i, a in arrays if not self.read_only >> i & 1]
        values = tuple(a._a if isinstance(a, ndarray) else a for a in args)
        library, name = self.library, self.name
        stream.timeline.enqueue(lambda: launch(library, name, grid, block, values), reads=reads, writes=writes)
