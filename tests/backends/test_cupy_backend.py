"""The CuPy backend on a real device gives the NumPy backend's bytes (tests marked ``gpu`` skip without one)."""

from __future__ import annotations

import functools
import gc
import platform

import numpy as np
import pytest
from helpers.host_kernels import KERNELS
from helpers.maps import MAPPINGS, RANGED, float_map, mapping_for, mixed_maps, tame

import gpu_depth
from gpu_depth.backends import cupy_unavailable, kernel_plan, select_backend
from gpu_depth.backends.numpy_backend import NumpyBackend
from gpu_depth.core.depthdata import DepthData
from gpu_depth.core.formats import PixelFormat, StoredFormat
from gpu_depth.core.quantize import quantize
from gpu_depth.errors import DepthError

cupy = pytest.importorskip("cupy")
cupy_backend = pytest.importorskip("gpu_depth.backends.cupy_backend")

FORMATS = list(PixelFormat)


@pytest.fixture(scope="module")
def backend():
    reason = cupy_unavailable()
    if reason is not None:
        pytest.skip(reason)
    return cupy_backend.CupyBackend()


def outcome(convert) -> list[bytes] | str:
    try:
        return [np.ascontiguousarray(cupy.asnumpy(rows)).view(np.uint8).tobytes() for rows in convert()]
    except DepthError as exc:
        return f"DepthError: {exc}"


def same_as_numpy(backend, maps, mapping, fmt, alignment=1, size=None, device=False):
    """The backend's outcome is the NumPy backend's; the maps are read back only afterwards, so a
    conversion that does not wait for the caller's stream reads them unwritten."""
    fmt = PixelFormat.parse(fmt)
    run = backend.convert_device if device else backend.convert
    got = outcome(lambda: run(maps, mapping, fmt, alignment, size))
    host_maps = [cupy.asnumpy(m) for m in maps]
    expected = outcome(lambda: NumpyBackend().convert(host_maps, mapping, fmt, alignment, size))
    assert got == expected
    return expected


def sample_maps(dtype: str, name: str) -> list[np.ndarray]:
    rng = np.random.default_rng(17)
    if dtype in ("uint8", "uint16"):
        every = np.arange(np.iinfo(dtype).max + 1, dtype=dtype).reshape(-1, 256 if dtype == "uint16" else 16)
        return [every, rng.integers(0, np.iinfo(dtype).max, (37, 53)).astype(dtype), np.zeros((1, 1), dtype)]
    return [tame(float_map(rng, shape, name, dtype)) for shape in ((37, 53), (1, 9), (64, 48))]


# ---- without a device ----------------------------------------------------------------------------------


def test_kernel_sources_are_found():
    directory = cupy_backend.kernel_directory()
    for name in (*kernel_plan.SOURCES, kernel_plan.HEADER):
        assert (directory / name).read_text() == (KERNELS / name).read_text()


def test_default_nan_is_this_cpus():
    literal = cupy_backend.host_default_nan()
    expected = {"x86_64": "0xFFF8000000000000ULL", "AMD64": "0xFFF8000000000000ULL"}.get(platform.machine())
    assert literal == expected or (expected is None and literal.endswith("ULL"))


def test_host_inputs_stay_numpy():
    values = np.ones((2, 3), np.float32)
    assert cupy_backend.as_array(values) is values
    assert isinstance(cupy_backend.as_array([[1, 2]]), np.ndarray)


# ---- on a device -----------------------------------------------------------------------------------------


#: (mapping name, input dtype) pairs a preset can mean (kitti and mm16 read integer codes only).
INPUTS = [
    (name, dtype)
    for name in MAPPINGS
    for dtype in ("uint8", "uint16", "float16", "float32")
    if not (np.dtype(dtype).kind == "f" and name in ("kitti", "mm16"))
]


@pytest.mark.gpu
@pytest.mark.parametrize("size", [None, (20, 15)])
@pytest.mark.parametrize("alignment", [1, 64])
@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize(("name", "dtype"), INPUTS)
def test_host_maps_convert_like_numpy(backend, name, dtype, fmt, alignment, size):
    same_as_numpy(backend, sample_maps(dtype, name), mapping_for(name, dtype), fmt, alignment, size)


