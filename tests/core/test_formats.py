import numpy as np
import pytest

from gpu_depth import DepthError, PixelFormat, StoredFormat


@pytest.mark.parametrize(
    ("fourcc", "code", "dtype", "disparity"),
    [
        ("hdis", 1751411059, np.float16, True),
        ("fdis", 1717856627, np.float32, True),
        ("hdep", 1751410032, np.float16, False),
        ("fdep", 1717855600, np.float32, False),
    ],
)
def test_core_video_codes(fourcc, code, dtype, disparity):
    fmt = PixelFormat.parse(fourcc)
    assert (fmt.code, fmt.dtype, fmt.is_disparity) == (code, np.dtype(dtype), disparity)
    assert PixelFormat.parse(code) is fmt
    assert code.to_bytes(4, "big").decode() == fourcc


def test_stored_formats():
    assert StoredFormat.L008.code == 1278226488 and StoredFormat.L016.code == 1278226742
    assert StoredFormat.parse("L016").max_code == 65535


def test_conversions_between_formats():
    assert PixelFormat.HDIS.with_quantity(disparity=False) is PixelFormat.HDEP
    assert PixelFormat.FDEP.with_quantity(disparity=True) is PixelFormat.FDIS
    assert PixelFormat.HDEP.with_precision("float32") is PixelFormat.FDEP


@pytest.mark.parametrize("bad", ["hdsi", 0, "L008", None])
def test_unknown_format_is_named(bad):
    with pytest.raises(DepthError, match="unknown depth pixel format"):
        PixelFormat.parse(bad)
