"""The one configurable decompression-bomb limit, applied by every reader before it decodes."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tifffile
from helpers import ROOT
from PIL import Image

import gpu_depth
from gpu_depth import DepthData, DepthError, limits
from gpu_depth.containers.dng import plugin as dng
from gpu_depth.containers.dng.tiff import TiffFile
from gpu_depth.containers.heic import isobmff
from gpu_depth.containers.heic import plugin as heic
from gpu_depth.containers.jpeg import gdepth
from gpu_depth.containers.jpeg import plugin as jpeg
from gpu_depth.core.xmp import parse_depth_xmp
from gpu_depth.depthmaps import load_depth_map


def depth(shape=(24, 32)) -> DepthData:
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    return DepthData.from_array(0.2 + x / shape[1] + y / shape[0], "hdis")


def photo(format_: str) -> bytes:
    image = Image.fromarray(np.full((32, 48, 3), 128, np.uint8))
    if format_ == "heic":
        return heic.encode_photo(image, quality=50, encoder_preset="ultrafast")
    return jpeg.encode_photo(image, quality=80)


@pytest.fixture
def small_limit(monkeypatch):
    """A pixel limit below the 24x32 maps the tests attach (768 pixels)."""
    monkeypatch.setattr(limits, "MAX_PIXELS", 700)


def test_defaults_and_environment(monkeypatch):
    monkeypatch.delenv("GPU_DEPTH_MAX_PIXELS", raising=False)
    assert limits.max_pixels() == limits.DEFAULT_MAX_PIXELS
    monkeypatch.setenv("GPU_DEPTH_MAX_PIXELS", "0x1000")
    assert limits.max_pixels() == 4096
    monkeypatch.setattr(limits, "MAX_PIXELS", 99)
    assert limits.max_pixels() == 99
    monkeypatch.setattr(limits, "MAX_PIXELS", None)
    monkeypatch.setenv("GPU_DEPTH_MAX_PIXELS", "lots")
    with pytest.raises(DepthError, match="GPU_DEPTH_MAX_PIXELS='lots' is not an integer"):
        limits.max_pixels()
    monkeypatch.setenv("GPU_DEPTH_MAX_PIXELS", "-5")
    with pytest.raises(DepthError, match="must be a positive integer"):
        limits.max_pixels()


def test_heic_depth_item_is_refused_before_decoding(small_limit):
    """The ispe of the 32x24 map (768 pixels), read before any of it is decoded."""
    attached = heic.attach_depth(photo("heic"), depth())
    with pytest.raises(DepthError, match=r"depth item \d+ of 32x24 exceeds the 700-pixel limit"):
        heic.read_depth(attached)


def test_heic_depth_item_without_ispe_is_refused():
    attached = bytearray(heic.attach_depth(photo("heic"), depth()))
    meta = isobmff.parse_file(bytes(attached)).meta
    depth_id = heic.find_depth_item(meta)
    ispe = next(raw for kind, raw, _ in meta.item_properties(depth_id) if kind == "ispe")
    at = bytes(attached).rindex(ispe)  # the depth item's own, added after the photo's
    attached[at + 4 : at + 8] = b"xxxx"  # the property is no longer an ispe
    with pytest.raises(DepthError, match=rf"item {depth_id} has no ispe"):
        heic.read_depth(bytes(attached))


@pytest.mark.parametrize(
    ("coding", "message"),
    [
        ("baseline", r"depth image at offset \d+ of 32x24 exceeds the 700-pixel limit"),
        ("lossless", r"lossless JPEG at offset \d+: SOF3 at offset \d+ of 32x24 exceeds the 700-pixel limit"),
    ],
)
def test_jpeg_mpf_depth_image(small_limit, coding, message):
    with pytest.raises(DepthError, match=message):
        jpeg.read_depth(jpeg.attach_depth(photo("jpeg"), depth(), coding=coding))


def test_gdepth_image(small_limit):
    attached = jpeg.attach_depth(photo("jpeg"), depth(), gdepth=True)
    primary = jpeg.parse_jpeg(attached)
    with pytest.raises(DepthError, match="GDepth image of 32x24 exceeds the 700-pixel limit"):
        gdepth.read(attached, primary)


def test_dng_depth_ifd(small_limit):
    from helpers.dng import make_dng

    with pytest.raises(DepthError, match="depth map of 32x24 exceeds the 700-pixel limit"):
        dng.read_depth(dng.attach_depth(make_dng(), depth().converting("fdep")))


def test_depth_map_files(small_limit, tmp_path):
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(tmp_path / "map.png")
    with pytest.raises(DepthError, match="exceeds the 700-pixel limit"):
        load_depth_map(tmp_path / "map.png")


def test_xmp_packets(monkeypatch):
    monkeypatch.setattr(limits, "MAX_XMP_BYTES", 100)
    with pytest.raises(DepthError, match="XMP packet of 101 bytes exceeds the 100-byte limit"):
        parse_depth_xmp(b"<x/>" + b" " * 96 + b"x")


def test_the_limit_itself_is_allowed():
    limits.check_pixels(32, 24, "map", limit=768)
    with pytest.raises(DepthError, match="map has no pixels"):
        limits.check_pixels(0, 24, "map")


def test_heic_xmp_item_is_capped_before_it_is_copied(monkeypatch):
    attached = heic.attach_depth(photo("heic"), depth())
    monkeypatch.setattr(limits, "MAX_XMP_BYTES", 100)
    with pytest.raises(DepthError, match=r"iloc: item \d+ is larger than 100 bytes"):
        heic.read_depth(attached)


def test_a_photo_pillow_refuses_as_a_bomb_is_a_depth_error(tmp_path):
    """A PNG whose IHDR claims 20000x10000: Pillow's DecompressionBombError leaked from attach_depth."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    struct.pack_into(">II", data, 16, 20000, 10000)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    (tmp_path / "huge.png").write_bytes(bytes(data))
    with pytest.raises(DepthError, match=r"huge\.png: cannot decode the photo: Image size \(200000000 pixels\)"):
        gpu_depth.attach_depth(tmp_path / "huge.png", depth(), tmp_path / "out.jpg")
    assert not (tmp_path / "out.jpg").exists()


