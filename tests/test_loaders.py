import numpy as np
import pytest
import tifffile
from PIL import Image

from gpu_depth import DepthError
from gpu_depth.loaders import load_depth_map


@pytest.mark.parametrize(
    ("suffix", "array"),
    [
        (".png", np.arange(20, dtype=np.uint8).reshape(4, 5)),
        (".png", (np.arange(20, dtype=np.uint16) * 3000).reshape(4, 5)),
        (".tif", (np.arange(20, dtype=np.uint16) * 3000).reshape(4, 5)),
        (".tif", np.linspace(0.1, 9, 20, dtype=np.float32).reshape(4, 5)),
        (".npy", np.linspace(0.1, 9, 20, dtype=np.float32).reshape(4, 5)),
    ],
)
def test_dataset_formats_load_exactly(tmp_path, suffix, array):
    path = tmp_path / f"map{suffix}"
    if suffix == ".npy":
        np.save(path, array)
    elif suffix == ".tif" and array.dtype == np.float32:
        tifffile.imwrite(path, array)
    else:
        Image.fromarray(array).save(path)
    loaded = load_depth_map(path)
    assert loaded.dtype == array.dtype and np.array_equal(loaded, array)


def test_broken_maps_name_the_file(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "ok.png").read_bytes()[:40])
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    (tmp_path / "obj.npy").write_bytes(b"\x93NUMPY garbage")
    for name, message in (
        ("cut.png", "cannot decode"),
        ("rgb.png", "must be grayscale, got mode RGB"),
        ("obj.npy", "not a valid .npy"),
        ("missing.png", "cannot read"),
    ):
        with pytest.raises(DepthError, match=message) as info:
            load_depth_map(tmp_path / name)
        assert str(info.value).startswith(str(tmp_path / name))


def test_pixel_limit(tmp_path):
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(DepthError, match="exceeds the 5000-pixel limit"):
        load_depth_map(tmp_path / "big.png", max_pixels=5000)
