import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gpu_depth import DepthData, DepthError, DepthMapping, PixelFormat, convert
from gpu_depth.core.quantize import dequantize, quantize, round_bound


@settings(max_examples=300, deadline=None)
@given(value=st.floats(1e-9, 1e9), up=st.booleans())
def test_round_bound_is_outward_and_on_the_16_bit_grid(value, up):
    bound = round_bound(value, up)
    assert bound >= value if up else bound <= value
    if bound:
        mantissa, _ = math.frexp(bound)
        assert (mantissa * 2**17).is_integer()  # 1 implicit + 16 fraction bits
        assert abs(bound - value) <= bound * 2**-16


def test_apple_bounds_are_already_on_the_grid():
    assert round_bound(1.498046875, up=False) == 1.498046875 and round_bound(4.3828125, up=True) == 4.3828125


@pytest.mark.parametrize("fmt", list(PixelFormat), ids=str)
def test_round_trip_within_half_a_step(fmt):
    gray = np.random.default_rng(7).integers(0, 65536, (40, 30), dtype=np.uint16)
    depth = convert(gray, fmt, DepthMapping("apple-gray", 0.6, 9.0))
    stored = quantize(depth)
    assert stored.pixels.dtype == np.uint8 and stored.info.native_format == fmt.code
    assert stored.info.image_type == fmt.quantity and stored.pixels.min() == 0 and stored.pixels.max() == 255
    back = dequantize(stored.pixels, stored.info, stored.metadata)
    assert back.pixel_format is fmt
    step = (stored.info.float_max - stored.info.float_min) / 255
    error = np.abs(back.array.astype(np.float64) - depth.array.astype(np.float64))
    assert (error <= step / 2 + np.spacing(depth.array.astype(fmt.dtype)).astype(np.float64) * 2).all()


def test_disparity_codes_grow_towards_the_camera():
    depth = DepthData.from_array(np.array([[1.0, 2.0, 4.0]]), "fdep").converting("fdis")
    codes = quantize(depth).pixels[0]
    assert codes[0] == 255 and codes[2] == 0  # 1 m is nearest: largest disparity, largest code


def test_nan_is_stored_as_int_min_and_all_nan_is_refused():
    depth = DepthData.from_array(np.array([[np.nan, 1.0, 3.0]]), "hdep")
    assert quantize(depth).pixels[0, 0] == 0
    with pytest.raises(DepthError, match="no finite value"):
        quantize(DepthData.from_array(np.full((2, 2), np.nan), "hdep"))


def test_unusable_range_is_refused():
    stored = quantize(DepthData.from_array(np.array([[1.0, 2.0]]), "hdis"))
    bad = stored.info.__class__(**{**stored.info.__dict__, "int_max": 0})
    with pytest.raises(DepthError, match="stored depth range is unusable"):
        dequantize(stored.pixels, bad)


def _reference_quantize(values: np.ndarray, top: int) -> tuple[np.ndarray, float, float, int]:
    """The stored codes, FloatMin, FloatMax and IntMin of the formula, element by element in float64."""
    values = values.astype(np.float64)
    finite = np.isfinite(values)
    low = round_bound(float(values[finite].min()), up=False)
    high = round_bound(float(values[finite].max()), up=True)
    bottom = int(not finite.all())
    scale = (top - bottom) / (high - low) if high > low else 0.0
    codes = np.rint((np.where(finite, values, low) - low) * scale) + bottom
    return np.clip(np.where(finite, codes, 0), 0, top), low, high, bottom


@settings(max_examples=300, deadline=None)
@given(
    fmt=st.sampled_from(["hdis", "hdep", "fdis", "fdep"]),
    stored=st.sampled_from(["L008", "L016"]),
    bits=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=60),
    specials=st.lists(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-8, 6e4]), max_size=4),
    aligned=st.booleans(),
)
def test_quantize_gives_the_formulas_codes_for_any_values(fmt, stored, bits, specials, aligned):
    """quantize works in place on its own copy: the formula's bits on each pixel, holes and padded rows too."""
    from gpu_depth.core.formats import StoredFormat

    dtype = PixelFormat.parse(fmt).dtype
    raw = np.array(bits, np.uint32).astype(np.uint16 if dtype == np.float16 else np.uint32).view(dtype)
    values = np.concatenate([raw, np.array(specials, dtype)])
    try:
        depth = DepthData.from_array(values.reshape(1, -1), fmt)
    except DepthError:  # values no map of its format holds (a depth of 0 as disparity …)
        assume(False)
    if aligned:  # rows padded as a GPU lays them out: a map that is a strided view
        rows = np.zeros((1, values.size + 3), dtype)
        rows[:, : values.size] = values
        depth = DepthData.from_rows(rows, PixelFormat.parse(fmt), values.size)
    stored_format = StoredFormat[stored]
    if not np.isfinite(values.astype(np.float64)).any():
        with pytest.raises(DepthError, match="no finite value"):
            quantize(depth, stored_format)
        return
    codes, low, high, bottom = _reference_quantize(values, stored_format.max_code)
    got = quantize(depth, stored_format)
    assert got.pixels.dtype == stored_format.dtype and got.pixels.shape == (1, values.size)
    assert np.array_equal(got.pixels[0], codes.astype(stored_format.dtype))
    assert (got.info.float_min, got.info.float_max, got.info.int_min) == (low, high, bottom)
