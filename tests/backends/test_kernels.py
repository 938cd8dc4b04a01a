"""The CUDA kernels: they compile for sm_80/sm_90, and their arithmetic, run on the CPU through
kernels/host_emulation.h, gives the NumPy path's bytes (values, NaN bit patterns, padding, errors)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zlib

import numpy as np
import pytest
from helpers import ROOT
from helpers.host_kernels import BLOCKS, KERNELS, HostKernels, host_convert, host_quantize
from helpers.maps import FLOAT_NAMES, MAPPINGS, METRIC, NAN_BITS, RANGED, float_map, mapping_for, mixed_maps, tame

from gpu_depth.backends import kernel_plan as kp
from gpu_depth.backends.numpy_backend import NumpyBackend
from gpu_depth.core.depthdata import DepthData
from gpu_depth.core.formats import PixelFormat, StoredFormat
from gpu_depth.core.holes import fill_holes
from gpu_depth.core.mapping import DepthMapping
from gpu_depth.core.quantize import quantize
from gpu_depth.errors import DepthError

FORMATS = list(PixelFormat)


@pytest.fixture(scope="module")
def host() -> HostKernels:
    return HostKernels()


def outcome(convert) -> list[bytes] | str:
    """Each map's row bytes (padding included), or the DepthError text."""
    try:
        return [rows.view(np.uint8).tobytes() for rows in convert()]
    except DepthError as exc:
        return f"DepthError: {exc}"


def same_as_numpy(host, maps, mapping, fmt, alignment=1, size=None, packed=False) -> list[bytes] | str:
    fmt = PixelFormat.parse(fmt)
    expected = outcome(lambda: NumpyBackend().convert(maps, mapping, fmt, alignment, size))
    assert outcome(lambda: host_convert(host, maps, mapping, fmt, alignment, size, packed)) == expected
    return expected


# ---- compilation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("source", [*kp.SOURCES, "module"])
def test_kernels_compile_with_nvcc(source, arch, tmp_path):
    nvcc = shutil.which("nvcc") or pytest.skip("nvcc is not installed")
    if source == "module":  # the single source the CuPy backend hands to RawModule
        path = tmp_path / "module.cu"
        path.write_text(kp.module_source(KERNELS))
        names = [n for text in kp.kernel_sources(KERNELS).values() for n in kp.kernel_names(text)]
    else:
        path = KERNELS / source
        names = kp.kernel_names(path.read_text())
    ptx = tmp_path / "out.ptx"
    # -ftz=true as CuPy always adds it: no instruction may flush subnormals
    subprocess.run([nvcc, "-ptx", f"-arch={arch}", "-ftz=true", str(path), "-o", str(ptx)], check=True, cwd=tmp_path)
    text = ptx.read_text()
    assert names and set(names) <= set(re.findall(r"\.entry (\w+)\(", text))
    assert "fma.rn.f64" not in text  # no contraction: every double operation rounds on its own
    assert ".ftz" not in text


@pytest.mark.parametrize("arch", ["compute_80", "compute_90"])
def test_kernels_compile_with_nvrtc(arch):
    """The module source through NVRTC with the options cupy.RawModule uses (needs libnvrtc, no GPU)."""
    backend = pytest.importorskip("gpu_depth.backends.cupy_backend")
    try:
        from cupy.cuda import nvrtc

        nvrtc.getVersion()
    except Exception as exc:  # CuPy is installed but libnvrtc is not
        pytest.skip(f"NVRTC is not available: {str(exc).splitlines()[0]}")
    program = nvrtc.createProgram(kp.module_source(KERNELS), "gpu_depth.cu", [], [])
    try:
        cupy_adds = [f"-arch={arch}", "-ftz=true", "--device-as-default-execution-space"]
        nvrtc.compileProgram(program, [*backend.module_options(), *cupy_adds])
        ptx = nvrtc.getPTX(program).decode()
        assert nvrtc.getProgramLog(program).strip("\x00\n ") == ""  # not even a warning
    finally:
        nvrtc.destroyProgram(program)
    names = [n for text in kp.kernel_sources(KERNELS).values() for n in kp.kernel_names(text)]
    assert set(names) <= set(re.findall(r"\.entry (\w+)\(", ptx))
    assert "fma.rn.f64" not in ptx and ".ftz" not in ptx


