"""Our HEIC depth judged by independent readers: libheif's heif-info/heif-convert and exiftool."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from helpers import sample, tool
from PIL import Image

from gpu_depth import CameraCalibration, DepthData, DepthMetadata
from gpu_depth.containers.heic import isobmff
from gpu_depth.containers.heic import plugin as heic
from gpu_depth.core.quantize import dequantize, quantize
from gpu_depth.core.xmp import parse_depth_xmp

FAST = {"quality": 60, "enc_params": {"preset": "ultrafast"}}


def photo_bytes(tile_size: int | None = None) -> bytes:
    rng = np.random.default_rng(7)
    image = Image.fromarray(rng.integers(0, 256, (144, 192, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, **FAST, **({"tile_size": tile_size} if tile_size else {}))
    return buffer.getvalue()


def depth_map(fmt: str) -> DepthData:
    y, x = np.mgrid[0:72, 0:96]
    values = 0.5 + 2.0 * x / 96 + 0.25 * np.cos(y / 4.0)
    calibration = CameraCalibration(((800.0, 0, 96), (0, 800.0, 72), (0, 0, 1)), (192, 144), pixel_size=0.0019)
    return DepthData.from_array(values, fmt, metadata=DepthMetadata(calibration=calibration))


@pytest.fixture(scope="module", params=["hdis", "fdep"])
def written(request, tmp_path_factory) -> tuple[Path, DepthData]:
    depth = depth_map(request.param)
    path = tmp_path_factory.mktemp("heic") / f"{request.param}.heic"
    path.write_bytes(heic.attach_depth(photo_bytes(), depth))
    return path, depth


def run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout


def test_heif_info_reports_the_depth_channel(written):
    path, depth = written
    report = run(tool("heif-info"), str(path))
    info = quantize(depth).info
    assert "depth channel: yes" in report
    assert f"({depth.width}x{depth.height})" in report
    if depth.pixel_format.is_disparity:
        assert "representation: uniform disparity" in report
        assert f"d-min:  {info.float_min:.6f}" in report and f"d-max:  {info.float_max:.6f}" in report
    else:
        assert "representation: uniform Z" in report
        assert f"z-near: {info.float_min:.6f}" in report and f"z-far:  {info.float_max:.6f}" in report


def test_heif_convert_depth_png_equals_what_we_read(written, tmp_path):
    path, depth = written
    run(tool("heif-convert"), "--with-aux", "--quiet", str(path), str(tmp_path / "out.png"))
    png = np.asarray(Image.open(tmp_path / "out-depth.png"))
    if png.ndim == 3:
        assert (png == png[..., :1]).all()  # gray written as RGB
        png = png[..., 0]
    assert np.array_equal(png, quantize(depth).pixels)  # stored losslessly
    parsed = isobmff.parse_file(path.read_bytes())
    xmp_id = heic.xmp_item(parsed.meta, heic.find_depth_item(parsed.meta))
    info, metadata = parse_depth_xmp(isobmff.item_data(parsed, xmp_id))
    assert dequantize(png, info, metadata) == heic.read_depth(path.read_bytes())


def test_exiftool_validates_and_reads_the_depth_xmp(written):
    path, depth = written
    exiftool = tool("exiftool")
    assert json.loads(run(exiftool, "-j", "-validate", "-warning", "-error", "-a", str(path)))[0]["Validate"] == "OK"
    tags = json.loads(run(exiftool, "-j", "-n", "-a", "-G3:1", "-ee", "-XMP-apdi:all", "-XMP-depthData:all", str(path)))
    values = {key.split(":")[-1]: value for key, value in tags[0].items()}
    info = quantize(depth).info
    assert values["AuxiliaryImageType"] == depth.pixel_format.quantity
    assert values["NativeFormat"] in (depth.pixel_format.code, depth.pixel_format.fourcc)
    assert values["StoredFormat"] in (info.stored_format, "L008")
    assert (values["IntMinValue"], values["IntMaxValue"]) == (0, 255)
    assert (values["FloatMinValue"], values["FloatMaxValue"]) == (info.float_min, info.float_max)
    assert (values["Accuracy"], values["Filtered"], values["Quality"]) == ("relative", False, "low")
    assert (values["PortraitScore"], values["PortraitScoreIsHigh"]) == (0, False)
    assert "DepthDataVersion" not in values  # as macOS ImageIO writes a custom map


def test_exiftool_validates_a_grid_photo_with_depth(tmp_path):
    path = tmp_path / "grid.heic"
    data = photo_bytes(tile_size=64)
    assert isobmff.parse_file(data).meta.item(isobmff.parse_file(data).meta.primary).item_type == "grid"
    path.write_bytes(heic.attach_depth(data, depth_map("hdis")))
    report = json.loads(run(tool("exiftool"), "-j", "-validate", "-warning", "-error", "-a", str(path)))[0]
    assert report["Validate"] == "OK"


def test_exiftool_finds_no_new_warning_in_a_rewritten_iphone_file(tmp_path):
    source = sample("iphone13pro-pug.heic")
    path = tmp_path / "pug.heic"
    path.write_bytes(heic.attach_depth(source.read_bytes(), depth_map("hdis"), replace=True))
    exiftool = tool("exiftool")

    def warnings(file: Path) -> list[str]:
        report = json.loads(run(exiftool, "-j", "-validate", "-warning", "-error", "-a", str(file)))[0]
        found = report.get("Warning", [])
        return sorted(found if isinstance(found, list) else [found])

    # Apple's own file has two auxl references (gain map and depth), which exiftool flags
    assert warnings(path) == warnings(source)


def test_pillow_heif_opens_a_photo_with_a_jpeg_depth_item_and_lists_the_16_bit_map(tmp_path):
    """libheif 1.23 (pillow-heif's) opens the photo, decodes its primary as before and lists the jpeg depth item
    as a 16-bit depth image; its wheels have no JPEG decoder, so the map itself is decoded by libjpeg-turbo
    (tests/containers/heic/test_heic.py).  Debian's libheif 1.15 refuses such a file (see README)."""
    photo, depth = photo_bytes(), depth_map("hdis")
    path = tmp_path / "jpeg-depth.heic"
    path.write_bytes(heic.attach_depth(photo, depth, depth_codec="jpeg"))
    image = pillow_heif.open_heif(path, convert_hdr_to_8bit=False)
    assert np.array_equal(np.asarray(image), np.asarray(pillow_heif.open_heif(io.BytesIO(photo))))
    (listed,) = image.info["depth_images"]
    assert (listed.size, listed.mode) == ((depth.width, depth.height), "I;16")
