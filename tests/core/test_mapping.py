"""Exactness of the conversion against an independent float64 reference, and parameter errors."""

import math

import numpy as np
import pytest
from helpers.reference import reference_value, round_bits
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gpu_depth import DepthError, DepthMapping, PixelFormat, convert

FORMATS = list(PixelFormat)
RANGED = [
    ("apple-gray", 0.5, 8.0),
    ("inverted-gray", 0.25, 20.0),
    ("inverse-gray", 0.3, 12.0),
    ("relative-disparity", 0.4, 50.0),
]
METRIC = [("kitti", None, None), ("mm16", None, None)]


def expected_bits(codes, top, preset, near, far, fmt):
    values = [reference_value(float(c), top, preset, near, far, fmt.is_disparity) for c in codes]
    return round_bits(values, fmt.dtype.name)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
@pytest.mark.parametrize(("preset", "near", "far"), RANGED + METRIC)
@pytest.mark.parametrize("alignment", [1, 64])
def test_every_integer_code_is_correctly_rounded(fmt, dtype, preset, near, far, alignment):
    top = np.iinfo(dtype).max
    codes = np.arange(top + 1, dtype=dtype)
    width = 256
    depth = convert(codes.reshape(-1, width), fmt, DepthMapping(preset, near, far), row_alignment=alignment)
    bits = depth.array.view(f"uint{fmt.dtype.itemsize * 8}").reshape(-1)
    expected = expected_bits(codes, top, preset, near, far, fmt)
    nan = np.isnan(depth.array.reshape(-1))
    assert np.array_equal(nan, np.isnan(expected.view(fmt.dtype)))
    assert np.array_equal(bits[~nan], expected[~nan])
    assert depth.bytes_per_row == (
        width * fmt.bytes_per_pixel if alignment == 1 else -(-width * fmt.bytes_per_pixel // 64) * 64
    )


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_padding_is_zero_and_data_is_rows(fmt):
    gray = np.random.default_rng(1).integers(0, 256, (5, 7), dtype=np.uint8)
    depth = convert(gray, fmt, DepthMapping("apple-gray", 1.0, 4.0), row_alignment=64)
    raw = np.frombuffer(bytes(depth.data), np.uint8).reshape(5, 64)
    assert depth.bytes_per_row == 64 and not raw[:, 7 * fmt.bytes_per_pixel :].any()
    tight = convert(gray, fmt, DepthMapping("apple-gray", 1.0, 4.0))
    assert np.array_equal(raw[:, : 7 * fmt.bytes_per_pixel].tobytes(), bytes(tight.data))


finite_gray = st.floats(0, 1, width=32)


@settings(max_examples=60, deadline=None)
@given(
    gray=arrays(np.float32, (3, 5), elements=finite_gray), fmt=st.sampled_from(FORMATS), spec=st.sampled_from(RANGED)
)
def test_float_gray_inputs_round_once(gray, fmt, spec):
    preset, near, far = spec
    depth = convert(gray, fmt, DepthMapping(preset, near, far))
    flat = gray.reshape(-1).astype(np.float64)
    if preset == "relative-disparity":
        low, high = flat.min(), flat.max()
        flat = (flat - low) / (high - low) if high > low else np.zeros_like(flat)
    values = [reference_value(float(v), None, preset, near, far, fmt.is_disparity) for v in flat]
    expected = round_bits(values, fmt.dtype.name)
    assert np.array_equal(depth.array.reshape(-1).view(expected.dtype), expected)


@settings(max_examples=60, deadline=None)
@given(
    metres=arrays(np.float32, (4, 4), elements=st.floats(-1, 1e4, width=32) | st.sampled_from([np.nan, np.inf, 0])),
    fmt=st.sampled_from([PixelFormat.FDIS, PixelFormat.FDEP, PixelFormat.HDEP]),
)
def test_metric_float_inputs(metres, fmt):
    valid = np.isfinite(metres) & (metres > 0)
    if not valid.any():
        with pytest.raises(DepthError, match="no valid depth pixel"):
            convert(metres, fmt, DepthMapping("metric"))
        return
    if fmt is PixelFormat.FDIS and (1 / metres[valid].astype(np.float64) > 3.4e38).any():
        with pytest.raises(DepthError, match="exceeds the format's largest value"):
            convert(metres, fmt, DepthMapping("metric"))
        return
    depth = convert(metres, fmt, DepthMapping("metric"))
    values = [reference_value(float(v), None, "metric", 0, 0, fmt.is_disparity) for v in metres.reshape(-1)]
    expected = round_bits(values, fmt.dtype.name)
    got = depth.array.reshape(-1)
    assert np.array_equal(np.isnan(got), np.isnan(expected.view(fmt.dtype)))
    assert np.array_equal(got.view(expected.dtype)[~np.isnan(got)], expected[~np.isnan(got)])


@pytest.mark.parametrize("alignment", [1, 64])
def test_large_maps_gathered_in_parallel_bands_match_the_table(alignment):
    codes = np.random.default_rng(3).integers(0, 65536, (1031, 1111), dtype=np.uint16)
    mapping = DepthMapping("inverse-gray", 0.5, 30.0)
    depth = convert(codes, "hdis", mapping, row_alignment=alignment)
    assert np.array_equal(depth.array.view(np.uint16), mapping.lookup_table("uint16", "hdis").view(np.uint16)[codes])


def test_invalid_pixels_become_nan_never_inf():
    kitti = np.array([[0, 1, 256, 65535]], np.uint16)
    for fmt in FORMATS:
        values = convert(kitti, fmt, DepthMapping("kitti")).array
        assert np.isnan(values[0, 0]) and np.isfinite(values[0, 1:]).all()


def test_batch_of_ragged_maps():
    maps = [np.zeros((3, 4), np.uint8), np.full((2, 9), 65535, np.uint16)]
    out = convert(maps, "fdep", DepthMapping("apple-gray", 1.0, 2.0))
    assert [(d.width, d.height) for d in out] == [(4, 3), (9, 2)]
    assert out[0].array.max() == 1.0 and out[1].array.min() == 2.0


@pytest.mark.parametrize("disparity", [False, True])
@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
@pytest.mark.parametrize(
    "mapping",
    [DepthMapping(p, n, f) for p, n, f in RANGED + METRIC]
    + [
        DepthMapping("metric", depth_scale=5000.0),
        DepthMapping("disparity-px", depth_scale=256.0, focal_px=720.0, baseline=0.54, doffs=0.5),
    ],
    ids=str,
)
def test_code_values_are_evaluate_of_each_code(mapping, dtype, disparity):
    """Resampled integer maps are evaluated through the values of every code (and the GPU's tables too)."""
    codes = np.random.default_rng(4).integers(0, np.iinfo(dtype).max + 1, (37, 53)).astype(dtype)
    looked_up = mapping.code_values(dtype, disparity).take(codes)
    assert np.array_equal(looked_up.view(np.uint64), mapping.evaluate(codes, disparity).view(np.uint64))


def test_area_resize_to_requested_size():
    gray = np.tile(np.array([[0, 255]], np.uint8), (4, 4))  # 4x8 alternating columns
    depth = convert(gray, "fdep", DepthMapping("apple-gray", 1.0, 3.0), size=(4, 2))
    assert (depth.width, depth.height) == (4, 2)
    assert np.allclose(depth.array, 2.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preset": "apple-gray", "near": 2.0, "far": 1.0}, "zNear must be less than zFar"),
        ({"preset": "apple-gray", "near": 1.0, "far": 1.0}, "zNear must be less than zFar"),
        ({"preset": "apple-gray", "near": math.nan, "far": 1.0}, "must be numbers"),
        ({"preset": "apple-gray", "near": -1.0, "far": 1.0}, "zNear must be finite and >= 0"),
        ({"preset": "inverse-gray", "near": 0.0, "far": 1.0}, "zNear must be > 0"),
        ({"preset": "apple-gray", "near": 1.0}, "needs --near and --far"),
        ({"preset": "kitti", "near": 1.0, "far": 2.0}, "takes no --near/--far"),
        ({"preset": "kitti", "depth_scale": 256.0}, "kitti is --preset metric --depth-scale 256"),
        ({"preset": "apple-gray", "near": 1.0, "far": 2.0, "depth_scale": 5.0}, "--depth-scale belongs to"),
        ({"preset": "metric", "depth_scale": 0.0}, "--depth-scale must be a positive number"),
        ({"preset": "disparity-px", "focal_px": 700.0}, "needs --focal-px .pixels. and --baseline"),
        ({"preset": "disparity-px", "focal_px": -7.0, "baseline": 0.5}, "--focal-px must be a positive number"),
        (
            {"preset": "disparity-px", "focal_px": 7.0, "baseline": 0.5, "doffs": math.inf},
            "--doffs must be a finite number",
        ),
        ({"preset": "metric", "baseline": 0.5}, "belong to --preset disparity-px, not metric"),
        ({"preset": "nope"}, "unknown preset"),
    ],
)
def test_bad_parameters_are_one_clear_line(kwargs, message):
    with pytest.raises(DepthError, match=message) as info:
        DepthMapping(**kwargs)
    assert "\n" not in str(info.value)


