import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from gpu_depth import DepthError
from gpu_depth.core.orientation import depth_size, displayed_size, to_stored


@pytest.mark.parametrize("orientation", range(1, 9))
def test_to_stored_undoes_what_pillow_shows(orientation):
    stored = np.arange(12, dtype=np.uint8).reshape(3, 4)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    stream = io.BytesIO()
    image.save(stream, "PNG", exif=exif)
    displayed = np.asarray(ImageOps.exif_transpose(Image.open(stream)))
    assert np.array_equal(to_stored(displayed, orientation), stored)
    assert displayed_size(4, 3, orientation) == displayed.shape[::-1]


def test_depth_size_rules():
    assert depth_size((1008, 756), (4032, 3024)) == (1008, 756)
    assert depth_size((4032, 3024), (4032, 3024), (768, 576)) == (768, 576)
    assert depth_size((3024, 4032), (3024, 4032), (768, 576)) == (576, 768)  # turned like the photo
    with pytest.raises(DepthError, match="depth map 1000x1000 has another aspect ratio than the photo 4032x3024"):
        depth_size((1000, 1000), (4032, 3024))
    assert depth_size((1000, 1000), (4032, 3024), stretch=True) == (1000, 750)


def test_the_stored_size_has_a_pixel_limit():
    """--fit stretch of a 100000x1 map for a 4:3 photo allocated 55.9 GiB."""
    with pytest.raises(DepthError, match="stored size of 100000x75000 exceeds the 67108864-pixel limit"):
        depth_size((100000, 1), (4032, 3024), stretch=True)
    with pytest.raises(DepthError, match="stored size of 40000x30000 exceeds"):
        depth_size((768, 576), (4032, 3024), requested=(40000, 30000))
    with pytest.raises(DepthError, match="the photo has no pixels"):
        depth_size((768, 576), (0, 3024), stretch=True)


def test_convert_refuses_a_resample_size_above_the_pixel_limit():
    from gpu_depth import DepthMapping, convert

    with pytest.raises(DepthError, match="resample size of 100000x75000 exceeds"):
        convert(np.zeros((1, 10), np.uint16), "hdis", DepthMapping("apple-gray", 0.5, 10), size=(100000, 75000))
