"""The lossless HEVC coder of mattes and depth maps: every picture decodes to exactly its samples in libde265
(pillow-heif's, and Debian's libheif/libde265 through heif-convert), whatever the content and size."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import pillow_heif
import pytest
from helpers import sample, tool
from helpers.heic import random_photo, video_signal
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gpu_depth import DepthData, Matte
from gpu_depth.containers.heic import hevc_lossless, isobmff
from gpu_depth.containers.heic import plugin as heic
from gpu_depth.core.auxiliary import KINDS
from gpu_depth.errors import DepthError

pytestmark = pytest.mark.skipif(not hevc_lossless.AVAILABLE, reason="built without the C coder")


@pytest.fixture(scope="module")
def photo() -> bytes:
    return random_photo(64, 48)


def decoded(photo: bytes, pixels: np.ndarray) -> np.ndarray:
    """The skin matte ``pixels`` attached to ``photo`` (our coder) and decoded by pillow-heif."""
    image = pillow_heif.open_heif(io.BytesIO(heic.attach_auxiliary(photo, [Matte.of("skin", pixels)])))
    (aux_id,) = image.info["aux"][KINDS["skin"].urn]
    return np.asarray(image.get_aux_image(aux_id))


def content(kind: str, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Pictures that make the coder use each of its modes, splits and residual paths."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    pictures = {
        "noise": lambda: rng.integers(0, 256, (height, width)),  # residuals up to ±255, every CU split to 8
        "columns": lambda: (x * 37) % 256,  # vertical prediction exact
        "rows": lambda: (y * 53) % 256,  # horizontal prediction exact
        "slope": lambda: (x + 2 * y) % 256,  # planar's ground
        "edges": lambda: 255 * (((x // 5) + (y // 11)) % 2),  # flat areas cut off the CU grid
        "levels": lambda: (rng.integers(0, 4, (height, width)) * 85) * ((x + y) % 7 < 3),
    }
    return pictures[kind]().astype(np.uint8)


@pytest.mark.parametrize("kind", ["noise", "columns", "rows", "slope", "edges", "levels"])
@pytest.mark.parametrize("size", [(1, 1), (8, 8), (7, 9), (65, 33), (37, 100), (130, 257)])
def test_pillow_heif_decodes_exactly_our_samples(photo, kind, size):
    pixels = content(kind, *size)
    assert np.array_equal(decoded(photo, pixels), pixels)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 80),
    st.integers(1, 80),
    st.integers(0, 2**32 - 1),
    st.sampled_from([1, 4, 16, 255]),
    st.floats(0, 1),
)
def test_any_picture_decodes_exactly(photo, height, width, seed, spread, noisy):
    # flat areas at random levels with sparse noise of any spread: every path of the residual coding
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (-(-height // 6), -(-width // 6))).repeat(6, 0).repeat(6, 1)[:height, :width]
    noise = rng.integers(-spread, spread + 1, (height, width)) * (rng.random((height, width)) < noisy)
    pixels = np.clip(blocks + noise, 0, 255).astype(np.uint8)
    assert np.array_equal(decoded(photo, pixels), pixels)


def test_debians_heif_convert_decodes_exactly_our_samples(photo, tmp_path):
    heif_convert = tool("heif-convert")
    mattes = [Matte.of("skin", content("noise", 75, 131)), Matte.of("hair", content("slope", 130, 257))]
    path = tmp_path / "mattes.heic"
    path.write_bytes(heic.attach_auxiliary(photo, mattes))
    subprocess.run([heif_convert, "--with-aux", "--no-colons", "--quiet", path, tmp_path / "out.png"], check=True)
    for matte in mattes:
        (written,) = tmp_path.glob(f"out-{matte.kind.urn.replace(':', '_')}.png")
        assert np.array_equal(np.asarray(Image.open(written).convert("L")), matte.pixels)


@pytest.mark.parametrize("coder", ["ours", "x265", "x265 preset"])
def test_the_lossless_depth_item_is_our_coders_and_decodes_exactly(photo, coder, monkeypatch, tmp_path):
    # x265 codes it where the build has no C coder, or asked by its preset; heif-convert is the second referee
    if coder == "x265":
        monkeypatch.setattr(hevc_lossless, "AVAILABLE", False)
    options = {"depth_preset": "superfast"} if coder == "x265 preset" else {}
    y, x = np.mgrid[0:72, 0:96]
    depth = DepthData.from_array(0.5 + 2 * x / 96 + 0.1 * np.sin(y / 4), "hdis")
    stored = heic.storage().stored(depth)[0].pixels
    path = tmp_path / "depth.heic"
    path.write_bytes(heic.attach_depth(photo, depth, **options))
    heif = isobmff.parse_file(path.read_bytes())
    coded = isobmff.item_data(heif, heic.find_depth_item(heif.meta))
    assert (coded == hevc_lossless.encode(stored)[1]) == (coder == "ours")
    (image,) = pillow_heif.open_heif(path).info["depth_images"]
    assert np.array_equal(np.asarray(image), stored)
    heif_convert = tool("heif-convert")
    subprocess.run([heif_convert, "--with-aux", "--quiet", path, tmp_path / "out.png"], check=True)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out-depth.png").convert("L")), stored)


def test_the_parameter_sets_say_monochrome_8_bit_range_extensions(photo):
    coding, coded = hevc_lossless.encode(content("edges", 37, 100))
    properties = dict(coding)
    config = isobmff.parse_hvcc(properties["hvcC"], "hvcC")
    assert (config.chroma_format, config.bit_depth, config.length_size) == (0, 8, 4)
    assert properties["hvcC"][9] & 31 == 4  # general_profile_idc: Format Range Extensions
    assert isobmff.parse_ispe(properties["ispe"], "ispe") == (100, 37)
    assert int.from_bytes(coded[:4], "big") == len(coded) - 4 and coded[4] >> 1 == 20  # one IDR_N_LP slice


def test_the_samples_are_full_range_as_the_iphones_are():
    # without video_full_range_flag a reader may stretch 16-235 to black-white: the iPhone and x265 both set it
    ours = video_signal(dict(hevc_lossless.encode(content("edges", 37, 100))[0])["hvcC"])
    assert ours == (5, 1, (2, 2, 2))
    heif = isobmff.parse_file(sample("iphone14-front-mattes.heic").read_bytes())
    items = [item_id for item_id, _ in heic.matte_items(heif.meta)] + [heic.find_depth_item(heif.meta)]
    assert {video_signal(heif.meta.first_property(item_id, "hvcC")[1]) for item_id in items} == {ours}


def test_the_profile_and_constraint_flags_are_the_iphones():
    # profile 4, compatibility, and the Monochrome profile's constraints (A.3.5) as the iPhone 14 writes them
    ours = dict(hevc_lossless.encode(content("edges", 37, 100))[0])["hvcC"][9:20]
    heif = isobmff.parse_file(sample("iphone14-front-mattes.heic").read_bytes())
    items = [item_id for item_id, _ in heic.matte_items(heif.meta)] + [heic.find_depth_item(heif.meta)]
    assert {heif.meta.first_property(item_id, "hvcC")[1][9:20] for item_id in items} == {ours}


def test_the_iphone_14s_mattes_decode_exactly_and_code_smaller_than_x265():
    mattes = heic.read_mattes(sample("iphone14-front-mattes.heic").read_bytes())
    assert len(mattes) == 5
    x265 = heic._map_encoder_params(heic.MATTE_PRESET, None) | heic.MATTE_X265
    for matte in mattes:
        _, ours = hevc_lossless.encode(matte.pixels)
        _, theirs = heic._encode_x265(matte.pixels, -1, x265, "matte")
        assert len(ours) < len(theirs), matte.kind.name
    image = pillow_heif.open_heif(io.BytesIO(heic.attach_auxiliary(_photo_of(mattes[0]), mattes)))
    for matte in mattes:
        (aux_id,) = image.info["aux"][matte.kind.urn]
        assert np.array_equal(np.asarray(image.get_aux_image(aux_id)), matte.pixels), matte.kind.name


def _photo_of(matte: Matte) -> bytes:
    buffer = io.BytesIO()
    gray = Image.new("RGB", (2 * matte.width, 2 * matte.height), (90, 90, 90))
    pillow_heif.from_pillow(gray).save(buffer, quality=30, enc_params={"preset": "ultrafast"})
    return buffer.getvalue()


@pytest.mark.parametrize("shape, dtype", [((4, 4), np.uint16), ((4, 4, 1), np.uint8), ((0, 4), np.uint8)])
def test_only_2_d_uint8_pictures_are_coded(shape, dtype):
    pixels = np.zeros(shape, dtype)
    with pytest.raises(ValueError, match="non-empty 2-D uint8 array"):
        hevc_lossless.encode(pixels)


def test_a_matte_beyond_every_hevc_level_is_refused_by_name(photo):
    with pytest.raises(DepthError, match=r"cannot encode the 16900x8 hair matte: .*beyond every HEVC level"):
        heic.attach_auxiliary(photo, [Matte.of("hair", np.zeros((8, 16900), np.uint8))])