def test_disparity_of_zero_depth_is_an_error_at_mapping_time():
    with pytest.raises(DepthError, match="no finite disparity"):
        DepthMapping("apple-gray", 0.0, 5.0).lookup_table("uint8", "hdis")


def test_half_overflow_names_the_format_that_fits():
    mapping = DepthMapping("apple-gray", 1e-5, 1.0)
    with pytest.raises(DepthError, match="exceeds the format's largest value 65504; use fdis"):
        mapping.lookup_table("uint8", "hdis")
    assert mapping.lookup_table("uint8", "fdis")[0] == np.float32(1e5)


def test_float_gray_outside_unit_range():
    with pytest.raises(DepthError, match=r"gray value 1.5 at index \(0, 1\) is outside \[0, 1\]"):
        convert(np.array([[0.0, 1.5]], np.float32), "hdis", DepthMapping("apple-gray", 1.0, 2.0))


@pytest.mark.parametrize("bad", [np.zeros((2, 2), np.int32), np.zeros((2, 2, 3), np.uint8), np.zeros((0, 4))])
def test_bad_maps(bad):
    with pytest.raises(DepthError, match="map 0"):
        convert([bad], "hdis", DepthMapping("apple-gray", 1.0, 2.0))


def test_unknown_backend():
    with pytest.raises(DepthError, match="unknown backend"):
        convert(np.zeros((2, 2), np.uint8), "hdis", DepthMapping("apple-gray", 1.0, 2.0), backend="tpu")


