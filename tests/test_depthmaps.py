import io
import os
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile
from helpers import depthfiles
from PIL import Image

from gpu_depth import DepthError
from gpu_depth.containers.dng.tiff import TiffFile
from gpu_depth.depthmaps import load_depth_file, load_depth_map


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


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        # IHDR's length field says 4 bytes: Pillow raises ValueError("Truncated IHDR chunk")
        ("ihdr.png", _png(np.zeros((4, 4), np.uint8))[:8] + b"\0\0\0\4IHDR" + _png(np.zeros((4, 4), np.uint8))[16:]),
        ("maxval.pgm", b"P5\n4 4\n1e999\n" + bytes(16)),  # ValueError from int()
        ("token.pgm", b"P5\n4 4\n" + b"9" * 20 + b"\n" + bytes(16)),  # ValueError: token too long
    ],
    ids=["png-ihdr-length", "pgm-maxval", "pgm-long-token"],
)
def test_headers_pillow_rejects_with_value_error_are_depth_errors(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DepthError, match=rf"{name}: cannot decode the depth map"):
        load_depth_map(tmp_path / name)


def test_tiff_with_a_float_width_is_a_depth_error(tmp_path):
    data = bytearray(_tiff(np.zeros((4, 5), np.uint16)))
    tiff = TiffFile(bytes(data))
    (ifd,) = tiff.walk()
    type_at = ifd.offset + 2 + 12 * list(ifd.entries).index(256) + 2
    struct.pack_into("<H", data, type_at, 11)  # a FLOAT ImageWidth: Pillow's ValueError("Invalid dimensions")
    (tmp_path / "zero.tif").write_bytes(bytes(data))
    with pytest.raises(DepthError, match=r"zero\.tif: cannot decode the depth map"):
        load_depth_map(tmp_path / "zero.tif")


def _tiff(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array)
    return buffer.getvalue()


def _npy(header: str, body: bytes = b"") -> bytes:
    """A version 1.0 .npy file with this header dict text, padded as numpy pads it."""
    text = header.encode("latin-1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + body


@pytest.mark.parametrize(
    ("header", "body", "message"),
    [
        # numpy's header tokenizer raises tokenize.TokenError on an unclosed bracket
        ("{'descr': '<u2', 'fortran_order': False, 'shape': (4, 4", bytes(32), "not a valid .npy array"),
        # np.load would allocate 256 GiB for this shape before finding the data missing
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (262144, 262144), }", bytes(32), "exceeds the"),
        ("{'descr': '<u2', 'fortran_order': False, 'shape': (40, 40), }", bytes(32), "needs 3200"),
        ("{'descr': '<u2', 'fortran_order': False, 'shape': (4, 4, 3), }", bytes(96), "got shape"),
        ("{'descr': '|O', 'fortran_order': False, 'shape': (2, 2), }", bytes(32), "unsupported .npy dtype"),
    ],
    ids=["unclosed-header", "huge-shape", "truncated-data", "3-d", "object"],
)
def test_npy_headers_are_checked_before_allocating(tmp_path, header, body, message):
    (tmp_path / "map.npy").write_bytes(_npy(header, body))
    with pytest.raises(DepthError, match=message):
        load_depth_map(tmp_path / "map.npy")


def test_fortran_ordered_npy_keeps_its_values(tmp_path):
    array = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    np.save(tmp_path / "map.npy", array)
    assert np.array_equal(load_depth_map(tmp_path / "map.npy"), array)


def test_tiff_whose_strips_do_not_cover_its_size_is_refused(tmp_path):
    """ImageLength raised from 4 to 100000 rows: Pillow would return 99996 rows of zeros as a valid map."""
    data = bytearray(_tiff(np.ones((4, 5), np.uint16)))
    (ifd,) = TiffFile(bytes(data)).walk()
    struct.pack_into("<I", data, ifd.offset + 2 + 12 * list(ifd.entries).index(257) + 8, 100_000)
    (tmp_path / "tall.tif").write_bytes(bytes(data))
    with pytest.raises(DepthError, match=r"tall\.tif: the 5x100000 image's strips cover only 20 pixels"):
        load_depth_map(tmp_path / "tall.tif")


@pytest.mark.parametrize(("type_", "value"), [(5, 8), (2, 0x00414141), (4, 1 << 30)], ids=["rational", "ascii", "far"])
def test_tiff_strip_offsets_must_be_integers_inside_the_file(tmp_path, type_, value):
    """StripOffsets as RATIONAL or ASCII made Pillow raise TypeError on load (fuzz finding)."""
    data = bytearray(_tiff(np.ones((4, 5), np.uint16)))
    (ifd,) = TiffFile(bytes(data)).walk()
    at = ifd.offset + 2 + 12 * list(ifd.entries).index(273)
    struct.pack_into("<HII", data, at + 2, type_, 1 if type_ != 2 else 4, value)
    (tmp_path / "strip.tif").write_bytes(bytes(data))
    with pytest.raises(DepthError, match=r"strip\.tif: image data offset .* is outside the \d+-byte file"):
        load_depth_map(tmp_path / "strip.tif")