@pytest.mark.gpu
@pytest.mark.parametrize("size", [None, (20, 15)])
@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize(("name", "dtype"), INPUTS)
def test_device_maps_to_device_rows_like_numpy(backend, name, dtype, fmt, size):
    """Every mapping, input type and format through convert_device, maps uploaded on a stream still busy."""
    producer = cupy.cuda.Stream(non_blocking=True)
    maps = [written_later(m, producer) for m in sample_maps(dtype, name)]
    with producer:
        same_as_numpy(backend, maps, mapping_for(name, dtype), fmt, 16, size, device=True)


@pytest.mark.gpu
@pytest.mark.parametrize("device", [False, True], ids=["to-host", "on-device"])
@pytest.mark.parametrize("kind", ["cupy", "batch", "cuda-array-interface", "dlpack", "mixed"])
def test_device_maps_convert_like_numpy(backend, kind, device):
    rng = np.random.default_rng(19)
    batch = cupy.asarray(rng.random((4, 30, 40)).astype(np.float32))
    maps = {
        "cupy": [cupy.asarray(m) for m in sample_maps("float32", "metric")],
        "batch": list(batch),  # one C-contiguous allocation: read in place
        "cuda-array-interface": [_Interface(m) for m in batch],
        "dlpack": [_DLPack(m) for m in batch],
        "mixed": [batch[0], cupy.asnumpy(batch[1]), batch[2]],
    }[kind]
    mapping = RANGED["apple-gray"] if kind != "cupy" else MAPPINGS["metric"]
    plain = [cupy_backend.as_array(m) for m in maps]
    for fmt in ("hdis", "fdep"):
        for size in (None, (7, 5)):
            assert not isinstance(same_as_numpy(backend, plain, mapping, fmt, 16, size, device), str)
            given = outcome(functools.partial(backend.convert, maps, mapping, PixelFormat.parse(fmt), 16, size))
            assert given == outcome(
                functools.partial(backend.convert, plain, mapping, PixelFormat.parse(fmt), 16, size)
            )


class _Interface:
    """Only ``__cuda_array_interface__``, as Numba or PyTorch arrays offer it."""

    def __init__(self, array):
        self._array = array
        self.__cuda_array_interface__ = array.__cuda_array_interface__