# ---- conversion, exhaustive over integer codes -----------------------------------------------------------


@pytest.mark.parametrize("alignment", [1, 64])
@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
@pytest.mark.parametrize("name", list(MAPPINGS))
def test_every_code_converts_like_numpy(host, name, dtype, fmt, alignment):
    top = np.iinfo(dtype).max
    every = np.arange(top + 1, dtype=dtype).reshape(-1, 16 if dtype == "uint8" else 256)
    rng = np.random.default_rng(3)
    maps = [every, rng.permutation(every.ravel())[: 7 * 13].reshape(7, 13), np.full((1, 1), top, dtype)]
    result = same_as_numpy(host, maps, mapping_for(name, dtype), fmt, alignment)
    too_deep = name == "disparity-px" and str(fmt) == "hdep"  # disparity code 1: 1/256 px, ~99 km > float16 max
    assert isinstance(result, str) == too_deep, result


def test_infinite_values_are_refused_like_numpy(host):
    """apple-gray at zNear 0 puts gray 0 at disparity 1/0; relative disparity to zFar inf puts the
    farthest value at depth 1/0: the same error, while the other quantity converts."""
    gray = DepthMapping("apple-gray", near=0.0, far=5.0)
    relative = DepthMapping("relative-disparity", near=0.5, far=float("inf"))
    codes = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for mapping, fmt, floats in ((gray, "hdis", [[0.5, 0.0]]), (relative, "fdep", [[-1.0, 3.0]])):
        maps = [codes, np.array(floats, np.float32)]
        for single in maps:
            assert same_as_numpy(host, [single], mapping, fmt).startswith("DepthError")
        other = PixelFormat.parse(fmt).with_quantity(not PixelFormat.parse(fmt).is_disparity)
        assert not isinstance(same_as_numpy(host, maps, mapping, other), str)


# ---- conversion of float maps ------------------------------------------------------------------------------

NANS = NAN_BITS["float32"].view(np.float32)


@pytest.mark.parametrize("alignment", [1, 16])
@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("name", FLOAT_NAMES)
def test_float_maps_convert_like_numpy(host, name, dtype, fmt, alignment):
    rng = np.random.default_rng(zlib.crc32(f"{name} {dtype} {fmt}".encode()))
    maps = [float_map(rng, shape, name, dtype) for shape in ((19, 23), (1, 40), (33, 2))]
    same_as_numpy(host, maps, MAPPINGS[name], fmt, alignment)


def test_float_results_are_values_not_errors(host):
    """The random maps above mostly convert: check one per preset really produced bytes."""
    rng = np.random.default_rng(11)
    for name in FLOAT_NAMES:
        maps, mapping = [tame(float_map(rng, (9, 9), name, "float32"))], MAPPINGS[name]
        assert not isinstance(same_as_numpy(host, maps, mapping, "fdep"), str), name


def test_nan_bit_patterns(host):
    """Invalid metric pixels are +NaN (math.nan); a NaN gray propagates its sign and payload."""
    metric = host_convert(host, [np.array([[0.0, np.nan, 2.0]], np.float32)], METRIC["metric"], "hdis")[0]
    assert metric.view(np.uint16)[0, :2].tolist() == [0x7E00, 0x7E00]
    gray = host_convert(host, [NANS[None, :4].copy()], RANGED["apple-gray"], "fdep")[0]
    assert gray.view(np.uint32)[0].tolist() == [0x7FC00000, 0xFFC00000, 0x7FC12345, 0xFFE00001]
    same_as_numpy(host, [NANS[None, :4].copy()], RANGED["apple-gray"], "fdep")