class HostDLPack:
    """A foreign host array that only speaks DLPack (as a CPU PyTorch tensor does)."""

    def __init__(self, array):
        self.array = array
        self.ndim = array.ndim

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


def test_dlpack_and_array_like_inputs():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    mapping = DepthMapping("apple-gray", 1.0, 2.0)
    expected = convert(gray, "hdis", mapping)
    assert convert(HostDLPack(gray), "hdis", mapping) == expected
    with pytest.raises(DepthError, match="map 0: unsupported dtype int64"):
        convert([gray.tolist()], "fdep", mapping)  # nested lists become int64


def test_zero_disparity_has_no_finite_depth():
    mapping = DepthMapping("relative-disparity", 0.5, math.inf)
    assert convert(np.array([[0.0, 1.0]], np.float32), "fdis", mapping).array[0, 0] == 0
    with pytest.raises(DepthError, match="a disparity of 0 has no finite depth"):
        convert(np.array([[0.0, 1.0]], np.float32), "fdep", mapping)


@pytest.mark.parametrize("maps", [np.asarray(...), np.float32(1.0), 5, None, "map.png"])
def test_convert_refuses_what_is_not_a_map_with_a_depth_error(maps):
    with pytest.raises(DepthError, match="expected a 2-D map"):
        convert(maps, "hdis", DepthMapping("apple-gray", near=0.4, far=12.0))


