import numpy as np
import pytest
from helpers.maps import CALIBRATION
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gpu_depth import CameraCalibration, DepthData, DepthError, DepthMapping, DepthMetadata, PixelFormat, convert


def sample_depth(fmt="hdis", alignment=64):
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    meta = DepthMetadata(accuracy="absolute", filtered=False, quality="low", version=65541, calibration=CALIBRATION)
    return convert(gray, fmt, DepthMapping("apple-gray", 0.5, 6.0), row_alignment=alignment, metadata=meta)


@pytest.mark.parametrize("fmt", list(PixelFormat), ids=str)
def test_dictionary_round_trip(fmt):
    depth = sample_depth(fmt)
    info = depth.dictionary_representation()
    assert info["DataDescription"] == {"PixelFormat": fmt.code, "Width": 8, "Height": 6, "BytesPerRow": 64}
    assert len(info["Data"]) == 64 * 6
    assert DepthData.from_dictionary_representation(info) == depth


def broken(**changes):
    info = sample_depth().dictionary_representation()
    for key, value in changes.items():
        target = info["DataDescription"] if key in info["DataDescription"] else info
        if value is None:
            del target[key]
        else:
            target[key] = value
    return info


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"BytesPerRow": 14}, "BytesPerRow 14 is less than Width 8"),
        ({"BytesPerRow": 17}, "BytesPerRow 17 is not a multiple of 2"),
        ({"Data": b"\0" * 100}, "Data holds 100 bytes, less than BytesPerRow 64"),
        ({"PixelFormat": 1278226488}, "unknown depth pixel format 1278226488"),
        ({"Width": 0}, "DataDescription.Width must be a positive integer"),
        ({"Height": "6"}, "DataDescription.Height has the wrong type str"),
        ({"Data": None}, "lacks Data"),
        ({"BytesPerRow": None}, "lacks DataDescription.BytesPerRow"),
        ({"Metadata": b"<x:xmpmeta"}, "XMP: malformed XML"),
    ],
)
def test_malformed_dictionary_names_the_field(changes, message):
    with pytest.raises(DepthError, match=message) as info:
        DepthData.from_dictionary_representation(broken(**changes))
    assert "\n" not in str(info.value)


finite = st.floats(0.0009765625, 6e4, width=16)


@settings(max_examples=80, deadline=None)
@given(values=arrays(np.float16, (3, 4), elements=finite))
def test_half_float_round_trips_are_exact(values):
    for fmt in (PixelFormat.HDIS, PixelFormat.HDEP):
        half = DepthData.from_array(values, fmt)
        back = half.converting(fmt.with_precision("float32")).converting(fmt)
        assert np.array_equal(back.array, values)


@settings(max_examples=80, deadline=None)
@given(values=arrays(np.float32, (3, 4), elements=st.floats(2.0**-20, 2.0**20, width=32)))
def test_depth_disparity_round_trip_within_one_ulp(values):
    depth = DepthData.from_array(values, "fdep", row_alignment=16)
    disparity = depth.converting("fdis")
    assert disparity.bytes_per_row == 16 and disparity.pixel_format is PixelFormat.FDIS
    expected = (1 / values.astype(np.float64)).astype(np.float32)
    assert np.array_equal(disparity.array, expected)
    back = disparity.converting("fdep").array
    assert (np.abs(back - values) <= np.spacing(values)).all()


def test_converting_keeps_nan_and_refuses_overflow():
    depth = DepthData.from_array(np.array([[np.nan, 2.0]]), "fdep")
    assert np.isnan(depth.converting("hdis").array[0, 0])
    with pytest.raises(DepthError, match="no finite disparity"):
        DepthData.from_array(np.array([[0.0, 2.0]]), "fdep").converting("fdis")
    with pytest.raises(DepthError, match="use fdis"):
        DepthData.from_array(np.array([[1e-6]]), "fdep").converting("hdis")


def test_array_is_a_read_only_view_without_padding():
    depth = sample_depth("fdep")
    assert depth.array.shape == (6, 8) and not depth.array.flags.writeable
    with pytest.raises(ValueError):
        depth.array[0, 0] = 1


def test_metadata_validation():
    with pytest.raises(DepthError, match="Accuracy must be relative or absolute"):
        DepthMetadata(accuracy="exact")
    with pytest.raises(DepthError, match="intrinsic matrix must be 3x3"):
        CameraCalibration(intrinsic_matrix=((1, 0), (0, 1)), reference_dimensions=(4, 3))