class _DLPack:
    """Only the DLPack protocol."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


@pytest.mark.gpu
def test_device_results_stay_on_the_device(backend):
    rows = backend.convert_device([cupy.zeros((3, 5), cupy.uint8)], MAPPINGS["apple-gray"], "hdis", 64)
    assert isinstance(rows[0], cupy.ndarray) and rows[0].shape == (3, 32)


@pytest.mark.gpu
def test_many_batches_keep_order_and_errors(backend, monkeypatch):
    monkeypatch.setattr(cupy_backend, "BATCH_BYTES", 1 << 14)  # a few maps per batch: the pipeline turns
    rng = np.random.default_rng(23)
    maps = [rng.random((int(h), int(w))).astype(np.float32) for h, w in rng.integers(1, 60, (40, 2))]
    maps[5] = rng.integers(0, 256, (9, 9)).astype(np.uint8)
    assert len(same_as_numpy(backend, maps, RANGED["inverted-gray"], "hdep", 16)) == len(maps)
    maps[31][0, 0] = 2.0  # gray outside [0, 1] in a late batch
    assert "outside [0, 1]" in same_as_numpy(backend, maps, RANGED["inverted-gray"], "hdep", 16)
    maps[12][0, 0] = -1.0  # an earlier one wins, as in the NumPy path
    assert "value -1.0 at index (0, 0)" in same_as_numpy(backend, maps, RANGED["inverted-gray"], "hdep", 16)


@pytest.mark.gpu
@pytest.mark.parametrize("stored", list(StoredFormat))
def test_quantize_like_numpy(backend, stored):
    rng = np.random.default_rng(29)
    arrays = [rng.lognormal(0, 1, (33, 47)), np.full((2, 2), 4.0), -rng.random((5, 8))]
    arrays[0].flat[::5] = np.nan
    depths = [
        DepthData.from_array(a, fmt, row_alignment=64) for a, fmt in zip(arrays, ["hdis", "fdep", "hdis"], strict=True)
    ]
    for got, expected in zip(backend.quantize(depths, stored), (quantize(d, stored) for d in depths), strict=True):
        assert got.info == expected.info
        assert got.pixels.tobytes() == expected.pixels.tobytes()


@pytest.mark.gpu
def test_public_convert_on_the_cupy_backend(backend):
    assert select_backend("auto").name == "cupy"
    maps = sample_maps("uint16", "kitti")[:2]  # the third is all invalid (KITTI 0)
    on_gpu = gpu_depth.convert(maps, "fdis", MAPPINGS["kitti"], backend="cupy", row_alignment=64)
    on_cpu = gpu_depth.convert(maps, "fdis", MAPPINGS["kitti"], backend="numpy", row_alignment=64)
    assert on_gpu == on_cpu


@pytest.mark.gpu
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_nan_rules_of_the_host_cpu_on_the_device(backend):
    """The GPU makes canonical NaNs; the kernels give NumPy's: payloads kept, x86's default NaN for 0 · inf."""
    codes = np.full((6, 8), 100, np.uint8)
    codes[2, 7] = 0  # disparity +inf at zNear 0
    result = same_as_numpy(backend, [codes], gpu_depth.DepthMapping("apple-gray", near=0.0, far=3.0), "fdis", 1, (4, 3))
    assert not isinstance(result, str) and np.isnan(np.frombuffer(result[0], np.float32)).any()
    payloads = [np.array([[0.5, np.nan]], np.float32), np.array([[0.25, 0.5]], np.float32)]
    payloads[0].view(np.uint32)[0, 1] = 0xFFC12345
    result = same_as_numpy(backend, payloads, RANGED["apple-gray"], "fdep")
    assert np.frombuffer(result[0], np.uint32)[1] == 0xFFC12345


# ---- streams, lifetimes and protocols (issue 18) ------------------------------------------------------------


def written_later(host: np.ndarray, stream) -> cupy.ndarray:
    """A device copy of ``host`` whose upload is queued on ``stream`` behind other work (as a model's output)."""
    with stream:
        values = cupy.empty(host.shape, host.dtype)
        cupy.zeros(1 << 16, cupy.uint8).fill(3)  # earlier work on the stream
        values.set(host)
    return values


@pytest.mark.gpu
@pytest.mark.parametrize("device", [False, True], ids=["to-host", "on-device"])
def test_input_still_being_written_when_converted(backend, device):
    rng = np.random.default_rng(31)
    hosts = [rng.random((21, 34)).astype(np.float32), rng.integers(0, 256, (9, 17)).astype(np.uint8)]
    producer = cupy.cuda.Stream(non_blocking=True)
    maps = [written_later(h, producer) for h in hosts]
    with producer:  # the caller converts on the stream that is still writing its maps
        run = backend.convert_device if device else backend.convert
        got = outcome(lambda: run(maps, RANGED["apple-gray"], PixelFormat.HDIS, 16, None))
    expected = outcome(lambda: NumpyBackend().convert(hosts, RANGED["apple-gray"], PixelFormat.HDIS, 16, None))
    assert got == expected


@pytest.mark.gpu
@pytest.mark.parametrize("device", [False, True], ids=["to-host", "on-device"])
@pytest.mark.parametrize("view", ["rows", "columns", "transposed", "batch-slice", "interface", "dlpack"])
def test_strided_device_inputs(backend, view, device):
    rng = np.random.default_rng(37)
    whole = cupy.asarray(rng.random((3, 24, 30)).astype(np.float32))
    maps = {
        "rows": [whole[0, ::2], whole[1, 3:17, 2:]],
        "columns": [whole[0, :, 1:29:3], whole[2, :, ::-1]],
        "transposed": [whole[1].T, whole[2, :10].T],
        "batch-slice": list(whole[:, 2:20, 5:25]),
        "interface": [_Interface(whole[0, ::3]), _Interface(whole[1].T)],
        "dlpack": [_DLPack(whole[2, 1:, ::2]), _DLPack(whole[0].T)],
    }[view]
    plain = [cupy_backend.as_array(m) for m in maps]
    assert not any(m.flags.c_contiguous for m in plain) or view == "batch-slice"
    for mapping, fmt, size in ((RANGED["inverted-gray"], "fdep", None), (MAPPINGS["metric"], "hdis", (7, 5))):
        assert not isinstance(same_as_numpy(backend, plain, mapping, fmt, 16, size, device), str)


class _Both:
    """Both protocols, as a PyTorch tensor offers them; records which one was used."""

    def __init__(self, array):
        self._array, self.used = array, []

    def __dlpack__(self, **kwargs):
        self.used.append("dlpack")
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()

    @property
    def __cuda_array_interface__(self):
        self.used.append("interface")  # CuPy 14 then synchronises the producer's stream on the host
        return self._array.__cuda_array_interface__


@pytest.mark.gpu
def test_dlpack_is_preferred_to_the_cuda_array_interface(backend):
    values = cupy.asarray(np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4))
    tensor = _Both(values)
    assert cupy_backend.as_array(tensor).data.ptr == values.data.ptr
    assert tensor.used == ["dlpack"]


