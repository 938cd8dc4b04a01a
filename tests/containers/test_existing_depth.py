"""What a photo already carries beside its pixels (other aux images, old depth, a stereo pair, the
primary's own tables) is kept or replaced as a user expects (issue 15)."""

from __future__ import annotations

import re
import struct
import subprocess
import sys

import numpy as np
import pillow_heif
import pytest
from helpers import sample, tool
from helpers.jpeg import exiftool_binary, exiftool_json, make_photo, smooth_depth
from PIL import Image

import gpu_depth
import gpu_depth.core.xmp
import gpu_depth.verify
from gpu_depth import DepthError, DepthMetadata
from gpu_depth.containers.heic import isobmff
from gpu_depth.containers.heic import plugin as heic
from gpu_depth.containers.jpeg import gdepth, mpf
from gpu_depth.containers.jpeg import plugin as jpeg
from gpu_depth.containers.jpeg.segments import APP2, segment
from gpu_depth.core.mapping import DepthMapping
from gpu_depth.verify import verify_bytes

GAIN_MAP = b"urn:com:apple:photo:2020:aux:hdrgainmap"


def with_depth_xmp(edit) -> bytes:
    """Our JPEG with its one MP image's XMP packet passed through ``edit`` (segment length and MP index fixed)."""
    data = jpeg.attach_depth(make_photo(64, 48), smooth_depth("hdis", 16, 12))
    index = jpeg.mp_index(data, jpeg.parse_jpeg(data))
    (image,) = index.images
    old = data[image.start : image.end]
    new = edit(old)
    new = new[:4] + struct.pack(">H", struct.unpack_from(">H", new, 4)[0] + len(new) - len(old)) + new[6:]
    entries = [mpf.Entry(mpf.PRIMARY_TYPE, image.start, 0), mpf.Entry(0, len(new), image.entry.offset)]
    head = (
        data[: index.segment.offset] + segment(APP2, mpf.build_index(entries)) + data[index.segment.end : image.start]
    )
    return head + new


def with_gain_map() -> bytes:
    """A JPEG whose one MP image is an HDR gain map whose XMP has apdi:AuxiliaryImageType but no
    NativeFormat, as iOS 17.2 writes it."""
    return with_depth_xmp(
        lambda xmp: re.sub(
            rb"<apdi:NativeFormat>[^<]*</apdi:NativeFormat>\s*",
            b"",
            xmp.replace(b">disparity<", b">" + GAIN_MAP + b"<"),
        )
    )


def test_verify_takes_imageio_metadata_as_apple_output():
    """ImageIO writes no DepthDataVersion for a custom map: that was a warning."""
    imageio = with_depth_xmp(
        lambda xmp: (
            re.sub(rb"<depthData:DepthDataVersion>[^<]*</depthData:DepthDataVersion>\s*", b"", xmp)
            .replace(b">True</depthData:Filtered>", b">False</depthData:Filtered>")
            .replace(
                b"</depthData:Quality>",
                b"</depthData:Quality><depthData:PortraitScoreIsHigh>False</depthData:PortraitScoreIsHigh>",
            )
        )
    )
    findings = verify_bytes(imageio)
    assert [f.rule for f in findings if f.severity != "info"] == []
    assert any(f.rule == "jpeg.xmp-metadata" and "DepthDataVersion" in f.message for f in findings)
    (portrait,) = [f for f in findings if f.rule == "jpeg.portrait"]
    assert "depthData:PortraitScoreIsHigh False" in portrait.message


def test_an_aux_image_that_is_not_depth_is_kept_and_skipped():
    """``XMP: apdi:NativeFormat is not a number: None`` broke read, inspect, attach and convert."""
    photo = with_gain_map()
    assert jpeg.read_depth(photo) is None
    out = jpeg.attach_depth(photo, smooth_depth("hdep", 16, 12))  # not depth: no replace needed
    gain = jpeg.mp_index(photo, jpeg.parse_jpeg(photo)).images[0]
    images = jpeg.mp_index(out, jpeg.parse_jpeg(out)).images
    assert len(images) == 2 and jpeg.read_depth(out).pixel_format.fourcc == "hdep"
    count = struct.pack(">HHII", mpf.NUMBER_OF_IMAGES, 4, 1, 2)
    kept = photo[gain.start : gain.end].replace(count, count[:-1] + b"\3")  # its own MPF follows the index
    assert out[images[0].start : images[0].end] == kept