# ---- formats datasets and depth models ship (issue 21) and what may open (issue 16) -------------------------

RAMP = np.linspace(0.5, 9.5, 12, dtype=np.float32).reshape(3, 4)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("depthpro.npz", depthfiles.npz(depth=RAMP, focallength_px=np.float32(1200))),
        ("only.npz", depthfiles.npz(prediction=RAMP)),
        ("middlebury.pfm", depthfiles.pfm(RAMP)),
        ("big-endian.pfm", depthfiles.pfm(RAMP, little_endian=False)),
        ("sintel.dpt", depthfiles.dpt(RAMP)),
        ("model.exr", None),
        ("rgb.exr", None),
    ],
)
def test_dataset_float_formats_load_exactly(tmp_path, name, data):
    if name.endswith(".exr"):
        pytest.importorskip("OpenEXR")
        channels = {"Z": RAMP} if name == "model.exr" else {"R": RAMP, "G": RAMP * 0, "B": RAMP * 0}
        data = depthfiles.exr(channels)
    (tmp_path / name).write_bytes(data)
    loaded = load_depth_map(tmp_path / name)
    assert loaded.dtype == np.float32 and np.array_equal(loaded, RAMP)  # PFM rows come back top to bottom


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("eps.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n", "looks like a PostScript/EPS file, not a"),
        ("photo.png", b"\xff\xd8\xff\xe0" + bytes(64), "looks like a JPEG image, not a depth map format"),
        ("noise.tif", b"\x00\x01garbage", r"its first bytes are b'\\x00\\x01garbag', not a depth map format"),
        ("colour.pfm", b"PF\n2 2\n-1\n" + bytes(48), "looks like a colour PFM"),
        ("two.npz", depthfiles.npz(a=RAMP, b=RAMP), "the .npz holds a, b: name the depth array 'depth'"),
        ("short.dpt", depthfiles.dpt(RAMP)[:40], "floats need 48 bytes, the file holds 28"),
        ("flat.pfm", b"Pf\n4 3\n0\n" + bytes(48), "scale is 0"),
        ("broken.png", b"\x89PNG\r\n\x1a\n" + bytes(30), "cannot decode the depth map as PNG"),
        ("broken.npz", b"PK\x03\x04" + bytes(30), "not a valid .npz archive"),
    ],
)
def test_maps_are_opened_by_content_and_refused_in_plain_words(tmp_path, name, data, message):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DepthError, match=message) as info:
        load_depth_map(tmp_path / name)
    assert " at 0x" not in str(info.value) and "\n" not in str(info.value)


def test_npz_member_that_inflates_past_the_limit_is_refused(tmp_path):
    huge = io.BytesIO()
    np.save(huge, np.zeros((100, 100), np.float64))
    (tmp_path / "bomb.npz").write_bytes(depthfiles.zip_member("depth.npy", huge.getvalue()))
    with pytest.raises(DepthError, match="exceeds the 100-pixel limit"):
        load_depth_map(tmp_path / "bomb.npz", max_pixels=100)


def test_multi_page_tiff_is_refused_not_read_as_page_one(tmp_path):
    pages = [Image.fromarray(RAMP, mode="F"), Image.fromarray(RAMP * 2, mode="F")]
    pages[0].save(tmp_path / "pages.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(DepthError, match="holds 2 pages or frames; a depth map is one"):
        load_depth_map(tmp_path / "pages.tif")


def test_devices_and_fifos_are_refused_without_reading(tmp_path):
    os.mkfifo(tmp_path / "fifo.png")  # no writer: opening it for reading would block
    outcome = {}

    def load(path):
        try:
            load_depth_map(path)
        except DepthError as exc:
            outcome[path] = str(exc)

    for path in (Path("/dev/zero"), tmp_path / "fifo.png"):
        reader = threading.Thread(target=load, args=(path,), daemon=True)
        reader.start()
        reader.join(60)
        assert outcome.get(path, "").endswith("not a regular file"), path


def test_npz_intrinsics_keys(tmp_path):
    K = np.array([[600.0, 0, 320], [0, 601, 240], [0, 0, 1]])
    for name, arrays, expected in (
        ("k.npz", {"depth": RAMP, "K": K}, (600.0, 601.0, 320.0, 240.0)),
        ("four.npz", {"prediction": RAMP, "intrinsics": np.array([5.0, 6, 7, 8])}, (5.0, 6.0, 7.0, 8.0)),
        ("none.npz", {"depth": RAMP}, None),
    ):
        (tmp_path / name).write_bytes(depthfiles.npz(**arrays))
        array, intrinsics = load_depth_file(tmp_path / name)
        assert np.array_equal(array, RAMP) and intrinsics == expected
    (tmp_path / "bad.npz").write_bytes(depthfiles.npz(depth=RAMP, K=np.eye(2)))
    with pytest.raises(DepthError, match=r"K has shape \(2, 2\); expected K 3x3"):
        load_depth_file(tmp_path / "bad.npz")
