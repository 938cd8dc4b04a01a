"""Streams, events and the device of the simulator (``cupy.cuda``)."""

from __future__ import annotations

import itertools
import threading
import weakref

from .. import _sim
from . import runtime

_local = threading.local()
_streams: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_pointers = itertools.count(0x5000, 0x10)


class Stream:
    """A CUDA stream; no implicit ordering with the null stream is modelled (as for non-blocking streams)."""

    null: Stream

    def __init__(self, null: bool = False, non_blocking: bool = False, ptr: int = 0) -> None:
        self.ptr = 0 if null else next(_pointers)
        self.timeline = _sim.Timeline("null" if null else f"0x{self.ptr:x}")
        _streams[self.ptr] = self

    def __enter__(self) -> Stream:
        _stack().append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _stack().pop()

    def synchronize(self) -> None:
        _sim.host_wait(self.timeline, self.timeline.issued, self.timeline.now())

    def wait_event(self, event: Event) -> None:
        if event.timeline is not None:
            self.timeline.wait_for(event.timeline, event.position, event.clock)

    def record(self, event: Event | None = None) -> Event:
        event = event or Event()
        event.record(self)
        return event

    def use(self) -> Stream:
        _stack()[:] = [self]
        return self


Stream.null = Stream(null=True)


class Event:
    def __init__(self, block: bool = False, disable_timing: bool = False, interprocess: bool = False) -> None:
        self.timeline: _sim.Timeline | None = None
        self.position, self.clock = 0, {}

    def record(self, stream: Stream | None = None) -> None:
        timeline = (stream or get_current_stream()).timeline
        self.timeline, self.position, self.clock = timeline, timeline.issued, timeline.now()

    def synchronize(self) -> None:
        if self.timeline is not None:
            _sim.host_wait(self.timeline, self.position, self.clock)

    @property
    def done(self) -> bool:
        return self.timeline is None or self.timeline.done >= self.position


def get_elapsed_time(start: Event, end: Event) -> float:
    """Milliseconds between two events: the simulator keeps no time, so always 1."""
    end.synchronize()
    return 1.0


def _stack() -> list:
    if not hasattr(_local, "streams"):
        _local.streams = [Stream.null]
    return _local.streams


def get_current_stream() -> Stream:
    return _stack()[-1]


def stream_of(ptr: int) -> Stream | None:
    """The live stream with handle ``ptr`` (1 and 2 mean the default stream, as in CUDA array interfaces)."""
    return Stream.null if ptr in (0, 1, 2) else _streams.get(ptr)


class Device:
    """The one simulated device."""

    def __init__(self, device: int | None = None) -> None:
        runtime.check_enabled()
        self.id = 0
        self.attributes = {"MultiProcessorCount": runtime.MULTIPROCESSORS}
        self.compute_capability = "90"
        self.pci_bus_id = "0000:00:00.0"

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def use(self) -> None:
        pass

    def synchronize(self) -> None:
        runtime.deviceSynchronize()


class MemoryPointer:
    def __init__(self, mem: _sim.Memory, ptr: int) -> None:
        self.mem, self.ptr = mem, ptr

    def __add__(self, offset: int) -> MemoryPointer:
        return MemoryPointer(self.mem, self.ptr + offset)


__all__ = ["Device", "Event", "MemoryPointer", "Stream", "get_current_stream", "get_elapsed_time", "runtime"]
