"""The stream simulator (tests/fake_cupy) catches what it must, and the CuPy backend never makes the
host wait where a device would not: checks that need the simulator's view of the queues."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from helpers.maps import RANGED

from gpu_depth.backends.numpy_backend import NumpyBackend
from gpu_depth.core.formats import PixelFormat

cupy = pytest.importorskip("cupy")
if not hasattr(cupy, "SIMULATOR"):
    pytest.skip("real CuPy: the simulator's checks do not apply", allow_module_level=True)
cupy_backend = pytest.importorskip("gpu_depth.backends.cupy_backend")
sim = cupy.SIMULATOR


def test_work_runs_only_when_the_host_waits():
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        values = cupy.zeros(4, cupy.float32)
    assert values._a.view(np.uint8)[0] == sim.POISON  # the fill is still queued
    stream.synchronize()
    assert not values._a.any()


def test_unordered_read_is_a_race():
    writer, reader = cupy.cuda.Stream(non_blocking=True), cupy.cuda.Stream(non_blocking=True)
    with writer:
        unordered = cupy.zeros(4, cupy.float32)
    with reader, pytest.raises(sim.RaceError, match="not ordered after"):
        unordered.copy()
        reader.synchronize()
    writer.synchronize()
    reader.synchronize()
    with writer:
        values = cupy.zeros(4, cupy.float32)
    reader.wait_event(writer.record())
    with reader:
        assert not cupy.asnumpy(values.copy(), stream=reader).any()


def test_free_while_another_stream_reads_is_a_race():
    owner, reader = cupy.cuda.Stream(non_blocking=True), cupy.cuda.Stream(non_blocking=True)
    with owner:
        values = cupy.zeros(4, cupy.float32)
    reader.wait_event(owner.record())
    with reader:
        copied = values.copy()
    del values
    gc.collect()
    with pytest.raises(sim.RaceError, match="freed to the pool"):
        copied.get(stream=reader)


def test_copies_from_pinned_memory_read_it_when_they_run():
    import cupyx

    staging = cupyx.empty_pinned(3, np.float32)
    staging[:] = 1.0
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        values = cupy.empty(3, cupy.float32)
    values.set(staging, stream=stream)
    staging[:] = 2.0  # before the copy ran
    assert (values.get(stream=stream) == 2.0).all()


def test_kernels_are_the_host_compiled_module():
    module = cupy_backend.kernel_module()
    with pytest.raises(AttributeError):
        module.get_function("no_such_kernel")


def test_new_tables_do_not_wait_for_the_callers_stream():
    """A model's queued work on the caller's stream: host maps, and the new table, do not wait behind it."""
    backend = cupy_backend.CupyBackend()
    caller = cupy.cuda.Stream(non_blocking=True)
    with caller:
        model = cupy.zeros(1 << 12, cupy.uint8)  # queued work
        model_done = caller.record()
        maps = [np.arange(60, dtype=np.uint8).reshape(6, 10)]
        rows = backend.convert(maps, RANGED["inverse-gray"], PixelFormat.HDIS, 1, None)
    assert not model_done.done
    expected = NumpyBackend().convert(maps, RANGED["inverse-gray"], PixelFormat.HDIS, 1, None)
    assert rows[0].tobytes() == expected[0].tobytes()
    caller.synchronize()
    del model


def test_pinned_memory_stays_bounded():
    backend = cupy_backend.CupyBackend()
    maps = [np.full((40, 50), i, np.uint8) for i in range(64)]
    backend.convert(maps, RANGED["apple-gray"], PixelFormat.FDEP, 1, None)
    held = backend.convert(maps, RANGED["apple-gray"], PixelFormat.FDEP, 1, None)[0]
    gc.collect()
    before = sim.pinned_bytes()
    for _ in range(3):
        backend.convert(maps, RANGED["inverted-gray"], PixelFormat.FDEP, 1, None)
    gc.collect()
    assert sim.pinned_bytes() <= before
    assert held.base is None or held.base.nbytes == held.nbytes  # one map's rows, not the batch's
