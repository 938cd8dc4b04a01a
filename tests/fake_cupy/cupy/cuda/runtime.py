"""The CUDA runtime calls of the simulator; the device answers only while ``enabled``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .. import _sim

#: Off by default, so that the rest of the suite keeps choosing the NumPy backend; tests/backends turns it on.
enabled = False
MULTIPROCESSORS = 1
memoryTypeUnregistered, memoryTypeHost, memoryTypeDevice = 0, 1, 2
memcpyDeviceToDevice = 3


class CUDARuntimeError(RuntimeError):
    pass


def check_enabled() -> None:
    if not enabled:
        raise CUDARuntimeError("cudaErrorNoDevice: the stream simulator's device is switched off")


def getDeviceCount() -> int:
    check_enabled()
    return 1


def runtimeGetVersion() -> int:
    return 12080


def driverGetVersion() -> int:
    return 12080


def getDeviceProperties(device: int) -> dict:
    return {"name": b"gpu_depth stream simulator", "totalGlobalMem": 16 << 30, "multiProcessorCount": MULTIPROCESSORS}


def memGetInfo() -> tuple[int, int]:
    check_enabled()
    return 8 << 30, 16 << 30


def deviceSynchronize() -> None:
    from . import _streams

    for stream in list(_streams.values()):
        stream.synchronize()


def pointerGetAttributes(ptr: int) -> SimpleNamespace:
    kind = memoryTypeUnregistered
    if _sim.device_memory(ptr) is not None:
        kind = memoryTypeDevice
    elif any(start <= ptr < start + raw.size for start, raw in list(_sim._pinned.items())):
        kind = memoryTypeHost
    return SimpleNamespace(type=kind, device=0, devicePointer=ptr, hostPointer=ptr)


def memcpyAsync(dst: int, src: int, size: int, kind: int, stream: int) -> None:
    """Device-to-device bytes between simulated allocations, queued on the stream with handle ``stream``."""
    from . import stream_of

    views = []
    for ptr in (dst, src):
        memory = _sim.device_memory(ptr)
        if memory is None or ptr + size > memory.ptr + memory.size:
            raise CUDARuntimeError(f"cudaErrorInvalidValue: 0x{ptr:x} + {size} is not simulated device memory")
        views.append((memory.block, memory.block.raw[ptr - memory.ptr : ptr - memory.ptr + size]))
    (target, to), (source, frm) = views
    stream_of(stream).timeline.enqueue(lambda: np.copyto(to, frm), reads=[source], writes=[target])
