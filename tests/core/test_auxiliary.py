"""The matte model: kinds, URNs and XMP against what the iPhone samples hold."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import sample
from helpers.heic import sample_mattes

from gpu_depth import DepthError, Matte
from gpu_depth.core.auxiliary import GAIN_MAP_URN, KINDS, build_matte_xmp, kind_of, parse_matte_xmp
from gpu_depth.core.formats import StoredFormat
from gpu_depth.core.metadata import PixelDataInfo
from gpu_depth.core.xmp import build_depth_xmp, properties


def test_the_sample_urns_are_our_kinds():
    urns = {urn for urn, _ in sample_mattes(sample("iphone14-front-mattes.heic")).values()}
    assert urns == {KINDS[name].urn for name in ("portrait-effects", "hair", "skin", "teeth", "glasses")}
    assert GAIN_MAP_URN not in {kind.urn for kind in KINDS.values()}


@pytest.mark.parametrize("name", ["portrait-effects", "hair", "skin", "teeth", "glasses"])
def test_our_heic_xmp_has_the_samples_properties_and_values(name):
    theirs = {urn: xmp for urn, xmp in sample_mattes(sample("iphone14-front-mattes.heic")).values()}
    kind = KINDS[name]
    ours = build_matte_xmp(kind, None, typed=False)
    assert properties(ours) == properties(theirs[kind.urn])
    assert parse_matte_xmp(theirs[kind.urn], kind) == (kind, kind.version)


def test_a_jpeg_xmp_names_its_kind():
    for kind in KINDS.values():
        assert parse_matte_xmp(build_matte_xmp(kind, 7, typed=True)) == (kind, 7)


def test_depth_and_gain_map_xmp_name_no_matte():
    code = StoredFormat.L008.code
    for image_type in ("depth", "disparity"):
        depth = build_depth_xmp(PixelDataInfo(image_type, 1751411059, code, 0, 255, 0.5, 2.0), _metadata())
        assert parse_matte_xmp(depth) == (None, None)
    gain = build_matte_xmp(KINDS["hair"], None, typed=True).replace(KINDS["hair"].urn.encode(), GAIN_MAP_URN.encode())
    assert parse_matte_xmp(gain) == (None, None)


def test_a_version_that_is_no_integer_reads_as_unknown():
    xmp = build_matte_xmp(KINDS["skin"], None, typed=False).replace(b">65536<", b">new<")
    assert parse_matte_xmp(xmp, KINDS["skin"]) == (KINDS["skin"], None)


def test_matte_checks_its_pixels_and_names():
    with pytest.raises(DepthError, match="2-D uint8"):
        Matte.of("hair", np.zeros((4, 4), np.uint16))
    with pytest.raises(DepthError, match="2-D uint8"):
        Matte.of("hair", np.zeros((0, 4), np.uint8))
    with pytest.raises(DepthError, match="portrait-effects, hair"):
        kind_of("beard")
    assert kind_of(KINDS["sky"].urn) is KINDS["sky"]


def test_dictionary_representation_is_imageio_s():
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    info = Matte.of("portrait-effects", pixels).dictionary_representation()
    assert info["Data"] == pixels.tobytes()
    assert info["DataDescription"] == {"Width": 4, "Height": 3, "BytesPerRow": 4, "PixelFormat": 1278226488}
    assert parse_matte_xmp(info["Metadata"]) == (KINDS["portrait-effects"], 65537)


def _metadata():
    from gpu_depth import DepthMetadata

    return DepthMetadata()