def test_secondaries_own_number_of_images_follows_the_index(tmp_path):
    """Our own verify warned jpeg.mpf-count on our output over an iPhone gain map."""
    out = jpeg.attach_depth(with_gain_map(), smooth_depth("hdep", 16, 12))
    assert [f.rule for f in verify_bytes(out) if f.severity != "info"] == []
    (tmp_path / "out.jpg").write_bytes(out)
    (tmp_path / "gain.jpg").write_bytes(exiftool_binary(tmp_path / "out.jpg", "MPImage2"))
    assert exiftool_json(tmp_path / "gain.jpg")["MPF0:NumberOfImages"] == 3


def stereo_mpo() -> bytes:
    """Two frames with MP Attribute IFDs (MPIndividualNum 1 and 2), as stereo cameras write them."""
    frames = [make_photo(64, 48), make_photo(64, 48, subsampling=0)]
    attribute = lambda n: [(0xB000, 7, 4, b"0100"), (0xB101, 4, 1, struct.pack(">I", n))]  # noqa: E731
    second = (
        frames[1][:2]
        + segment(APP2, b"MPF\0" + mpf._ifd([], 8)[:8] + mpf._attribute_ifd(attribute(2), 8))
        + frames[1][2:]
    )
    first = jpeg.parse_jpeg(frames[0])
    at = first.after_leading_apps()
    size = 4 + mpf.index_size(2, attribute(1))
    offset = len(frames[0]) + size - (at + 8)  # MP offsets count from the TIFF header after "MPF\0"
    entries = [mpf.Entry(0x20020002, len(frames[0]) + size, 0), mpf.Entry(0x020002, len(second), offset)]
    return frames[0][:at] + segment(APP2, mpf.build_index(entries, attribute(1))) + frames[0][at:] + second


def test_a_stereo_mpo_gets_the_depth_as_one_more_image(tmp_path):
    """Stereo MPOs (MP Attribute IFDs) were refused."""
    mpo = stereo_mpo()
    (tmp_path / "in.mpo").write_bytes(mpo)
    before = exiftool_json(tmp_path / "in.mpo")
    assert before["MPF0:NumberOfImages"] == 2 and before["MPF0:MPIndividualNum"] == 1
    out = jpeg.attach_depth(mpo, smooth_depth("hdis", 16, 12))
    (tmp_path / "out.jpg").write_bytes(out)
    after = exiftool_json(tmp_path / "out.jpg")
    assert after["MPF0:NumberOfImages"] == 3 and after["MPF0:MPIndividualNum"] == 1
    assert exiftool_binary(tmp_path / "out.jpg", "MPImage2") == exiftool_binary(tmp_path / "in.mpo", "MPImage2")
    assert jpeg.read_depth(out) is not None
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.jpg")), np.asarray(Image.open(tmp_path / "in.mpo")))


def test_replace_never_removes_the_primary():
    """Issue 16 point 10: a primary that itself says depth (an auxC depth URN) went with replace=True."""
    first = heic.attach_depth(
        heic.encode_photo(Image.new("RGB", (64, 48), "gray"), quality=50, encoder_preset="ultrafast"),
        smooth_depth("hdis", 16, 12),
    )
    parsed = isobmff.parse_file(first)
    meta = parsed.meta
    depth_id = heic.find_depth_item(meta)
    auxc = meta.first_property(depth_id, "auxC")[0]
    meta.associations[meta.primary] = [*meta.associations[meta.primary], (auxc, True)]
    hostile = isobmff.rebuild(parsed, meta)
    out = heic.attach_depth(hostile, smooth_depth("hdis", 16, 12), replace=True)
    after = isobmff.parse_file(out).meta
    assert after.primary == meta.primary and after.item(meta.primary) is not None
    assert pillow_heif.open_heif(out).size == (64, 48)


def test_attaching_across_containers_follows_the_existing_depth_rule(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg.attach_depth(make_photo(64, 48), smooth_depth("hdis", 16, 12)))
    with pytest.raises(DepthError, match=r"already has depth, which its heic copy would drop; pass replace=True"):
        gpu_depth.attach_depth(photo, smooth_depth("hdis", 12, 16), tmp_path / "out.heic", orientation="displayed")
    out = gpu_depth.attach_depth(
        photo, smooth_depth("hdis", 12, 16), tmp_path / "out.heic", orientation="displayed", replace=True
    )
    assert len(pillow_heif.open_heif(out).info["depth_images"]) == 1