def test_a_tiff_photo_with_a_rational_strip_offset_is_a_depth_error(tmp_path):
    """The loaders' TypeError finding, in the photo decoder attach_depth uses to convert PNG/TIFF photos."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((4, 5, 3), np.uint8), photometric="rgb")
    data = bytearray(buffer.getvalue())
    (ifd,) = TiffFile(bytes(data)).walk()
    struct.pack_into("<HII", data, ifd.offset + 2 + 12 * list(ifd.entries).index(273) + 2, 5, 1, 8)
    (tmp_path / "photo.tif").write_bytes(bytes(data))
    with pytest.raises(DepthError, match=r"photo\.tif: cannot decode the photo: image data offset .* is outside"):
        gpu_depth.attach_depth(tmp_path / "photo.tif", depth(), tmp_path / "out.jpg")
    assert not (tmp_path / "out.jpg").exists()


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp", ".heic"])
def test_photos_of_every_format_still_convert(tmp_path, suffix):
    image = Image.fromarray(np.full((18, 24, 3), 90, np.uint8))  # the depth map's 4:3
    if suffix == ".heic":
        (tmp_path / "photo.heic").write_bytes(heic.encode_photo(image, quality=50, encoder_preset="ultrafast"))
    else:
        image.save(tmp_path / f"photo{suffix}")
    out = gpu_depth.attach_depth(tmp_path / f"photo{suffix}", depth(), tmp_path / "out.jpg")
    assert gpu_depth.read_depth(out) is not None


def _nal_length(heic: bytes, length: int) -> bytes:
    """The HEIC with the first NAL unit of its primary item claiming ``length`` bytes."""
    meta = isobmff.parse_file(heic).meta
    at = meta.locations[meta.primary].extents[0].offset
    return heic[:at] + struct.pack(">I", length) + heic[at + 4 :]


def _photo_file(tmp_path, suffix: str) -> bytes:
    image = Image.fromarray(np.full((16, 24, 3), 90, np.uint8))
    if suffix == ".heic":
        return heic.encode_photo(image, quality=50, encoder_preset="ultrafast")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("suffix", "edit", "error"),
    [
        (".png", lambda d: d[:33] + b"\0\0\0\x04" + d[37:], "broken PNG file"),  # SyntaxError
        (".heic", lambda d: _nal_length(d, 1000), "Unexpected end of file"),  # EOFError from pillow-heif
    ],
    ids=["png-syntax-error", "heic-eof-error"],
)
def test_photos_pillow_cannot_decode_are_depth_errors(tmp_path, suffix, edit, error):
    """Found by bench/fuzz.py's photo reader: these leaked from attach_depth's photo conversion."""
    (tmp_path / f"photo{suffix}").write_bytes(edit(_photo_file(tmp_path, suffix)))
    with pytest.raises(DepthError, match=rf"photo\{suffix}: cannot decode the photo: .*{error}"):
        gpu_depth.attach_depth(tmp_path / f"photo{suffix}", depth(), tmp_path / "out.jpg")


def test_a_png_photo_whose_idat_claims_4_gib_is_not_allocated(tmp_path):
    """Pillow read the IDAT's claimed 4 GiB from a file object, which allocates it first: MemoryError
    under a 1 GiB address-space limit (fuzz photo reader).  From bytes in memory the read is bounded."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    struct.pack_into(">I", data, 33, 0xFFFFFFFE)  # the IDAT chunk's length
    (tmp_path / "photo.png").write_bytes(bytes(data))
    script = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from gpu_depth import DepthError, api\n"
        "try:\n    api.decode_photo(sys.argv[1])\nexcept DepthError as exc:\n    print('DepthError', exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "photo.png")], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-500:]
