"""The engine of the stream simulator: timelines whose work runs only when the host waits, device
memory over NumPy poisoned as CuPy's stream-ordered pool reuses it, pinned host memory, and a
happens-before check of every device access (vector clocks per stream, joined by events)."""

from __future__ import annotations

import collections
import ctypes
import itertools
import threading
import weakref

import numpy as np

#: Byte that fills new and freed memory (float16 −0.0222, float32 −2.9e−16, uint8 165).
POISON = 0xA5

_lock = threading.RLock()
#: Ordering errors found (a finaliser cannot raise): raised by the next simulator call, checked by the suite.
violations: list[str] = []
#: Host waits and protocol uses, for tests of the backend's behaviour.
stats: collections.Counter = collections.Counter()
_host_clock: dict[int, int] = {}
_pinned: dict[int, np.ndarray] = {}  # start address → raw bytes of live pinned blocks
_device: dict[int, weakref.ref] = {}  # start address → live Memory


class RaceError(AssertionError):
    """Device work the program's synchronisation does not order."""


def check() -> None:
    """Raise the first ordering error found since the last check."""
    if violations:
        message = violations.pop(0)
        violations.clear()
        raise RaceError(message)


def _join(a: dict, b: dict) -> dict:
    return {key: max(a.get(key, 0), b.get(key, 0)) for key in a.keys() | b.keys()}


class Timeline:
    """One stream's queue: operations run in order, only when the host (or a waiting stream) needs them."""

    _ids = itertools.count(1)

    def __init__(self, name: str) -> None:
        self.id, self.name = next(self._ids), name
        self.pending: collections.deque = collections.deque()
        self.issued = self.done = 0
        self.clock: dict[int, int] = {}  # positions of other timelines this one has waited for

    def now(self) -> dict[int, int]:
        return {**self.clock, self.id: self.issued}

    def enqueue(self, op, reads=(), writes=(), raising: bool = True) -> None:
        """Queue ``op``; ``reads``/``writes``: the device Blocks it touches, checked for ordering now
        (work issued after a host wait is ordered after what the host waited for)."""
        with _lock:
            if raising:
                check()
            self.issued += 1
            access, clock = (self, self.issued), _join(self.now(), _host_clock)
            for block in reads:
                block.access(access, clock, write=False)
            for block in writes:
                block.access(access, clock, write=True)
            self.pending.append(op)

    def wait_for(self, other: Timeline, position: int, clock: dict) -> None:
        """What cudaStreamWaitEvent does: later work here runs after ``other`` reached ``position``."""
        with _lock:
            self.enqueue(lambda: other.run_until(position))
            self.clock = _join(self.clock, clock)

    def run_until(self, position: int) -> None:
        with _lock:
            while self.done < position:
                op = self.pending.popleft()
                self.done += 1
                op()


def host_wait(timeline: Timeline, position: int, clock: dict) -> None:
    """The host blocks until ``timeline`` reached ``position``: everything that orders before it runs."""
    global _host_clock
    with _lock:
        check()
        stats["host_waits"] += 1
        timeline.run_until(position)
        _host_clock = _join(_host_clock, clock)
        check()


def _ordered(access: tuple, clock: dict) -> bool:
    timeline, position = access
    return clock.get(timeline.id, 0) >= position


class Block:
    """A device allocation: its bytes, owner stream, last writer and readers since."""

    def __init__(self, nbytes: int, owner: Timeline) -> None:
        self.raw = np.full(max(nbytes, 1), POISON, np.uint8)  # new memory holds garbage
        self.nbytes, self.owner, self.freed = nbytes, owner, False
        self.writer, self.readers = (owner, owner.issued), []  # allocated in the owner's order

    def access(self, access: tuple, clock: dict, write: bool) -> None:
        verb = "writes" if write else "reads"
        if self.freed:
            violations.append(f"stream {access[0].name} {verb} a {self.nbytes}-byte block after it was freed")
        for earlier in [self.writer, *self.readers] if write else [self.writer]:
            if not _ordered(earlier, clock):
                violations.append(
                    f"stream {access[0].name} {verb} a {self.nbytes}-byte block (owner {self.owner.name}) "
                    f"not ordered after operation {earlier[1]} of stream {earlier[0].name}"
                )
        if write:
            self.writer, self.readers = access, []
        else:
            self.readers.append(access)

    def free(self) -> None:
        """Back to the owner stream's pool: its next allocation may overwrite the bytes, in its order."""
        with _lock:
            clock = _join(self.owner.now(), _host_clock)
            for earlier in [self.writer, *self.readers]:
                if not _ordered(earlier, clock):
                    violations.append(
                        f"a {self.nbytes}-byte block was freed to the pool of stream {self.owner.name} while "
                        f"operation {earlier[1]} of stream {earlier[0].name} may still use it"
                    )
            self.freed = True
            raw = self.raw
            self.owner.enqueue(lambda: raw.fill(POISON), raising=False)


class Memory:
    """What a CuPy array keeps alive: freeing it returns the Block to its stream's pool."""

    def __init__(self, nbytes: int, owner: Timeline) -> None:
        self.block = Block(nbytes, owner)
        self.ptr, self.size = self.block.raw.ctypes.data, nbytes
        _device[self.ptr] = weakref.ref(self)
        weakref.finalize(self, _free_device, self.block, self.ptr)


def _free_device(block: Block, ptr: int) -> None:
    _device.pop(ptr, None)
    block.free()


def device_memory(ptr: int) -> Memory | None:
    """The live device allocation holding address ``ptr``."""
    for start, ref in list(_device.items()):
        memory = ref()
        if memory is not None and start <= ptr < start + max(memory.size, 1):
            return memory
    return None


def empty_pinned(nbytes: int) -> np.ndarray:
    """Pinned host bytes: poisoned when new and when the last view is dropped (the pinned pool reuses them)."""
    raw = np.full(max(nbytes, 1), POISON, np.uint8)
    handle = (ctypes.c_uint8 * raw.size).from_buffer(raw)
    _pinned[raw.ctypes.data] = raw
    weakref.finalize(handle, _free_pinned, raw)
    return np.frombuffer(handle, np.uint8)[:nbytes]


def _free_pinned(raw: np.ndarray) -> None:
    _pinned.pop(raw.ctypes.data, None)
    raw.fill(POISON)


def pinned_raw(array: np.ndarray) -> np.ndarray | None:
    """A view of the same pinned bytes as ``array`` that does not keep its handle alive (None: pageable)."""
    if not isinstance(array, np.ndarray) or array.size == 0:
        return None
    address = array.ctypes.data
    for start, raw in list(_pinned.items()):
        if start <= address < start + raw.size:
            return np.ndarray(array.shape, array.dtype, buffer=raw, offset=address - start, strides=array.strides)
    return None


def pinned_bytes() -> int:
    """Bytes of pinned host memory alive now."""
    return sum(raw.size for raw in _pinned.values())