def test_api_and_cli_give_the_same_file_on_a_rotated_photo(tmp_path):
    """The API stored a displayed-orientation map unturned on an Exif-6 photo; the CLI turned it."""
    (tmp_path / "photo.jpg").write_bytes(make_photo(64, 48))  # stored 64x48, Exif 6: shown 48x64
    gray = np.linspace(0, 255, 12 * 16).reshape(16, 12).astype(np.uint8)  # as shown
    Image.fromarray(gray).save(tmp_path / "map.png")
    cli = [sys.executable, "-m", "gpu_depth", "convert", "--photo", str(tmp_path / "photo.jpg"), "--depth"]
    cli += [str(tmp_path / "map.png"), "--out", str(tmp_path / "cli"), "--near", "0.5", "--far", "5", "--quiet"]
    cli += ["--depth-size", "native"]  # as the API stores it
    subprocess.run(cli, check=True, capture_output=True)
    depth = gpu_depth.convert(gray, "hdis", DepthMapping("apple-gray", 0.5, 5.0))
    with pytest.raises(
        DepthError,
        match=r"12x16 depth map .* stored 64x48 \(it fits the displayed photo: pass orientation='displayed'\)",
    ):
        gpu_depth.attach_depth(tmp_path / "photo.jpg", depth, tmp_path / "api.jpg")
    api = gpu_depth.attach_depth(tmp_path / "photo.jpg", depth, tmp_path / "api.jpg", orientation="displayed")
    assert api.read_bytes() == (tmp_path / "cli" / "photo.jpg").read_bytes()
    stored = gpu_depth.read_depth(api)
    assert (stored.width, stored.height) == (16, 12)
    again = gpu_depth.attach_depth(api, stored, tmp_path / "again.jpg", replace=True)  # read → attach: the same map
    assert np.array_equal(gpu_depth.read_depth(again).array, stored.array, equal_nan=True)


def test_heif_info_accepts_a_replaced_file(tmp_path):
    photo = heic.encode_photo(Image.new("RGB", (64, 48), "gray"), quality=50, encoder_preset="ultrafast")
    once = heic.attach_depth(photo, smooth_depth("hdis", 16, 12))
    twice = heic.attach_depth(once, smooth_depth("hdis", 16, 12), replace=True)
    assert len(twice) - len(once) in range(-64, 65)
    assert [b.type for b in isobmff.parse_file(twice).boxes].count("mdat") == 1
    (tmp_path / "twice.heic").write_bytes(twice)
    info = subprocess.run([tool("heif-info"), str(tmp_path / "twice.heic")], capture_output=True, text=True, check=True)
    assert info.stdout.count("depth channel: yes") == 1 and "uniform disparity" in info.stdout


def test_gdepth_reads_say_only_what_the_file_says():
    """Lens Blur holds no Units, Accuracy, Filtered, Quality or DepthDataVersion: those read as unknown."""
    lens_blur = gpu_depth.read_depth(sample("motorola-lensblur-gdepth.jpg"))
    assert lens_blur.metadata == DepthMetadata()
    assert lens_blur.metadata.for_writing("iphone").version == 85538  # the profiles apply when writing only
    photo = make_photo(64, 48)
    ours = jpeg._splice(photo, len(photo), gdepth.edit(photo, jpeg.parse_jpeg(photo), smooth_depth("hdep", 16, 12)))[0]
    assert jpeg.read_depth(ours).metadata == DepthMetadata(accuracy="absolute")  # GDepth:Units m


def test_portrait_signals_are_read_and_written_back(tmp_path):
    """Re-depthing an iPhone 14 Portrait dropped its depthData:PortraitScore/PortraitScoreIsHigh."""
    path = sample("iphone14-front-mattes.heic")
    depth = gpu_depth.read_depth(path)
    assert (depth.metadata.portrait_score, depth.metadata.portrait_score_is_high) == (0.978223, True)
    out = gpu_depth.attach_depth(path, depth, tmp_path / "out.heic", replace=True)
    tags = exiftool_json(out)
    assert (tags["XMP-depthData:PortraitScore"], tags["XMP-depthData:PortraitScoreIsHigh"]) == (0.978223, True)
    (portrait,) = [f for f in gpu_depth.verify.verify(out) if f.rule == "heic.portrait"]
    assert "PortraitScoreIsHigh True" in portrait.message
    assert b"PortraitScore" not in gpu_depth.core.xmp.build_metadata_xmp(DepthMetadata())  # only when set