def test_convert_takes_a_size_as_the_command_line_writes_it():
    gray = np.zeros((48, 64), np.uint8)
    depth = convert(gray, "hdis", DepthMapping("apple-gray", near=0.4, far=12.0), size="32x24")
    assert (depth.width, depth.height) == (32, 24)
    with pytest.raises(DepthError, match="768x576"):
        convert(gray, "hdis", DepthMapping("apple-gray", near=0.4, far=12.0), size="big")


# ---- what each preset can mean (issue 21) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "dtype", "message"),
    [
        (DepthMapping("metric"), "uint16", "give --depth-scale N.*--preset mm16 .millimetres. or kitti"),
        (DepthMapping("metric"), "uint8", "preset metric reads float metres, but this map holds uint8 codes"),
        (DepthMapping("kitti"), "float32", "preset kitti reads integer codes.*float32 values: use --preset metric"),
        (DepthMapping("mm16"), "float64", "preset mm16 reads integer codes.*use --preset metric"),
        (DepthMapping("metric", depth_scale=5000), "float32", "--depth-scale 5000 reads integer codes"),
        (DepthMapping("disparity-px", focal_px=7.0, baseline=0.5), "uint16", "codes per pixel .KITTI stereo: 256"),
    ],
)
def test_presets_refuse_maps_they_cannot_mean(mapping, dtype, message):
    with pytest.raises(DepthError, match=message) as info:
        convert(np.full((2, 3), 7, dtype), "hdis", mapping)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_depth_scale_reads_codes_per_metre(fmt):
    tum = DepthMapping("metric", depth_scale=5000)
    codes = np.array([[0, 5000, 2500, 65535]], np.uint16)
    depth = convert(codes, fmt, tum).array.astype(np.float64)
    metres = depth if not fmt.is_disparity else 1 / depth
    assert np.isnan(metres[0, 0]) and np.allclose(metres[0, 1:], [1.0, 0.5, 13.107], rtol=1e-3)
    for preset, scale in (("kitti", 256), ("mm16", 1000)):  # the named cases are the same tables
        named, scaled = DepthMapping(preset), DepthMapping("metric", depth_scale=scale)
        assert np.array_equal(named.lookup_table("uint16", fmt), scaled.lookup_table("uint16", fmt), equal_nan=True)


def test_disparity_px_is_focal_times_baseline_over_disparity():
    rig = {"focal_px": 721.5377, "baseline": 0.5372}
    pixels = np.array([[0.0, -2.0, 10.0, 56.25, np.nan, np.inf]], np.float32)
    depth = convert(pixels, "fdep", DepthMapping("disparity-px", **rig)).array
    expected = rig["focal_px"] * rig["baseline"] / np.array([10.0, 56.25])
    assert np.isnan(depth[0, [0, 1, 4, 5]]).all() and np.allclose(depth[0, 2:4], expected, rtol=1e-7)
    scaled = DepthMapping("disparity-px", **rig, depth_scale=256)
    kitti = convert(np.array([[0, 2560, 14400]], np.uint16), "fdep", scaled)
    assert np.isnan(kitti.array[0, 0]) and np.allclose(kitti.array[0, 1:], expected, rtol=1e-7)
    shifted = convert(np.array([[10.0]], np.float32), "fdep", DepthMapping("disparity-px", **rig, doffs=2.5)).array
    assert np.isclose(shifted[0, 0], rig["focal_px"] * rig["baseline"] / 12.5, rtol=1e-7)
    near_zero = convert(np.array([[1.0, 3.0]], np.float32), "fdis", DepthMapping("disparity-px", **rig, doffs=-2.0))
    assert np.isnan(near_zero.array[0, 0]) and near_zero.array[0, 1] > 0  # d + doffs <= 0: invalid


