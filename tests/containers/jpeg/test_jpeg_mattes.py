"""JPEG mattes: MPF images laid out as the iPhone XS's, extracted by exiftool, read back, replaced."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import sample
from helpers.jpeg import exiftool_binary, exiftool_json, make_photo, smooth_depth
from helpers.maps import person

from gpu_depth import Matte
from gpu_depth.containers.jpeg import plugin as jpeg
from gpu_depth.containers.jpeg import segments
from gpu_depth.core.auxiliary import KINDS
from gpu_depth.core.xmp import properties
from gpu_depth.errors import ExistingDepth

XS = "iphoneXS-matte.jpg"


@pytest.fixture(scope="module")
def photo() -> bytes:
    return make_photo()


@pytest.fixture(scope="module")
def attached(photo) -> bytes:
    return jpeg.attach_depth(photo, smooth_depth("hdis"), mattes=[Matte.of("portrait-effects", person())])


def images(data: bytes):
    return jpeg.mp_index(data, segments.parse_jpeg(data)).images


def layout(data: bytes, image) -> list:
    """The segment kinds of one MP image in order, APPn named by their identifier."""
    parsed = segments.parse_jpeg(data, image.start, image.end)
    return [
        (s.marker, bytes(data[s.offset + 4 : s.offset + 8]) if 0xE0 <= s.marker <= 0xEF else b"")
        for s in parsed.segments
    ]


def test_exiftool_extracts_our_matte_jpeg_and_reads_its_xmp(attached, tmp_path):
    path = tmp_path / "out.jpg"
    path.write_bytes(attached)
    matte = images(attached)[1]
    extracted = exiftool_binary(path, "MPImage3")
    assert extracted == attached[matte.start : matte.end]
    (tmp_path / "matte.jpg").write_bytes(extracted)
    tags = exiftool_json(tmp_path / "matte.jpg")
    assert tags["XMP-apdi:AuxiliaryImageType"] == "depth"
    assert tags["XMP-apdi:AuxiliaryImageSubType"] == "portraiteffectsmatte"
    assert tags["XMP-portraitEffectsMatte:PortraitEffectsMatteVersion"] == 65537
    assert exiftool_json(path)["MPF0:NumberOfImages"] == 3


def test_the_primary_keeps_its_bytes_but_the_inserted_mpf(photo, attached):
    primary = segments.parse_jpeg(attached)
    (mpf,) = primary.applications(attached, segments.APP2, b"MPF\0")
    assert attached[: mpf.offset] + attached[mpf.end : primary.end] == photo


def test_our_images_match_the_iphone_xs_segment_for_segment(attached):
    theirs = sample(XS).read_bytes()
    (_, their_matte), (_, our_matte) = images(theirs), images(attached)
    assert layout(attached, our_matte) == layout(theirs, their_matte)
    their_xmp = segments.parse_jpeg(theirs, their_matte.start, their_matte.end).xmp_packets(theirs)
    our_xmp = segments.parse_jpeg(attached, our_matte.start, our_matte.end).xmp_packets(attached)
    assert properties(our_xmp[0]) == properties(their_xmp[0])
    frame = segments.parse_jpeg(attached, our_matte.start, our_matte.end).frame(attached)
    assert (frame.components, frame.bits, frame.marker) == (1, 8, 0xC0)
    assert [i.entry.attribute for i in images(attached)] == [i.entry.attribute for i in images(theirs)]


def test_our_reader_gets_the_matte_back_within_one_code(attached):
    (matte,) = jpeg.read_mattes(attached)
    assert (matte.kind.name, matte.version, matte.width, matte.height) == ("portrait-effects", 65537, 96, 72)
    assert np.abs(matte.pixels.astype(int) - person()).max() <= 1  # baseline quality 100, as the XS stores it
    assert jpeg.read_depth(attached).width == 96


def test_reading_the_samples_finds_each_matte_and_no_gain_map():
    (matte,) = jpeg.read_mattes(sample(XS).read_bytes())
    assert (matte.kind.name, matte.width, matte.height, matte.version) == ("portrait-effects", 1158, 1544, 65537)
    assert jpeg.read_mattes(sample("iphone12mini-gainmap.jpg").read_bytes()) == []
    assert jpeg.read_mattes(sample("iphoneX-image-with-depth.jpg").read_bytes()) == []


def test_semantic_mattes_carry_their_urn_as_the_type(photo):
    out = jpeg.attach_auxiliary(photo, [Matte.of("skin", person()), Matte.of("sky", person(seed=3))])
    assert [(m.kind.name, m.version) for m in jpeg.read_mattes(out)] == [("skin", 65536), ("sky", 65536)]
    xmp = segments.parse_jpeg(out, images(out)[0].start, images(out)[0].end).xmp_packets(out)[0]
    assert properties(xmp)[("http://ns.apple.com/pixeldatainfo/1.0/", "AuxiliaryImageType")] == KINDS["skin"].urn
    assert jpeg.read_depth(out) is None


def test_replacing_depth_keeps_the_matte_bytes_unless_dropped(attached):
    old = images(attached)[1]
    kept = jpeg.attach_depth(attached, smooth_depth("hdis"), replace=True)
    matte, _ = images(kept)  # the kept matte, then the new depth
    assert kept[matte.start : matte.end] == attached[old.start : old.end]  # still 3 images: not one byte moves
    assert [m.kind.name for m in jpeg.read_mattes(kept)] == ["portrait-effects"]
    dropped = jpeg.attach_depth(attached, smooth_depth("hdis"), replace=True, drop_mattes=True)
    assert jpeg.read_mattes(dropped) == [] and len(images(dropped)) == 1


def test_a_second_matte_of_one_kind_needs_replace(attached):
    with pytest.raises(ExistingDepth, match="portrait-effects matte"):
        jpeg.attach_auxiliary(attached, [Matte.of("portrait-effects", person())])
    once = jpeg.attach_auxiliary(attached, [Matte.of("portrait-effects", person(seed=5))], replace=True)
    twice = jpeg.attach_auxiliary(once, [Matte.of("portrait-effects", person(seed=5))], replace=True)
    assert len(twice) == len(once) and len(images(twice)) == 2