def test_gray_outside_unit_range_raises_like_numpy(host):
    values = np.full((4, 5), 0.5, np.float32)
    values[2, 3] = 1.25
    result = same_as_numpy(host, [np.zeros((2, 2), np.float32), values], RANGED["inverted-gray"], "hdep")
    assert "outside [0, 1]" in result


@pytest.mark.parametrize("fmt", ["hdis", "hdep", "fdis"])
def test_overflow_raises_like_numpy(host, fmt):
    values = np.full((3, 4), 2.0, np.float32)
    values[1, 2], values[2, 0] = 1e-6, 1e-40  # disparity 1e6 > float16 max; 1e40 > float32 max
    values[0, 3] = 1e5  # depth > float16 max
    result = same_as_numpy(host, [values], METRIC["metric"], fmt)
    assert "exceeds the format's largest value" in result


def test_half_rounding_at_every_boundary(host):
    """Every positive float16, every midpoint between neighbours and one double ulp either side,
    through metric depth (x / 1): round-to-nearest-even decided exactly as NumPy does."""
    halves = np.arange(1, 0x7BFF, dtype=np.uint16).view(np.float16).astype(np.float64)
    mids = (halves[:-1] + halves[1:]) / 2
    tiny = np.array([2.0**-25, np.nextafter(2.0**-25, 1), 2.0**-26, 3 * 2.0**-26, 65504.0, 65519.99])
    values = np.concatenate([halves, mids, np.nextafter(mids, 0), np.nextafter(mids, np.inf), tiny])
    maps = [values[: values.size // 64 * 64].reshape(-1, 64), values[values.size // 64 * 64 :][None, :]]
    result = same_as_numpy(host, maps, METRIC["metric"], "hdep")
    assert not isinstance(result, str), result


def test_float_rounding_of_random_doubles(host):
    rng = np.random.default_rng(5)
    values = np.exp(rng.uniform(-100, 88, (64, 64)))
    values.flat[:3] = [2.0**-149, 2.0**-150, 1.5 * 2.0**-149]
    result = same_as_numpy(host, [values], METRIC["metric"], "fdep")
    assert not isinstance(result, str), result


# ---- area downscale -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize("name", ["apple-gray", "relative-disparity", "metric", "kitti", "disparity-px"])
def test_area_downscale_like_numpy(host, name, fmt):
    rng = np.random.default_rng(7)
    dtype = "uint16" if name == "kitti" else "float32"
    if dtype == "uint16":
        maps = [rng.integers(0, 5000, shape).astype(dtype) for shape in ((31, 45), (12, 12), (5, 9))]
    else:
        maps = [tame(float_map(rng, shape, name, dtype)) for shape in ((31, 45), (12, 12), (5, 9))]
        nan_free = tame(np.abs(float_map(rng, (17, 29), name, dtype)))
        nan_free[~np.isfinite(nan_free) | (nan_free == 0)] = 0.5
        maps.append(nan_free)  # takes area_resize's NaN-free formula
    for size in [(12, 12), (7, 5), (45, 2), (1, 1), (50, 40)]:
        result = same_as_numpy(host, maps, mapping_for(name, dtype), fmt, 8, size)
        assert not isinstance(result, str), result


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_area_downscale_with_infinite_values(host):
    """Gray 0 at zNear 0 has disparity +inf; averaging it gives 0 · inf and inf − inf, which x86 NumPy
    makes the negative default NaN: the kernels give the same bits."""
    codes = np.full((6, 8), 100, np.uint8)
    codes[2, 7] = 0
    result = same_as_numpy(host, [codes], DepthMapping("apple-gray", near=0.0, far=3.0), "fdis", 1, (4, 3))
    assert not isinstance(result, str), result
    values = np.frombuffer(result[0], np.uint32).reshape(3, 4)
    assert values[:2, 3].tolist() == [0xFFC00000] * 2  # 0 · inf in a tap, then inf + NaN
    assert np.isfinite(values.view(np.float32)).sum() == 10


def test_ragged_batch_with_mixed_dtypes_and_sizes(host):
    rng = np.random.default_rng(9)
    maps = [
        rng.integers(0, 256, (40, 30), dtype=np.uint8),
        rng.random((20, 10)).astype(np.float32),  # already the target size: converted, not resampled
        rng.integers(0, 65536, (7, 3), dtype=np.uint16),
        rng.random((64, 48)).astype(np.float16),
        rng.integers(0, 256, (20, 10), dtype=np.uint8),
    ]
    for size in (None, (10, 20)):
        for packed in (False, True):  # staged with aligned offsets, or a contiguous batch used in place
            result = same_as_numpy(host, maps, RANGED["apple-gray"], "hdis", 64, size, packed)
            assert len(result) == len(maps)


# ---- maps of many mappings in one launch ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [None, (9, 7)])
@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16", "float32"])
def test_maps_of_many_mappings_convert_like_numpy(host, dtype, fmt, size):
    """One launch per batch, each map with its own mapping (and lookup table among the batch's)."""
    exclude = ["disparity-px"] if str(fmt) == "hdep" else []  # too deep for float16
    maps, mappings = mixed_maps(np.random.default_rng(zlib.crc32(f"{dtype} {fmt}".encode())), dtype, 20, exclude)
    assert len(set(mappings)) > len(mappings) / 2  # the ranged ones all differ; metric ones repeat (a shared table)
    result = same_as_numpy(host, maps, mappings, fmt, 16, size)
    assert not isinstance(result, str), result


@pytest.mark.parametrize("size", [None, (5, 4)])
@pytest.mark.parametrize(
    ("preset", "dtype"), [("apple-gray", "uint8"), ("inverse-gray", "uint16"), ("relative-disparity", "float32")]
)
def test_each_map_reads_its_own_mapping(host, preset, dtype, size):
    """Maps with swapped zNear/zFar in one launch: each converts as it does alone with its own mapping
    (a parameter or table offset read from another map's entry gives the other mapping's bytes)."""
    a, b = DepthMapping(preset, near=0.5, far=4.0), DepthMapping(preset, near=1.0, far=10.0)
    rng = np.random.default_rng(61)
    if np.dtype(dtype).kind == "u":
        maps = [rng.integers(0, np.iinfo(dtype).max, (6, 8), endpoint=True).astype(dtype) for _ in range(3)]
    else:
        maps = [rng.random((6, 8)).astype(dtype) for _ in range(3)]
    alone = {(i, m): host_convert(host, [maps[i]], m, "fdep", 16, size)[0].tobytes() for i in range(3) for m in (a, b)}
    assert all(alone[i, a] != alone[i, b] for i in range(3))
    for mappings in ([a, b, a], [b, a, b], [b, b, a]):
        together = host_convert(host, maps, mappings, "fdep", 16, size)
        assert [r.tobytes() for r in together] == [alone[i, m] for i, m in enumerate(mappings)]
    assert not isinstance(same_as_numpy(host, maps, [a, b, a], "fdep", 16, size), str)


def test_first_bad_map_raises_its_own_mappings_error(host):
    """Maps of several mappings in one launch: the first map whose mapping refuses it raises, as NumPy does."""
    good, overflow = DepthMapping("apple-gray", near=0.5, far=5.0), DepthMapping("apple-gray", near=1e-5, far=1.0)
    depth_zero = DepthMapping("apple-gray", near=0.0, far=1.0)
    codes = [np.arange(256, dtype=np.uint8).reshape(16, 16)] * 4
    assert "exceeds the format" in same_as_numpy(host, codes, [good, overflow, good, depth_zero], "hdis")
    assert "depth of 0 m" in same_as_numpy(host, codes, [good, depth_zero, good, overflow], "hdis")
    assert not isinstance(same_as_numpy(host, codes, [good, overflow, good, depth_zero], "fdep"), str)
    floats = [np.full((3, 4), 0.5, np.float32), np.full((2, 5), 1e-6, np.float32), np.full((4, 4), 1.5, np.float32)]
    gray, metric = RANGED["apple-gray"], METRIC["metric"]
    assert "exceeds the format" in same_as_numpy(host, floats, [gray, metric, gray], "hdis")
    assert "outside [0, 1]" in same_as_numpy(host, floats[::-1], [gray, metric, gray], "hdis")
    assert not isinstance(same_as_numpy(host, floats[:2], [gray, metric], "fdis"), str)


# ---- storage quantisation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stored", list(StoredFormat))
@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_quantize_like_numpy(host, fmt, stored):
    rng = np.random.default_rng(13)
    arrays = [rng.lognormal(0, 1, shape) for shape in ((15, 21), (1, 1), (8, 3))]
    arrays[0].flat[::7] = np.nan
    arrays[2][:] = 2.5  # constant map: scale 0
    arrays.append(-rng.random((6, 6)) * 1e-3)
    depths = [DepthData.from_array(a, fmt, row_alignment=16) for a in arrays]
    for got, expected in zip(host_quantize(host, depths, stored), (quantize(d, stored) for d in depths), strict=True):
        assert got.info == expected.info
        assert got.pixels.dtype == expected.pixels.dtype
        assert got.pixels.tobytes() == expected.pixels.tobytes()


def test_quantize_refuses_a_map_without_finite_values(host):
    depth = DepthData.from_array(np.full((2, 3), np.nan), "hdis")
    with pytest.raises(DepthError) as expected:
        quantize(depth)
    with pytest.raises(DepthError) as got:
        host_quantize(host, [DepthData.from_array(np.ones((2, 2)), "hdis"), depth])
    assert str(got.value) == str(expected.value)


def test_launch_groups_follow_dtype_resampling_and_grid_limit(monkeypatch):
    monkeypatch.setattr(kp, "MAX_MAPS", 3)
    maps = [
        np.zeros(shape, dtype) for shape, dtype in [((4, 6), "uint8")] * 4 + [((5, 6), "uint8"), ((4, 6), "float32")]
    ]
    runs = [(indices, str(dtype), resize) for indices, dtype, resize in kp.groups(maps, (6, 4))]
    assert runs == [([0, 1, 2], "uint8", False), ([3], "uint8", False), ([4], "uint8", True), ([5], "float32", False)]
    assert [len(r[0]) for r in kp.groups(maps, None)] == [3, 2, 1]


# ---- sanitizers ------------------------------------------------------------------------------------------

SANITIZED_RUN = """
import numpy as np
from helpers.host_kernels import HostKernels, host_convert, host_quantize
from helpers.maps import MAPPINGS, RANGED, float_map, mixed_maps, tame
from gpu_depth.backends.numpy_backend import NumpyBackend
from gpu_depth.core.depthdata import DepthData
from gpu_depth.core.formats import PixelFormat, StoredFormat
from gpu_depth.core.quantize import quantize

host = HostKernels(sanitize=True)
rng = np.random.default_rng(59)
cases = [
    ([np.arange(65536, dtype=np.uint16).reshape(256, 256), np.full((1, 1), 7, np.uint16)], MAPPINGS["kitti"],
     "fdep", None),
    ([np.arange(256, dtype=np.uint8).reshape(16, 16), rng.integers(0, 256, (5, 3)).astype(np.uint8)],
     MAPPINGS["apple-gray"], "hdis", (4, 7)),
    ([tame(float_map(rng, s, "metric", "float32")) for s in ((13, 29), (1, 1), (40, 8))], MAPPINGS["metric"],
     "hdis", (5, 3)),
    ([float_map(rng, (17, 9), "relative-disparity", "float16")], MAPPINGS["relative-disparity"], "fdis", None),
    (*mixed_maps(rng, "uint16", 6), "fdis", None),  # one table per mapping, back to back
    (*mixed_maps(rng, "uint8", 6), "hdis", (4, 7)),
    (*mixed_maps(rng, "float32", 6), "fdep", None),
]
for maps, mapping, fmt, size in cases:
    for alignment in (1, 64):
        got = host_convert(host, maps, mapping, fmt, alignment, size)
        expected = NumpyBackend().convert(maps, mapping, PixelFormat.parse(fmt), alignment, size)
        assert all(a.tobytes() == b.tobytes() for a, b in zip(got, expected, strict=True)), (mapping, fmt, size)
depths = [DepthData.from_array(rng.lognormal(0, 1, (21, 33)), "hdis", row_alignment=64)]
for stored in StoredFormat:
    assert host_quantize(host, depths, stored)[0].pixels.tobytes() == quantize(depths[0], stored).pixels.tobytes()
print("sanitized kernels: ok")
"""


def test_kernels_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    """The kernels built with -fsanitize=address,undefined run a sample of conversions in a child Python
    (libasan preloaded): any out-of-bounds access or undefined behaviour aborts it."""
    compiler = shutil.which("g++") or pytest.skip("g++ is not installed")
    probe = tmp_path / "probe.cpp"
    probe.write_text("int main() { return 0; }\n")
    flags = ["-fsanitize=address,undefined", "-o", str(tmp_path / "probe")]
    if subprocess.run([compiler, *flags, str(probe)], capture_output=True).returncode != 0:
        pytest.skip("g++ cannot build with AddressSanitizer and UBSan here")
    libasan = subprocess.run([compiler, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip("libasan.so not found")
    environment = {
        **os.environ,
        "LD_PRELOAD": libasan,
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
    }
    run = subprocess.run([sys.executable, "-c", SANITIZED_RUN], env=environment, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "sanitized kernels: ok" in run.stdout


# ---- hole filling -------------------------------------------------------------------------------------------


def host_fill(host, depths: list[DepthData]) -> list[np.ndarray]:
    """kernels/holes.cu run on the CPU over a batch of DepthData rows: each map's filled (height, width) values."""
    fmt = depths[0].pixel_format
    layout, size = kp.plan_fill([(d.height, d.width, d.bytes_per_row // fmt.bytes_per_pixel) for d in depths], fmt)
    d_rows = np.zeros(size, fmt.dtype)
    for depth, entry in zip(depths, layout, strict=True):
        start, rows = int(entry["in_offset"]), np.frombuffer(bytes(depth.data), fmt.dtype)
        d_rows[start : start + rows.size] = rows
    d_tmp, d_out = np.zeros(size, fmt.dtype), np.zeros(size, fmt.dtype)
    kp.run_fill_holes(host.launch, np, fmt, layout, d_rows, d_tmp, d_out, BLOCKS)
    filled = []
    for depth, entry in zip(depths, layout, strict=True):
        start, pitch = int(entry["out_offset"]), int(entry["out_pitch"])
        filled.append(d_out[start : start + depth.height * pitch].reshape(depth.height, pitch)[:, : depth.width])
    return filled


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_hole_filling_kernel_gives_numpy_bits(host, fmt):
    rng = np.random.default_rng(zlib.crc32(str(fmt).encode()))
    maps = []
    for shape, holes in (((37, 53), 0.8), ((9, 300), 0.97), ((64, 3), 0.5), ((1, 1), 0.0), ((6, 7), 0.0)):
        values = rng.lognormal(0.5, 1.0, shape)
        values[rng.random(shape) < holes] = np.nan
        maps.append(values)
    maps[1][:, :] = np.nan
    maps[1][4, 150] = 2.5  # one valid pixel: all else from it
    maps[2][10:30] = np.nan  # whole rows filled down the columns
    depths = [DepthData.from_array(values, fmt, row_alignment=16) for values in maps]
    for depth, got in zip(depths, host_fill(host, depths), strict=True):
        expected = fill_holes(depth.array, larger_is_farther=not fmt.is_disparity)
        assert not np.isnan(expected).any()
        assert got.tobytes() == np.ascontiguousarray(expected).tobytes()
