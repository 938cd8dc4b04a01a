"""JPEG container: Apple depth as an MPF secondary image, checked by exiftool, Pillow and the iPhone X sample."""

from __future__ import annotations

import io
import re
import struct
import warnings

import imagecodecs
import numpy as np
import pytest
import tifffile
from helpers import sample
from helpers.jpeg import exiftool_binary, exiftool_json, exiftool_json_bytes, make_photo, smooth_depth
from helpers.verify import problems
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageOps, JpegImagePlugin

import gpu_depth
from gpu_depth import DepthData, DepthError, DepthMetadata, PixelFormat
from gpu_depth.containers.dng.tiff import TiffFile
from gpu_depth.containers.jpeg import plugin as jpeg
from gpu_depth.containers.jpeg import segments
from gpu_depth.core.formats import StoredFormat
from gpu_depth.core.mapping import round_to_format
from gpu_depth.core.quantize import quantize
from gpu_depth.verify import verify_bytes


def app2_mpf(data: bytes) -> tuple[int, int]:
    """Offset and total size of the first APP2 MPF segment, found by a plain byte search."""
    at = data.find(b"\xff\xe2\x00")
    while at >= 0 and data[at + 4 : at + 8] != b"MPF\0":
        at = data.find(b"\xff\xe2", at + 2)
    assert at >= 0, "no APP2 MPF segment"
    return at, 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]


@pytest.fixture(params=["baseline-rst", "progressive"])
def photo(request) -> bytes:
    if request.param == "progressive":
        return make_photo(progressive=True)
    return make_photo(restart_marker_rows=1)


@pytest.fixture(params=jpeg.CODINGS)
def coding(request) -> str:
    return request.param


@pytest.fixture
def attached(photo, coding, tmp_path):
    depth = smooth_depth("hdis")
    path = tmp_path / "out.jpg"
    path.write_bytes(jpeg.attach_depth(photo, depth, coding=coding))
    return photo, depth, path


#: Per coding: (SOF process, bits, StoredFormat, IntMax) of the depth JPEG.
CODED_AS = {
    "lossless": (3, 16, StoredFormat.L016, 65535),
    "baseline": (0, 8, StoredFormat.L008, 255),
}


def decoded_depth_image(path, coding: str) -> np.ndarray:
    """The codes of MP image 2 as exiftool extracts it and an independent decoder reads it."""
    extracted = exiftool_binary(path, "MPImage2")
    if coding == "lossless":
        return imagecodecs.jpeg8_decode(extracted)  # libjpeg-turbo: Pillow does not read 16-bit JPEG
    with JpegImagePlugin.JpegImageFile(io.BytesIO(extracted)) as image:  # its small MPF lists no images
        return np.asarray(image)


def test_primary_differs_only_by_the_inserted_app2(attached):
    photo, _, path = attached
    out = path.read_bytes()
    assert b"MPF\0" not in photo
    at, size = app2_mpf(out)
    primary_length = exiftool_json(path)["MPImage1:MPImageLength"]
    assert out[:at] + out[at + size : primary_length] == photo
    # placed where iPhones put it: after the APP1 Exif and XMP, before the APP2 ICC profile
    assert out.rfind(b"http://ns.adobe.com/xap/1.0/\0", 0, at) > out.rfind(b"Exif\0\0", 0, at) > 0
    assert out.find(b"ICC_PROFILE\0", at) == at + size + 4


def test_exiftool_reads_the_mp_index(attached):
    photo, _, path = attached
    out = path.read_bytes()
    tags = exiftool_json(path)
    assert tags["MPF0:MPFVersion"] == "0100"
    assert tags["MPF0:NumberOfImages"] == 2
    assert tags["MPImage1:MPImageStart"] == 0
    assert tags["MPImage1:MPImageLength"] == len(photo) + app2_mpf(out)[1]
    assert tags["MPImage2:MPImageStart"] == tags["MPImage1:MPImageLength"]
    assert tags["MPImage2:MPImageLength"] == len(out) - tags["MPImage2:MPImageStart"]
    assert tags["MPImage2:MPImageType"] == 0  # Undefined, as Apple writes for depth
    validate = ("-validate", "-warning", "-a")
    assert exiftool_json(path, *validate) == {
        **exiftool_json_bytes(photo, path.parent, *validate),
        "SourceFile": str(path),
    }