@pytest.mark.gpu
def test_host_results_are_pageable_and_outlive_later_calls(backend, monkeypatch):
    monkeypatch.setattr(cupy_backend, "BATCH_BYTES", 1 << 13)
    rng = np.random.default_rng(41)
    maps = [rng.integers(0, 256, (int(h), int(w))).astype(np.uint8) for h, w in rng.integers(1, 50, (12, 2))]
    first = backend.convert(maps, RANGED["apple-gray"], PixelFormat.FDIS, 64, None)
    kept = [r.copy() for r in first]
    for rows in first:
        attributes = cupy.cuda.runtime.pointerGetAttributes(rows.ctypes.data)
        assert attributes.type != cupy.cuda.runtime.memoryTypeHost  # not pinned
    backend.convert(maps[::-1], RANGED["inverse-gray"], PixelFormat.FDIS, 64, None)  # the ring is reused
    assert all(np.array_equal(a, b) for a, b in zip(first, kept, strict=True))


@pytest.mark.gpu
def test_device_results_belong_to_the_callers_stream(backend):
    """A consumer still reading the rows on its stream when it drops them: their memory returns to
    that stream's pool, so the next conversion cannot overwrite them before the read."""
    consumer = cupy.cuda.Stream(non_blocking=True)
    with consumer:
        codes = cupy.asarray(np.arange(64, dtype=np.uint8).reshape(8, 8))
        rows = backend.convert_device([codes], RANGED["apple-gray"], "hdis", 1)
        copied = cupy.empty(rows[0].shape, rows[0].dtype)
        copied[...] = rows[0]  # queued on the consumer's stream
        del rows
        gc.collect()
        backend.convert_device([codes] * 3, RANGED["inverse-gray"], "fdep", 64)
    expected = NumpyBackend().convert([cupy.asnumpy(codes)], RANGED["apple-gray"], PixelFormat.HDIS, 1, None)
    assert cupy.asnumpy(copied, stream=consumer).tobytes() == expected[0].tobytes()


@pytest.mark.gpu
def test_table_eviction_under_load(backend, monkeypatch):
    """One cached table, runs of two uint8 and two uint16 maps (a table each), batches of one map in both
    slots: a table evicted while the other slot's batch still reads it stays alive with that batch."""
    monkeypatch.setattr(cupy_backend, "TABLE_BYTES", 1 << 10)
    monkeypatch.setattr(cupy_backend, "BATCH_BYTES", 1 << 10)
    rng = np.random.default_rng(43)
    maps = [
        rng.integers(0, 200, (int(h), int(w))).astype(dtype)
        for dtype in ("uint8", "uint16") * 3
        for h, w in rng.integers(1, 20, (2, 2))
    ]
    for near in (0.1, 0.2, 0.1):
        mapping = gpu_depth.DepthMapping("apple-gray", near=near, far=6.0)
        assert not isinstance(same_as_numpy(backend, maps, mapping, "hdis", 16), str)
        assert not isinstance(same_as_numpy(backend, maps, mapping, "fdep", 1, (6, 4), True), str)


