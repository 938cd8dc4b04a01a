"""GDepth in Extended XMP: written by us and read by exiftool, written by exiftool and read by us."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import struct
import subprocess
import warnings

import numpy as np
import pytest
from helpers import tool
from helpers.jpeg import exiftool_binary, exiftool_json, exiftool_json_bytes, make_photo, smooth_depth
from PIL import Image

import gpu_depth
from gpu_depth import DepthData, DepthError, PixelFormat
from gpu_depth.containers.jpeg import gdepth
from gpu_depth.containers.jpeg import plugin as jpeg
from gpu_depth.containers.jpeg.segments import parse_jpeg

EXTENSION = b"http://ns.adobe.com/xmp/extension/\0"


def normalised(metres: np.ndarray, form: str, near: float, far: float) -> np.ndarray:
    """GDepth's normalised value of depth (Google's depthmap encoding page)."""
    if form == "RangeLinear":
        return (metres - near) / (far - near)
    return far * (metres - near) / (metres * (far - near))


def extension_chunks(data: bytes) -> list[tuple[bytes, int, int, bytes]]:
    """(GUID, full length, offset, chunk) of every Extended XMP APP1 segment, found by byte search."""
    chunks = []
    for match in re.finditer(re.escape(b"\xff\xe1") + b"..", data):
        at = match.start()
        if data[at + 4 : at + 4 + len(EXTENSION)] == EXTENSION:
            end = at + 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
            body = data[at + 4 + len(EXTENSION) : end]
            chunks.append((body[:32], *struct.unpack(">II", body[32:40]), body[40:]))
    return chunks


@pytest.fixture
def written(tmp_path):
    rng = np.random.default_rng(3)  # noise makes a PNG bigger than one APP1 segment
    depth = DepthData.from_array(rng.uniform(0.6, 7.0, (240, 320)), "fdep")
    path = tmp_path / "gdepth.jpg"
    path.write_bytes(jpeg.attach_depth(make_photo(), depth, gdepth=True))
    return depth, path


def test_exiftool_reads_our_gdepth_and_reassembles_the_extended_xmp(written):
    depth, path = written
    tags = exiftool_json(path)
    assert tags["XMP-GDepth:Format"] == "RangeInverse"
    assert tags["XMP-GDepth:Mime"] == "image/png" and tags["XMP-GDepth:Units"] == "m"
    near, far = float(depth.array.min()), float(depth.array.max())
    assert tags["XMP-GDepth:Near"] == pytest.approx(near) and tags["XMP-GDepth:Far"] == pytest.approx(far)
    chunks = extension_chunks(path.read_bytes())
    assert len(chunks) >= 2
    packet = b"".join(chunk for *_, chunk in sorted(chunks, key=lambda c: c[2]))
    assert {(guid, total) for guid, total, *_ in chunks} == {(tags["XMP-xmpNote:HasExtendedXMP"].encode(), len(packet))}
    assert tags["XMP-xmpNote:HasExtendedXMP"] == hashlib.md5(packet).hexdigest().upper()
    png = exiftool_binary(path, "DepthImage")  # only in the Extended XMP: exiftool reassembled it
    codes = np.asarray(Image.open(io.BytesIO(png))).astype(np.float64)
    expected = np.rint(normalised(depth.array.astype(np.float64), "RangeInverse", near, far) * 65535)
    np.testing.assert_array_equal(codes, expected)
    validate = ("-validate", "-warning", "-a")
    assert exiftool_json(path, *validate) == {
        **exiftool_json_bytes(make_photo(), path.parent, *validate),
        "SourceFile": str(path),
    }


def test_the_primary_keeps_its_coded_data(written):
    _, path = written
    photo, out = make_photo(), path.read_bytes()
    scan = photo.find(b"\xff\xdb")  # everything from the quantisation tables on is kept
    assert out.find(photo[scan:]) > 0
    assert jpeg.read_depth(out).pixel_format is PixelFormat.FDEP  # Apple's MPF depth wins over GDepth
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Image.open(path) as image:
            assert image.n_frames == 2


@pytest.mark.parametrize("form", ["RangeInverse", "RangeLinear"])
@pytest.mark.parametrize("bits", [8, 16])
def test_our_reader_gets_the_map_back_within_half_a_code(form, bits):
    depth = smooth_depth("hdis")  # disparity is written as metres
    out = jpeg.attach_depth(make_photo(), depth, gdepth=True, gdepth_format=form, gdepth_bits=bits)
    back = gdepth.read(out, parse_jpeg(out))
    assert back.pixel_format is PixelFormat.FDEP and (back.width, back.height) == (depth.width, depth.height)
    metres = 1.0 / depth.array.astype(np.float64)
    near, far = metres.min(), metres.max()
    error = np.abs(normalised(back.array.astype(np.float64), form, near, far) - normalised(metres, form, near, far))
    assert error.max() <= 0.5 / ((1 << bits) - 1) + 1e-6


def test_we_read_gdepth_that_exiftool_wrote(tmp_path):
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 65536, (200, 240), dtype=np.uint16)
    Image.fromarray(codes).save(tmp_path / "depth.png")
    path = tmp_path / "photo.jpg"
    path.write_bytes(make_photo())
    tags = ["-XMP-GDepth:Format=RangeLinear", "-XMP-GDepth:Near=0.5", "-XMP-GDepth:Far=4", "-XMP-GDepth:Mime=image/png"]
    png = f"-DepthImage<={tmp_path / 'depth.png'}"
    subprocess.run([tool("exiftool"), "-q", "-overwrite_original", *tags, png, str(path)], check=True)
    assert extension_chunks(path.read_bytes())  # exiftool put the data in Extended XMP
    depth = gpu_depth.read_depth(path)  # no MPF depth: the GDepth map is read
    assert depth.pixel_format is PixelFormat.FDEP
    np.testing.assert_allclose(depth.array, 0.5 + codes / 65535 * 3.5, rtol=1e-6)


def test_gdepth_counts_as_depth_and_replace_rewrites_it():
    out = jpeg.attach_depth(make_photo(), smooth_depth("hdep"), gdepth=True)
    with pytest.raises(DepthError, match="already has a depth map"):
        jpeg.attach_depth(out, smooth_depth("hdep"), gdepth=True)
    again = jpeg.attach_depth(out, smooth_depth("hdep"), replace=True, gdepth=True)
    assert again.count(b"GDepth:Format") == 1 and again.count(EXTENSION) == out.count(EXTENSION)
    assert len(jpeg.attach_depth(again, smooth_depth("hdep"), replace=True, gdepth=True)) == len(again)
    plain = jpeg.attach_depth(again, smooth_depth("hdep"), replace=True)
    assert b"GDepth" not in plain and EXTENSION not in plain and b"HasExtendedXMP" not in plain


def test_gdepth_only_photo_counts_as_depth(tmp_path):
    """A Lens Blur photo with Apple depth attached kept its GDepth: two readers saw two maps."""
    photo = make_photo()
    gdepth_only = jpeg._splice(photo, len(photo), gdepth.edit(photo, parse_jpeg(photo), smooth_depth("hdep")))[0]
    assert jpeg.read_depth(gdepth_only).pixel_format.fourcc == "fdep"
    with pytest.raises(DepthError, match=r"already has a depth map \(GDepth in its XMP\)"):
        jpeg.attach_depth(gdepth_only, smooth_depth("hdis"))
    out = jpeg.attach_depth(gdepth_only, smooth_depth("hdis"), replace=True)
    assert b"GDepth" not in out and jpeg.read_depth(out).pixel_format.fourcc == "hdis"


def test_bad_options_are_refused():
    with pytest.raises(DepthError, match="RangeInverse or RangeLinear"):
        jpeg.attach_depth(make_photo(), smooth_depth("hdep"), gdepth=True, gdepth_format="RangeLog")
    with pytest.raises(DepthError, match="8 or 16 bits"):
        jpeg.attach_depth(make_photo(), smooth_depth("hdep"), gdepth=True, gdepth_bits=12)


def test_holes_are_refused_and_zero_disparity_is_far():
    """GDepth has no code for a hole (a NaN once read back as the near end); infinitely far is Far."""
    values = np.array([[np.nan, 1.0], [2.0, 0.5]])
    with pytest.raises(DepthError, match=r"GDepth depth maps cannot hold holes \(1 NaN pixels\)"):
        gdepth.encode(DepthData.from_array(values, "fdis"))
    fields = gdepth.encode(DepthData.from_array(np.array([[0.0, 1.0], [2.0, 0.5]]), "fdis"), "RangeLinear", 8)
    codes = np.asarray(Image.open(io.BytesIO(base64.b64decode(fields["Data"]))))
    assert (float(fields["Near"]), float(fields["Far"])) == (0.5, 2.0) and codes[0, 0] == 255 and codes[1, 0] == 0


def gdepth_jpeg(description: str, extension: bytes = b"") -> bytes:
    """A JPEG whose main XMP holds ``description`` and whose header holds ``extension`` segments."""
    photo = make_photo(32, 24)
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/" '
        f'xmlns:xmpNote="http://ns.adobe.com/xmp/note/" {description}/></rdf:RDF></x:xmpmeta>'
    ).encode()
    app1 = b"http://ns.adobe.com/xap/1.0/\0" + packet
    return photo[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + extension + photo[2:]


def png_base64(codes: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(codes).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def extension_segment(guid: bytes, total: int, offset: int, chunk: bytes) -> bytes:
    body = EXTENSION + guid + struct.pack(">II", total, offset) + chunk
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def test_data_in_the_main_xmp_is_read():
    data = png_base64(np.array([[0, 255]], np.uint8))
    depth = jpeg.read_depth(
        gdepth_jpeg(f'GDepth:Format="RangeInverse" GDepth:Near="1" GDepth:Far="3" GDepth:Data="{data}"')
    )
    np.testing.assert_allclose(depth.array, [[1.0, 3.0]])


def test_a_small_gdepth_cannot_decode_to_a_huge_map(monkeypatch):
    """A 200 KB GDepth PNG of 8000x8000 zeros, within the pixel limit, cost 2 GB: decoding is bounded by the data."""
    data = png_base64(np.zeros((2000, 2000), np.uint16))  # 8 MB of samples in a few kB
    monkeypatch.setattr(gpu_depth.limits, "EXPANSION_ALLOWANCE", 0)  # so that a small image shows the rule
    with pytest.raises(DepthError, match=r"GDepth image of 8000000 bytes from \d+ bytes of data expands more than 64"):
        jpeg.read_depth(gdepth_jpeg(f'GDepth:Format="RangeLinear" GDepth:Near="1" GDepth:Far="3" GDepth:Data="{data}"'))


GUID = b"0123456789ABCDEF0123456789ABCDEF"


@pytest.mark.parametrize(
    ("description", "extension", "message"),
    [
        ('GDepth:Near="1" GDepth:Far="2" GDepth:Data="!!"', b"", "GDepth:Data is not a readable image/jpeg image"),
        ('GDepth:Near="2" GDepth:Far="1" GDepth:Data=""', b"", "Near 2.0 and Far 1.0 are not a usable range"),
        ('GDepth:Near="x" GDepth:Far="1" GDepth:Data=""', b"", "GDepth:Near is missing or not a number"),
        (
            'GDepth:Format="Log" GDepth:Near="1" GDepth:Far="2" GDepth:Data=""',
            b"",
            "neither RangeInverse nor RangeLinear",
        ),
        ('GDepth:Near="1" GDepth:Mime="image/gif" GDepth:Far="2" GDepth:Data=""', b"", "neither image/png"),
        ('GDepth:Near="1" GDepth:Far="2"', b"", r"XMP at offset 2 has no GDepth:Data"),
        ('GDepth:Near="1" xmpNote:HasExtendedXMP="abc"', b"", "is not 32 upper-case hex digits"),
        (f'GDepth:Near="1" xmpNote:HasExtendedXMP="{GUID.decode()}"', b"", "no APP1 segment carries it"),
        (
            f'GDepth:Near="1" xmpNote:HasExtendedXMP="{GUID.decode()}"',
            extension_segment(GUID, 100, 10, b"x" * 20),
            r"segment at offset \d+: chunk at 10 of 100 bytes does not continue at 0",
        ),
        (
            f'GDepth:Near="1" xmpNote:HasExtendedXMP="{GUID.decode()}"',
            extension_segment(GUID, 100, 0, b"x" * 20),
            "chunks hold 20 of its 100 bytes",
        ),
        (
            f'GDepth:Near="1" xmpNote:HasExtendedXMP="{GUID.decode()}"',
            extension_segment(GUID, 1 << 31, 0, b"x"),
            "Extended XMP of 2147483648 bytes exceeds",
        ),
        (
            f'GDepth:Near="1" xmpNote:HasExtendedXMP="{GUID.decode()}"',
            b"\xff\xe1\x00\x25" + EXTENSION,
            r"Extended XMP segment at offset \d+ is shorter than its 75-byte header",
        ),
    ],
)
def test_hostile_gdepth_raises_depth_error(description, extension, message):
    with pytest.raises(DepthError, match=message):
        jpeg.read_depth(gdepth_jpeg(description, extension))