def test_exiftool_extracts_our_depth_jpeg(attached, coding, tmp_path):
    _, depth, path = attached
    extracted = exiftool_binary(path, "MPImage2")
    assert extracted == path.read_bytes()[-len(extracted) :]
    (tmp_path / "depth.jpg").write_bytes(extracted)
    tags = exiftool_json(tmp_path / "depth.jpg")
    process, bits, stored_format, int_max = CODED_AS[coding]
    stored = quantize(depth, stored_format)
    coded_as = tags["File:ColorComponents"], tags["File:EncodingProcess"], tags["File:BitsPerSample"]
    assert coded_as == (1, process, bits)
    assert (tags["File:ImageWidth"], tags["File:ImageHeight"]) == (depth.width, depth.height)
    assert tags["XMP-apdi:AuxiliaryImageType"] == "disparity"
    assert tags["XMP-apdi:NativeFormat"] == PixelFormat.HDIS.code
    assert tags["XMP-apdi:StoredFormat"] == stored_format.code
    assert (tags["XMP-apdi:IntMinValue"], tags["XMP-apdi:IntMaxValue"]) == (0, int_max)
    assert tags["XMP-apdi:FloatMinValue"] == pytest.approx(stored.info.float_min, rel=1e-12)
    assert tags["XMP-apdi:FloatMaxValue"] == pytest.approx(stored.info.float_max, rel=1e-12)
    assert tags["MPF0:MPFVersion"] == "0100" and tags["MPF0:NumberOfImages"] == 2
    assert "JFIF:JFIFVersion" not in tags  # segments as iPhone: SOI, APP1 XMP, APP2 MPF, then the coded map
    app1_end = 4 + struct.unpack(">H", extracted[4:6])[0]
    assert extracted[2:4] == b"\xff\xe1" and extracted[6:35] == b"http://ns.adobe.com/xap/1.0/\0"
    assert extracted[app1_end : app1_end + 2] == b"\xff\xe2" and extracted[app1_end + 4 : app1_end + 8] == b"MPF\0"
    codes = decoded_depth_image(path, coding).astype(int)
    assert np.abs(codes - stored.pixels).max() <= (coding == "baseline")  # libjpeg quality 100 moves some by one


def test_pillow_opens_both_frames_without_warning(attached, coding):
    _, depth, path = attached
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Image.open(path) as image:
            assert (image.format, image.n_frames) == ("MPO", 2)
            if coding == "baseline":  # Pillow's JPEG decoder takes 8-bit samples only
                image.seek(1)
                assert (image.mode, image.size) == ("L", (depth.width, depth.height))


def test_reads_the_iphone_x_sample():
    path = sample("iphoneX-image-with-depth.jpg")
    depth = gpu_depth.read_depth(path)
    assert depth.pixel_format is PixelFormat.HDIS
    assert (depth.width, depth.height) == (576, 768)
    with Image.open(path) as image:  # Pillow finds the second image through the MP index itself
        image.seek(1)
        codes = np.asarray(image).astype(np.float64)
    expected = (0.650879 + codes * (2.509766 - 0.650879) / 255).astype(np.float16)
    np.testing.assert_array_equal(depth.array, expected)
    assert depth.metadata.version == 65538 and depth.metadata.calibration is not None


@pytest.mark.parametrize("fmt", ["hdis", "fdis", "hdep", "fdep"])
def test_lossless_round_trip_within_half_a_step_in_every_format(fmt, tmp_path):
    depth = smooth_depth(fmt)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(make_photo())
    out = gpu_depth.attach_depth(photo, depth, tmp_path / "out.jpg")
    back = gpu_depth.read_depth(out)
    assert (back.pixel_format, back.width, back.height, back.metadata) == (
        depth.pixel_format,
        depth.width,
        depth.height,
        depth.metadata.for_writing(),
    )
    codes = decoded_depth_image(out, "lossless")
    stored = quantize(depth, StoredFormat.L016)
    np.testing.assert_array_equal(codes, stored.pixels)
    low, high = stored.info.float_min, stored.info.float_max
    step = (high - low) / 65535
    np.testing.assert_array_equal(back.array, round_to_format(low + codes * step, depth.pixel_format))
    resolution = float(np.finfo(depth.pixel_format.dtype).eps) * high
    assert np.abs(back.array.astype(np.float64) - depth.array).max() <= step / 2 + resolution
    if depth.pixel_format.dtype == np.float16:  # a 16-bit step is finer than half's: the values come back as they were
        np.testing.assert_array_equal(back.array, depth.array)