@pytest.mark.gpu
def test_table_eviction_under_load_with_mixed_mappings(backend, monkeypatch):
    """Runs of four uint8 maps of mappings A, B, A, B (batches of two: the batch's two tables back to back,
    the second batch's found in the cache of the other slot's upload) between uint16 maps whose tables
    evict them at once: a batch keeps the tables it reads alive."""
    monkeypatch.setattr(cupy_backend, "TABLE_BYTES", 1 << 10)  # one pair of uint8 hdis tables
    monkeypatch.setattr(cupy_backend, "BATCH_BYTES", 2560)  # two 8x8 uint8 maps and their two tables
    rng = np.random.default_rng(79)
    maps = [rng.integers(0, 256, (8, 8)).astype(dtype) for _ in range(3) for dtype in ["uint8"] * 4 + ["uint16"] * 2]
    for near in (0.1, 0.2, 0.1):
        pair = [gpu_depth.DepthMapping("apple-gray", near=near, far=far) for far in (6.0, 9.0)]
        mappings = [pair[index % 2] for index in range(len(maps))]
        assert not isinstance(same_as_numpy(backend, maps, mappings, "hdis", 16), str)
        assert not isinstance(same_as_numpy(backend, maps, mappings, "hdis", 16, None, True), str)


@pytest.mark.gpu
@pytest.mark.parametrize("device", [False, True], ids=["to-host", "on-device"])
def test_many_maps_through_both_slots(backend, monkeypatch, device):
    monkeypatch.setattr(cupy_backend, "BATCH_BYTES", 1 << 11)  # one or two maps per batch
    rng = np.random.default_rng(47)
    shapes = rng.integers(1, 30, (60, 2))
    maps: list = [rng.integers(0, 256, (int(h), int(w))).astype(np.uint8) for h, w in shapes]
    maps[::3] = [cupy.asarray(m) for m in maps[::3]]
    maps[1::7] = [rng.random(m.shape).astype(np.float32) for m in maps[1::7]]
    for size in (None, (9, 7)):
        assert len(same_as_numpy(backend, maps, RANGED["inverted-gray"], "hdep", 16, size, device)) == len(maps)


@pytest.mark.gpu
def test_errors_leave_the_slots_idle(backend, monkeypatch):
    """A map refused early while later batches are in flight: the buffers they use are freed only after them."""
    monkeypatch.setattr(cupy_backend, "BATCH_BYTES", 1 << 11)
    rng = np.random.default_rng(53)
    maps = [rng.random((20, 20)).astype(np.float32) for _ in range(8)]
    maps[1][0, 0] = 3.0  # gray outside [0, 1]
    for device in (False, True):
        assert "outside [0, 1]" in same_as_numpy(backend, maps, RANGED["apple-gray"], "fdis", 1, None, device)
    assert not isinstance(same_as_numpy(backend, maps[2:], RANGED["apple-gray"], "fdis"), str)


# ---- maps of many mappings (issue 18, defect 5) ----------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("device", [False, True], ids=["to-host", "on-device"])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_one_launch_for_maps_of_many_mappings(backend, monkeypatch, dtype, device):
    """24 maps, a mapping each (iPhone photos with their own zNear/zFar): one batch, one conversion launch."""
    launched = []
    launch = cupy_backend.CupyBackend._launch
    monkeypatch.setattr(
        cupy_backend.CupyBackend, "_launch", lambda self, name, *a: launched.append(name) or launch(self, name, *a)
    )
    maps, mappings = mixed_maps(np.random.default_rng(67), dtype, 24)
    if device:
        maps = [cupy.asarray(m) for m in maps]
    assert not isinstance(same_as_numpy(backend, maps, mappings, "fdis", 16, None, device), str)
    kernel = "gather" if dtype.startswith("uint") else "evaluate"
    assert [name for name in launched if name.startswith(kernel)] == [f"{kernel}_{dtype}_float32"]


