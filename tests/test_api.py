"""The file API for mattes: read_mattes / read_auxiliary / attach_auxiliary and attach_depth(mattes=)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.jpeg import smooth_depth
from PIL import Image

import gpu_depth
from gpu_depth import DepthError, Matte
from gpu_depth.errors import ExistingDepth


def ramp(width: int, height: int) -> np.ndarray:
    return (np.arange(width * height).reshape(height, width) % 251).astype(np.uint8)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.full((96, 128, 3), 90, np.uint8)).save(path, quality=90)
    return path


def test_one_write_adds_depth_and_mattes(photo, tmp_path):
    out = gpu_depth.attach_depth(
        photo,
        smooth_depth("hdis"),
        tmp_path / "out.heic",
        mattes={"portrait-effects": ramp(64, 48), "teeth": ramp(64, 48)},
    )
    assert gpu_depth.read_depth(out).width == 96
    assert [(m.kind.name, m.width, m.height) for m in gpu_depth.read_mattes(out)] == [
        ("portrait-effects", 64, 48),
        ("teeth", 64, 48),
    ]
    assert np.array_equal(gpu_depth.read_auxiliary(out, "teeth").pixels, ramp(64, 48))
    assert gpu_depth.read_auxiliary(out, "sky") is None
    types = [a["type"] for a in gpu_depth.api.auxiliary_images(out)]
    assert types == ["depth", "portrait-effects", "teeth"]


def test_attach_auxiliary_and_its_replace_flag(photo, tmp_path):
    first = gpu_depth.attach_auxiliary(photo, "portrait-effects", ramp(64, 48), tmp_path / "a.jpg")
    with pytest.raises(ExistingDepth, match="replace=True"):
        gpu_depth.attach_auxiliary(first, "portrait-effects", ramp(64, 48), tmp_path / "b.jpg")
    second = gpu_depth.attach_auxiliary(first, "portrait-effects", 255 - ramp(64, 48), tmp_path / "b.jpg", replace=True)
    (matte,) = gpu_depth.read_mattes(second)
    assert np.abs(matte.pixels.astype(int) - (255 - ramp(64, 48))).max() <= 1
    info = matte.dictionary_representation()
    assert info["DataDescription"]["Width"] == 64 and b"PortraitEffectsMatteVersion" in info["Metadata"]


def test_a_matte_of_another_aspect_is_refused_unless_stretched(photo, tmp_path):
    with pytest.raises(DepthError, match="fit='stretch'"):
        gpu_depth.attach_auxiliary(photo, "hair", ramp(64, 64), tmp_path / "a.jpg")
    assert not (tmp_path / "a.jpg").exists()
    gpu_depth.attach_auxiliary(photo, "hair", ramp(64, 64), tmp_path / "a.jpg", fit="stretch")


def test_displayed_mattes_are_turned_to_the_stored_orientation(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter: a displayed 48x64 matte is stored 64x48
    Image.fromarray(np.full((96, 128, 3), 90, np.uint8)).save(path, exif=exif)
    shown = ramp(48, 64)
    out = gpu_depth.attach_auxiliary(path, "skin", shown, tmp_path / "o.jpg", orientation="displayed")
    stored = gpu_depth.read_auxiliary(out, "skin").pixels
    assert stored.shape == (48, 64)
    assert np.abs(np.rot90(stored, -1).astype(int) - shown).max() <= 1


def test_mattes_follow_the_photo_into_another_container_unless_dropped(photo, tmp_path):
    source = gpu_depth.attach_depth(photo, smooth_depth("hdis"), tmp_path / "s.jpg", mattes={"hair": ramp(64, 48)})
    out = gpu_depth.attach_depth(source, smooth_depth("hdis"), tmp_path / "s.heic", replace=True)
    (matte,) = gpu_depth.read_mattes(out)
    assert (matte.kind.name, matte.version) == ("hair", 65536)
    assert np.array_equal(matte.pixels, gpu_depth.read_mattes(source)[0].pixels)  # HEIC stores it losslessly
    dropped = gpu_depth.attach_depth(source, smooth_depth("hdis"), tmp_path / "d.heic", replace=True, drop_mattes=True)
    assert gpu_depth.read_mattes(dropped) == []


def test_bad_mattes_are_one_line_errors(photo, tmp_path):
    with pytest.raises(DepthError, match="unknown matte kind 'beard'"):
        gpu_depth.attach_depth(photo, smooth_depth("hdis"), tmp_path / "o.jpg", mattes={"beard": ramp(64, 48)})
    with pytest.raises(DepthError, match="2-D uint8"):
        gpu_depth.attach_depth(photo, smooth_depth("hdis"), tmp_path / "o.jpg", mattes={"hair": ramp(64, 48) * 1.0})
    with pytest.raises(DepthError, match="a 2-D uint8 array or a Matte"):
        gpu_depth.attach_depth(photo, smooth_depth("hdis"), tmp_path / "o.jpg", mattes={"hair": [[1]]})
    with pytest.raises(DepthError, match="unknown attach option"):
        gpu_depth.attach_auxiliary(photo, "hair", ramp(64, 48), tmp_path / "o.jpg", bogus=1)
    assert not (tmp_path / "o.jpg").exists()
    # options of other containers are ignored, as attach_depth ignores them
    gpu_depth.attach_auxiliary(photo, "hair", ramp(64, 48), tmp_path / "o.jpg", depth_quality=50)
    assert isinstance(Matte.of("hair", ramp(4, 3)), Matte)


def test_carried_mattes_are_turned_with_a_photo_whose_copy_stores_it_turned(tmp_path):
    from gpu_depth.containers.heic import plugin as heic
    from gpu_depth.containers.jpeg import plugin as jpeg
    from gpu_depth.core.orientation import to_displayed

    exif = Image.Exif()
    exif[0x0112] = 6
    image = Image.fromarray(np.full((96, 128, 3), 90, np.uint8))
    image.info["exif"] = exif.tobytes()
    source = tmp_path / "rotated.heic"
    source.write_bytes(heic.encode_photo(image, encoder_preset="ultrafast"))
    with_matte = gpu_depth.attach_auxiliary(source, "hair", ramp(64, 48), tmp_path / "m.heic")
    out = gpu_depth.attach_depth(
        with_matte, smooth_depth("hdis"), tmp_path / "m.jpg", orientation="displayed", fit="stretch"
    )
    shown = [
        to_displayed(gpu_depth.read_auxiliary(path, "hair").pixels, plugin.orientation(path.read_bytes())).astype(int)
        for path, plugin in ((with_matte, heic), (out, jpeg))
    ]
    assert shown[0].shape == shown[1].shape and np.abs(shown[0] - shown[1]).max() <= 1


@pytest.mark.parametrize("suffix", [".heic", ".jpg"])
def test_attach_with_the_photo_parsed_once_writes_the_same_bytes_and_leaves_the_parse_unchanged(tmp_path, suffix):
    """The pipeline parses each photo once (its report's mattes, orientation, size and the attach share it)."""
    from gpu_depth import containers
    from gpu_depth.api import attach
    from gpu_depth.containers.heic import isobmff

    photo = tmp_path / f"photo{suffix}"
    gpu_depth.attach_depth(_photo(tmp_path), smooth_depth("hdep"), photo, mattes={"portrait-effects": ramp(64, 48)})
    data = photo.read_bytes()
    target = containers.sniff(data)
    parsed = target.parse(data)
    before = isobmff.meta_bytes(parsed.meta) if suffix == ".heic" else parsed
    options = {"replace": True, "mattes": {"teeth": ramp(64, 48)}, "exif_portrait": False}
    once = attach(data, photo, smooth_depth("hdis"), target, parsed=parsed, **options)
    assert once == attach(data, photo, smooth_depth("hdis"), target, **options)
    assert (isobmff.meta_bytes(parsed.meta) if suffix == ".heic" else parsed) == before


def _photo(tmp_path):
    path = tmp_path / "source.jpg"
    Image.fromarray(np.full((96, 128, 3), 90, np.uint8)).save(path, quality=90)
    return path