@pytest.mark.parametrize("fmt", ["hdis", "fdep"])
def test_baseline_round_trip_moves_codes_by_at_most_one(fmt, tmp_path):
    depth = smooth_depth(fmt)
    path = tmp_path / "out.jpg"
    path.write_bytes(jpeg.attach_depth(make_photo(), depth, coding="baseline"))
    back = jpeg.read_depth(path.read_bytes())
    codes = decoded_depth_image(path, "baseline")
    stored = quantize(depth)
    low, high = stored.info.float_min, stored.info.float_max
    step = (high - low) / 255
    np.testing.assert_array_equal(back.array, round_to_format(low + codes * step, depth.pixel_format))
    assert np.abs(codes.astype(int) - stored.pixels).max() <= 1
    kept = codes == stored.pixels
    assert kept.mean() > 0.8
    resolution = float(np.finfo(depth.pixel_format.dtype).eps) * high
    error = np.abs(back.array.astype(np.float64) - depth.array)
    assert error[kept].max() <= step / 2 + resolution
    assert error.max() <= 1.5 * step + resolution


def test_noisy_maps_round_trip_within_half_a_16_bit_step():
    rng = np.random.default_rng(7)
    depth = DepthData.from_array(rng.uniform(0.2, 2.0, (60, 80)), "fdis")
    back = jpeg.read_depth(jpeg.attach_depth(make_photo(), depth))
    info = quantize(depth, StoredFormat.L016).info
    step = (info.float_max - info.float_min) / 65535
    resolution = float(np.finfo(np.float32).eps) * info.float_max
    assert np.abs(back.array.astype(np.float64) - depth.array).max() <= step / 2 + resolution


def test_unknown_coding_is_refused():
    with pytest.raises(DepthError, match=r"unknown depth coding 'png'; expected lossless or baseline"):
        jpeg.attach_depth(make_photo(), smooth_depth("hdis"), coding="png")


def test_existing_depth_needs_replace_and_is_replaced():
    original = sample("iphoneX-image-with-depth.jpg").read_bytes()
    depth = smooth_depth("hdep")
    with pytest.raises(DepthError, match=r"already has a depth map \(MP image 2 at offset 2570521\)"):
        jpeg.attach_depth(original, depth)
    out = jpeg.attach_depth(original, depth, replace=True)
    at, size = app2_mpf(out)
    assert (at, size) == app2_mpf(original)
    assert out[:at] == original[:at] and out[at + size : 2570521] == original[at + size : 2570521]
    back = jpeg.read_depth(out)
    assert back.pixel_format is PixelFormat.HDEP and (back.width, back.height) == (depth.width, depth.height)


def test_an_existing_mp_index_is_extended(tmp_path):
    first, second = Image.open(io.BytesIO(make_photo())), Image.new("RGB", (64, 48), "gray")
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    mpo = buffer.getvalue()
    path = tmp_path / "out.jpg"
    path.write_bytes(jpeg.attach_depth(mpo, smooth_depth("fdis")))
    tags = exiftool_json(path)
    assert tags["MPF0:NumberOfImages"] == 3
    out = path.read_bytes()
    second_start, second_length = tags["MPImage2:MPImageStart"], tags["MPImage2:MPImageLength"]
    old = exiftool_json_bytes(mpo, tmp_path)
    kept = mpo[old["MPImage2:MPImageStart"] : old["MPImage2:MPImageStart"] + old["MPImage2:MPImageLength"]]
    assert out[second_start : second_start + second_length] == kept
    assert tags["MPImage3:MPImageStart"] + tags["MPImage3:MPImageLength"] == len(out)
    assert jpeg.read_depth(out).pixel_format is PixelFormat.FDIS