def test_metadata_says_whether_values_are_metric_and_holes_remain():
    kitti = convert(np.array([[0, 512]], np.uint16), "hdis", DepthMapping("kitti")).metadata
    gray = convert(np.array([[0, 5]], np.uint8), "hdis", DepthMapping("apple-gray", 1.0, 2.0)).metadata
    assert (kitti.accuracy, kitti.filtered) == ("absolute", False)
    assert (gray.accuracy, gray.filtered) == ("relative", True)


def test_mappings_describe_themselves():
    assert DepthMapping("metric", depth_scale=5000).describe() == "metric: metres = codes / 5000, 0 = invalid"
    assert DepthMapping("metric").describe() == "metric: metres = values, 0 = invalid"
    assert DepthMapping("kitti").describe() == "kitti: metres = codes / 256, 0 = invalid"
    assert DepthMapping("apple-gray", 0.5, 8).describe() == "apple-gray, near 0.5 m, far 8 m"
    rig = DepthMapping("disparity-px", focal_px=700, baseline=0.5, doffs=2, depth_scale=256)
    assert rig.describe() == "disparity-px: depth = 700 px · 0.5 m / (pixels + 2), pixels = codes / 256"


def test_visualised_midas_mid_gray_is_relative_disparity():
    """MiDaS write_depth stores normalised disparity: mid gray between 0.5 m and 10 m is 0.95 m, not 5.25 m."""
    mid = np.array([[0.5]], np.float64)
    relative = convert(np.array([[0.0, 0.5, 1.0]]), "fdep", DepthMapping("relative-disparity", 0.5, 10.0))
    assert np.isclose(relative.array[0, 1], 1 / (0.1 + 0.5 * 1.9))
    assert np.isclose(convert(mid, "fdep", DepthMapping("inverted-gray", 0.5, 10.0)).array[0, 0], 5.25)


def test_convert_takes_one_mapping_per_map():
    """Photos with their own zNear/zFar in one call: each map converts as it does alone, metadata its own."""
    rng = np.random.default_rng(83)
    maps = [
        rng.integers(0, 256, (4, 6)).astype(np.uint8),
        rng.random((3, 5)).astype(np.float32),
        np.array([[0, 2560, 512]], np.uint16),
        rng.integers(0, 256, (4, 6)).astype(np.uint8),
    ]
    mappings = [
        DepthMapping("apple-gray", 0.5, 4.0),
        DepthMapping("inverse-gray", 1.0, 10.0),
        DepthMapping("kitti"),
        DepthMapping("apple-gray", 1.0, 4.0),
    ]
    sizes = [None, (2, 2), None, (3, 2)]
    together = convert(maps, "hdis", mappings, size=sizes)
    assert together == [convert(m, "hdis", e, size=s) for m, e, s in zip(maps, mappings, sizes, strict=True)]
    assert together[0] != convert(maps[0], "hdis", mappings[3])
    assert [d.metadata.accuracy for d in together] == ["relative", "relative", "absolute", "relative"]
    assert [d.metadata.filtered for d in together] == [True, True, False, True]  # KITTI's 0 is a hole
    assert convert(maps[0], "hdis", mappings[:1]) == together[0]  # one map, a sequence of one mapping


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ([DepthMapping("apple-gray", 1.0, 2.0)], "got 1 mappings for 2 maps"),
        ([DepthMapping("apple-gray", 1.0, 2.0), "apple-gray"], "mapping 1 must be a DepthMapping, got str"),
        ("apple-gray", "mapping must be a DepthMapping or a sequence of one per map, got str"),
        (None, "mapping must be a DepthMapping or a sequence of one per map, got NoneType"),
    ],
)
def test_convert_refuses_mappings_that_are_not_one_per_map(mapping, message):
    with pytest.raises(DepthError) as error:
        convert([np.zeros((2, 2), np.uint8)] * 2, "hdis", mapping)
    assert str(error.value) == message


def test_each_map_is_checked_against_its_own_mapping():
    codes = np.zeros((2, 2), np.uint16)
    with pytest.raises(DepthError, match="preset metric reads float metres"):
        convert([codes, codes], "hdis", [DepthMapping("kitti"), DepthMapping("metric")])