@pytest.mark.gpu
@pytest.mark.parametrize("device", [False, True], ids=["to-host", "on-device"])
def test_maps_of_many_mappings_through_both_slots(backend, monkeypatch, device):
    """Small batches (a few maps each, tables counted) alternate between the slots, each with its own
    maps' mappings and tables; host and device maps, integer and float runs, resampled or not."""
    monkeypatch.setattr(cupy_backend, "BATCH_BYTES", 1 << 12)
    rng = np.random.default_rng(71)
    maps: list = []
    mappings: list = []
    for dtype in ("uint8", "float32", "uint16", "uint8", "float16"):
        run, run_mappings = mixed_maps(rng, dtype, 9)
        maps += run
        mappings += run_mappings
    maps[::4] = [cupy.asarray(m) for m in maps[::4]]
    for size in (None, (9, 7)):
        result = same_as_numpy(backend, maps, mappings, "hdis", 16, size, device)
        assert len(result) == len(maps), result


@pytest.mark.gpu
@pytest.mark.parametrize("device", [False, True], ids=["to-host", "on-device"])
@pytest.mark.parametrize("batch_bytes", [1 << 8, 256 << 20], ids=["a-map-per-batch", "one-batch"])
def test_each_map_reads_its_own_mapping(backend, monkeypatch, batch_bytes, device):
    """Maps with swapped zNear/zFar: each converts as it does alone with its own mapping."""
    monkeypatch.setattr(cupy_backend, "BATCH_BYTES", batch_bytes)
    rng = np.random.default_rng(73)
    for preset, dtype in (("apple-gray", "uint8"), ("inverse-gray", "uint16"), ("inverted-gray", "float32")):
        a, b = gpu_depth.DepthMapping(preset, near=0.5, far=4.0), gpu_depth.DepthMapping(preset, near=1.0, far=10.0)
        if dtype == "float32":
            maps = [rng.random((5, 7)).astype(dtype) for _ in range(4)]
        else:
            maps = [rng.integers(0, np.iinfo(dtype).max, (5, 7), endpoint=True).astype(dtype) for _ in range(4)]
        run = backend.convert_device if device else backend.convert
        for size in (None, (4, 3)):
            alone = {(i, m): _rows(backend.convert, [maps[i]], m, size)[0] for i in range(len(maps)) for m in (a, b)}
            assert all(alone[i, a] != alone[i, b] for i in range(len(maps)))
            for mappings in ([a, b, a, b], [b, a, a, b]):
                assert _rows(run, maps, mappings, size) == [alone[i, m] for i, m in enumerate(mappings)]


def _rows(run, maps, mapping, size) -> list[bytes]:
    return [cupy.asnumpy(rows).tobytes() for rows in run(maps, mapping, PixelFormat.FDEP, 16, size)]


@pytest.mark.gpu
@pytest.mark.parametrize("batch_bytes", [1 << 10, 256 << 20], ids=["small-batches", "one-batch"])
def test_first_bad_map_raises_its_own_mappings_error(backend, monkeypatch, batch_bytes):
    """Maps of several mappings: the first map that its own mapping refuses raises NumPy's error, in any batch."""
    monkeypatch.setattr(cupy_backend, "BATCH_BYTES", batch_bytes)
    good = gpu_depth.DepthMapping("apple-gray", near=0.5, far=5.0)
    overflow = gpu_depth.DepthMapping("apple-gray", near=1e-5, far=1.0)  # disparity 1e5 > float16's largest
    depth_zero = gpu_depth.DepthMapping("apple-gray", near=0.0, far=1.0)
    codes = [np.arange(256, dtype=np.uint8).reshape(16, 16)] * 6
    assert "exceeds the format" in same_as_numpy(backend, codes, [good, good, overflow, good, depth_zero, good], "hdis")
    assert "depth of 0 m" in same_as_numpy(backend, codes, [good, depth_zero, good, good, overflow, good], "hdis")
    floats = [np.full((3, 4), 0.5, np.float32), np.full((2, 5), 1e-6, np.float32), np.full((4, 4), 1.5, np.float32)]
    gray, metric = RANGED["apple-gray"], MAPPINGS["metric"]
    for device in (False, True):
        assert "exceeds the format" in same_as_numpy(backend, floats, [gray, metric, gray], "hdis", 1, None, device)
        assert "outside [0, 1]" in same_as_numpy(backend, floats[::-1], [gray, metric, gray], "hdis", 1, None, device)
    assert not isinstance(same_as_numpy(backend, floats[:2], [gray, metric], "fdis"), str)