@pytest.mark.parametrize("with_gain_map", [False, True])
def test_a_motion_photo_keeps_its_video_and_trailer_at_the_end(with_gain_map, tmp_path):
    """Motion Photo JPEGs (Pixel, Samsung) end with the video, which readers find from the end of the file by
    its XMP's Item:Length, and Samsung's with a SEFT trailer read from the last bytes; the depth image
    goes after the last MP image (a Pixel's gain map), before them.  It went after them."""
    photo = make_photo()
    if with_gain_map:
        buffer = io.BytesIO()
        Image.open(io.BytesIO(photo)).save(buffer, "MPO", save_all=True, append_images=[Image.new("L", (32, 24))])
        photo = buffer.getvalue()
    tail = b"\0\0\0\x18ftypmp42" + bytes(64) + b"SEFH....SEFT"
    first = jpeg.attach_depth(photo + tail, smooth_depth("hdis"))
    for out in first, jpeg.attach_depth(first, smooth_depth("hdep"), replace=True):
        assert out.endswith(tail)
        path = tmp_path / "out.jpg"
        path.write_bytes(out)
        tags = exiftool_json(path)
        last = f"MPImage{2 + with_gain_map}"
        assert tags[f"{last}:MPImageStart"] + tags[f"{last}:MPImageLength"] == len(out) - len(tail)
        assert jpeg.read_depth(out).width == smooth_depth("hdis").width
        assert not problems(verify_bytes(out))


def test_photo_without_depth_reads_none():
    assert jpeg.read_depth(make_photo()) is None


@pytest.mark.parametrize("suffix", [".png", ".tiff", ".heic"])
def test_other_photos_become_jpeg_with_exif_icc_orientation(suffix, tmp_path):
    if suffix == ".heic":
        pytest.importorskip("pillow_heif").register_heif_opener()
    exif = Image.Exif()
    exif[0x0112] = 8
    exif[0x010F] = "gpu_depth test"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = tmp_path / f"photo{suffix}"
    Image.open(io.BytesIO(make_photo())).save(source, exif=exif, icc_profile=icc)
    out = gpu_depth.attach_depth(source, smooth_depth("hdis"), tmp_path / "out.jpg", quality=95, fit="stretch")
    with Image.open(source) as original, Image.open(out) as image:
        assert image.format == "MPO" and image.n_frames == 2
        assert image.info.get("icc_profile") == original.info.get("icc_profile")
        assert image.getexif().get(0x010F) == "gpu_depth test"
        original.load()  # Pillow's TIFF reader applies the orientation on load
        if suffix == ".png":
            assert image.getexif().get(0x0112) == 8
        shown, expected = ImageOps.exif_transpose(image), ImageOps.exif_transpose(original)
        assert shown.size == expected.size
        difference = np.abs(np.asarray(shown, dtype=int) - np.asarray(expected.convert("RGB"), dtype=int))
        assert difference.mean() < 3
    if suffix != ".heic":  # pillow-heif does not keep an ICC profile through its own writer
        assert Image.open(out).info["icc_profile"] == icc
    assert gpu_depth.read_depth(out).pixel_format is PixelFormat.HDIS


def test_encode_photo_rejects_bad_quality():
    with pytest.raises(DepthError, match="quality"):
        jpeg.encode_photo(Image.new("RGB", (8, 8)), quality=0)


# ---- hostile bytes: every defect is a DepthError that names where it is ----------------------------------------


def patched(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


def mp_entry_offset(data: bytes, entry: int) -> int:
    """File offset of an MP entry, for a big-endian index as we write it (IFD at 8, entries at 50)."""
    return app2_mpf(data)[0] + 8 + 50 + 16 * entry


@pytest.fixture(scope="module")
def good() -> bytes:
    return jpeg.attach_depth(make_photo(64, 48), smooth_depth("hdis", 16, 12))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[:19], r"APP0 segment at offset 2 of length 16 runs past the end of the data at offset 19"),
        (lambda d: d[:3], r"data ends at offset 3 inside a marker"),
        (lambda d: patched(d, 4, b"\x00\x01"), r"APP0 segment at offset 2 has length 1"),
        (lambda d: patched(d, 4, b"\xff\xf0"), r"APP0 segment at offset 2 of length 65520 runs past"),
        (lambda d: patched(d, 2, b"\xff\x02"), r"unknown marker 0xFF02 at offset 2"),
        (lambda d: patched(d, 2, b"\x00"), r"expected a marker at offset 2"),
        (lambda d: d[: d.find(b"\xff\xd8\xff", 2) - 10], r"after the SOS at offset \d+ runs to offset"),
    ],
    ids=[
        "truncated-segment",
        "truncated-marker",
        "length-below-2",
        "length-past-end",
        "unknown-marker",
        "no-marker",
        "scan-without-end",
    ],
)
def test_hostile_bytes_raise_depth_error_naming_the_offset(good, mutate, message):
    with pytest.raises(DepthError, match=message):
        jpeg.read_depth(mutate(good))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: patched(d, mp_entry_offset(d, 1) + 8, b"\xff\xff\xff\x00"), r"MP entry 1 puts \d+ bytes at offset"),
        (lambda d: patched(d, mp_entry_offset(d, 1) + 4, b"\x7f\xff\xff\xff"), r"MP entry 1 puts 2147483647 bytes"),
        (lambda d: patched(d, app2_mpf(d)[0] + 8 + 30, b"\xff\xff\xff\xff"), r"MPF at offset \d+: NumberOfImages"),
        (lambda d: patched(d, app2_mpf(d)[0] + 8 + 8, b"\xff\xff"), r"MPF at offset \d+: Index IFD of 65535 fields"),
        (lambda d: patched(d, app2_mpf(d)[0] + 8 + 4, b"\x00\x01\x00\x00"), r"Index IFD offset 65536 is outside"),
        (lambda d: patched(d, app2_mpf(d)[0] + 8 + 42, b"\x00\x00\xff\x00"), r"field 0xB002 at offset \d+ points"),
    ],
    ids=[
        "mp-offset-past-end",
        "mp-size-huge",
        "huge-image-count",
        "huge-field-count",
        "ifd-offset-past-end",
        "entry-table-past-end",
    ],
)
def test_a_broken_mp_index_reads_as_no_depth_and_attach_rebuilds_it(good, mutate, message):
    """Pillow and exiftool open such files (tools that copy only the primary leave stale indexes)."""
    broken = mutate(good)
    assert jpeg.read_depth(broken) is None
    assert any(re.search(message, fault) for fault in jpeg.mp_index(broken, jpeg.parse_jpeg(broken)).faults)
    depth = smooth_depth("hdis", 16, 12)
    fixed = jpeg.attach_depth(broken, depth)
    assert jpeg.mp_index(fixed, jpeg.parse_jpeg(fixed)).faults == []
    assert np.allclose(jpeg.read_depth(fixed).array, depth.array, rtol=1e-3, equal_nan=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_never_leak_other_errors(good, data):
    at = data.draw(st.integers(0, len(good) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=4))
    cut = data.draw(st.integers(at + 1, len(good)))
    mutant = patched(good, at, junk)[:cut] if data.draw(st.booleans()) else patched(good, at, junk)
    try:
        jpeg.read_depth(mutant)
    except DepthError as exc:
        assert "\n" not in str(exc)


def matte_jpeg() -> bytes:
    """A portrait-effects matte as iPhones store it: a gray JPEG whose XMP says depth + portraiteffectsmatte."""
    from gpu_depth.core.xmp import PixelDataInfo, build_depth_xmp

    code = 1278226488  # 'L008'
    info = PixelDataInfo("depth", code, code, 0, 255, 0.0, 1.0, subtype="portraiteffectsmatte")
    xmp = b"http://ns.adobe.com/xap/1.0/\0" + build_depth_xmp(info, DepthMetadata())
    buffer = io.BytesIO()
    Image.new("L", (40, 30), 200).save(buffer, "JPEG")
    return b"\xff\xd8\xff\xe1" + struct.pack(">H", len(xmp) + 2) + xmp + buffer.getvalue()[2:]


def test_mattes_are_skipped_and_kept(tmp_path):
    from gpu_depth.containers.jpeg import mpf

    photo, matte = make_photo(), matte_jpeg()
    size = 4 + mpf.index_size(2)
    primary_length = len(photo) + size
    index = mpf.build_index(
        [mpf.Entry(mpf.PRIMARY_TYPE, primary_length, 0), mpf.Entry(0, len(matte), primary_length - 10)]
    )
    with_matte = photo[:2] + b"\xff\xe2" + struct.pack(">H", size - 2) + index + photo[2:] + matte
    assert jpeg.read_depth(with_matte) is None  # a matte is not a depth map
    depth = smooth_depth("hdis")
    path = tmp_path / "out.jpg"
    path.write_bytes(jpeg.attach_depth(with_matte, depth))  # no replace needed: the matte stays
    tags = exiftool_json(path)
    assert tags["MPF0:NumberOfImages"] == 3
    assert exiftool_binary(path, "MPImage2") == matte
    back = jpeg.read_depth(path.read_bytes())
    assert (back.pixel_format, back.width, back.height) == (PixelFormat.HDIS, depth.width, depth.height)


def test_orientation_of_a_photo_pillow_would_refuse_to_open():
    """SOF0 says 20000x12000 (240 Mpix, over Pillow's bomb limit): Image.open raised DecompressionBombError."""
    data = bytearray(make_photo(64, 48))
    sof = next(s for s in jpeg.parse_jpeg(bytes(data)).segments if s.marker == 0xC0)
    struct.pack_into(">HH", data, sof.offset + 5, 12000, 20000)
    assert jpeg.orientation(bytes(data)) == 6


def test_orientation_from_broken_or_missing_exif():
    data = make_photo(64, 48)
    (exif,) = jpeg.parse_jpeg(data).applications(data, jpeg.APP1, jpeg.EXIF_ID)
    broken = data[: exif.offset + 10] + b"XX" + data[exif.offset + 12 :]  # the TIFF byte order mark
    with pytest.raises(DepthError, match=rf"Exif at offset {exif.offset}: cannot read its Orientation"):
        jpeg.orientation(broken)
    assert jpeg.orientation(data[:2] + data[exif.end :]) == 1


def test_marker_count_is_bounded():
    """2M empty COM segments (8 MB) took 4.7 s in a Python loop; an image may hold 65536 markers."""
    data = b"\xff\xd8" + b"\xff\xfe\x00\x02" * (segments.MAX_MARKERS + 1) + b"\xff\xd9"
    with pytest.raises(DepthError, match="JPEG at offset 0: more than 65536 markers before offset 262146"):
        jpeg.parse_jpeg(data)


def test_fill_bytes_before_markers_are_skipped():
    photo = make_photo(64, 48)
    sof = next(s for s in jpeg.parse_jpeg(photo).segments if s.marker == 0xC0)
    filled = photo[: sof.offset] + b"\xff" * 100_000 + photo[sof.offset :]
    image = jpeg.parse_jpeg(filled)
    assert [s.marker for s in image.segments] == [s.marker for s in jpeg.parse_jpeg(photo).segments]
    assert image.end == len(filled)


def test_mp_entries_may_not_overlap():
    """3989 MP entries naming one 1 MB image made read_depth parse it 3989 times (1.4 s per MB)."""
    data = jpeg.attach_depth(make_photo(64, 48), smooth_depth("hdis"))
    (app2,) = jpeg.parse_jpeg(data).applications(data, jpeg.APP2, jpeg.mpf.MPF_ID)
    tiff_at = app2.offset + 8
    entries = jpeg.mpf.parse_index(data[tiff_at : app2.end], tiff_at).entries
    again = [*entries, entries[1]]  # the depth image listed twice; one more entry moves it 16 bytes on
    moved = [again[0]] + [jpeg.mpf.Entry(e.attribute, e.size, e.offset + jpeg.mpf.ENTRY_SIZE) for e in again[1:]]
    patched = data[: app2.offset] + jpeg.segment(jpeg.APP2, jpeg.mpf.build_index(moved)) + data[app2.end :]
    faults = jpeg.mp_index(patched, jpeg.parse_jpeg(patched)).faults
    assert len(faults) == 1 and re.search(r"MP entry \d at offset \d+ overlaps another", faults[0])
    assert jpeg.read_depth(patched) is not None  # the depth image, read once
    assert "jpeg.mpf-overlap" in {f.rule for f in verify_bytes(patched) if f.severity == "error"}


@pytest.mark.parametrize(
    ("tag", "type_", "count", "value"),
    [(282, 2, 4, b"72\0\0"), (296, 4, 1, struct.pack("<I", 70000)), (305, 11, 1, struct.pack("<f", 1.5))],
    ids=["ascii", "long", "float-software"],
)
def test_tiff_photo_tags_exif_cannot_hold_are_depth_errors(tmp_path, tag, type_, count, value):
    """XResolution stored as ASCII (TypeError), ResolutionUnit as a LONG 70000 (struct.error packing a
    SHORT) or Software as a FLOAT (AttributeError: no .encode) leaked from encode_photo when a TIFF
    photo's tags became the JPEG's Exif (fuzz photo reader)."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((8, 8, 3), np.uint8), photometric="rgb")
    data = bytearray(buffer.getvalue())
    (ifd,) = TiffFile(bytes(data)).walk()
    struct.pack_into("<HI4s", data, ifd.offset + 2 + 12 * list(ifd.entries).index(tag) + 2, type_, count, value)
    (tmp_path / "photo.tif").write_bytes(bytes(data))
    with Image.open(tmp_path / "photo.tif") as image:
        image.load()
        with pytest.raises(DepthError, match="the photo's Exif/TIFF tags cannot be written into a JPEG"):
            jpeg.encode_photo(image)


def _reader(data: bytes, reads: list[int]):
    def read(offset: int, length: int) -> bytes:
        assert 0 <= offset and 0 <= length <= len(data) - offset  # never past the file
        reads.append(length)
        return data[offset : offset + length]

    return read


@pytest.mark.parametrize("name", ["made", "iphoneX-image-with-depth.jpg", "motorola-lensblur-gdepth.jpg"])
def test_the_head_of_a_jpeg_gives_its_size_and_orientation_from_a_small_part_of_it(name):
    """The pipeline's driver read each photo whole (and walked its scans to EOI) for its size."""
    data = make_photo(1600, 1200) if name == "made" else sample(name).read_bytes()
    head = jpeg.head(_reader(data, reads := []), len(data))
    assert (jpeg.displayed_size(head), jpeg.orientation(head)) == (jpeg.displayed_size(data), jpeg.orientation(data))
    assert sum(reads) < len(data) // 4


@pytest.mark.parametrize(
    "cut",
    [
        lambda data: data[:200],  # cut before its first scan
        lambda data: data[:2] + b"\xff" + data[2:],  # a fill byte
        lambda data: data[:2] + b"\xff\xd9" + data[2:],  # EOI before any scan
        lambda data: data[:2] + b"\xff\x02\x00\x04ab" + data[2:],  # a reserved marker
        lambda data: b"\xff\xd8\xff\xe0\x00\x01" + data[2:],  # a length below 2
    ],
)
def test_a_jpeg_head_it_does_not_expect_is_judged_on_the_whole_file(cut):
    data = cut(make_photo())
    assert jpeg.head(_reader(data, []), len(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_head_of_any_mutated_jpeg_gives_what_the_whole_file_gives(data):
    """Where the whole file gives a size and orientation, its head gives the same (and never fails)."""
    photo = bytearray(make_photo(64, 48))
    for _ in range(data.draw(st.integers(1, 4))):
        photo[data.draw(st.integers(0, 700))] = data.draw(st.integers(0, 255))
    photo = bytes(photo)
    try:
        whole = (jpeg.displayed_size(photo), jpeg.orientation(photo))
    except DepthError:
        return
    head = jpeg.head(_reader(photo, []), len(photo))
    assert (jpeg.displayed_size(head), jpeg.orientation(head)) == whole
