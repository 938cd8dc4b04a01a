"""DNG 1.5 depth maps, checked by exiftool, tifffile and LibRaw (rawpy) on DNGs made here with tifffile."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from helpers import tool
from helpers.dng import depth_ifd, depth_map, entry_position, make_dng
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpu_depth
from gpu_depth import DepthData, DepthError
from gpu_depth.containers import sniff
from gpu_depth.containers.dng import plugin as dng
from gpu_depth.containers.dng.tiff import TiffFile

LAYOUTS = ("cfa-in-subifd", "linear-raw-in-ifd0", "cfa-and-preview-subifds")
#: exiftool before 12.69 lists DNG 1.5 tags (0xc7e9…) as non-standard, a minor warning (fixed upstream).
OLD_EXIFTOOL_DEPTH_WARNINGS = {
    f"[minor] Non-standard IFD0 tag 0x{tag:04x} {name}"
    for tag, name in zip(
        range(0xC7E9, 0xC7EE), ("DepthFormat", "DepthNear", "DepthFar", "DepthUnits", "DepthMeasureType"), strict=True
    )
}


def exiftool_json(path: Path, *args: str) -> dict:
    result = subprocess.run([tool("exiftool"), "-j", *args, str(path)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)[0]


def validation_warnings(path: Path) -> set[str]:
    """The warnings of ``exiftool -validate`` (its text output: JSON keeps only one of repeated tags)."""
    args = [tool("exiftool"), "-s", "-validate", "-warning", "-a", str(path)]
    lines = subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines()
    assert any(line.startswith("Validate ") for line in lines), lines
    return {line.split(":", 1)[1].strip() for line in lines if line.startswith("Warning ")}


def exiftool_version() -> tuple[int, ...]:
    out = subprocess.run([tool("exiftool"), "-ver"], capture_output=True, text=True, check=True).stdout
    return tuple(int(part) for part in out.strip().split("."))


@pytest.fixture(params=[(layout, order) for layout in LAYOUTS for order in "<>"], ids=lambda p: f"{p[0]}-{p[1]}")
def dng_pair(request, tmp_path) -> tuple[Path, Path, DepthData]:
    """An input DNG and the same DNG with a depth map attached, both on disk."""
    layout, byteorder = request.param
    source = tmp_path / "in.dng"
    source.write_bytes(make_dng(layout, byteorder))
    depth = depth_map("fdep", accuracy="absolute")
    out = tmp_path / "out.dng"
    out.write_bytes(dng.attach_depth(source.read_bytes(), depth, measure_type=1))
    return source, out, depth


def test_every_input_byte_stays_in_place_except_the_first_ifd_offset(dng_pair):
    source, out, _ = dng_pair
    before, after = source.read_bytes(), out.read_bytes()
    assert after[:4] == before[:4] and after[8 : len(before)] == before[8:]
    assert after[4:8] != before[4:8]


def test_tifffile_reads_every_ifd_and_the_depth_samples_we_wrote(dng_pair):
    source, out, depth = dng_pair
    codes, *_ = dng.depth_codes(depth)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tifffile.TiffFile(source) as original, tifffile.TiffFile(out) as ours:
            pages = [(page, list(page.pages or [])) for page in ours.pages]
            old = [(page, list(page.pages or [])) for page in original.pages]
            assert [len(subs) for _, subs in pages] == [len(subs) + (i == 0) for i, (_, subs) in enumerate(old)]
            for (page, subs), (old_page, old_subs) in zip(pages, old, strict=True):
                for ours_page, their_page in zip([page, *subs], [old_page, *old_subs], strict=False):
                    assert np.array_equal(ours_page.asarray(), their_page.asarray())
                    assert ours_page.dataoffsets == their_page.dataoffsets
            depth_page = pages[0][1][-1]
            assert depth_page.subfiletype == 8 and depth_page.photometric == 51177
            assert depth_page.bitspersample == 16 and depth_page.samplesperpixel == 1
            assert np.array_equal(depth_page.asarray(), codes)


def test_exiftool_reads_the_depth_tags_and_the_depth_map_subifd(dng_pair):
    _, out, depth = dng_pair
    printed = exiftool_json(out, "-a", "-G1", "-Depth*", "-SubfileType", "-PhotometricInterpretation", "-DNGVersion")
    assert printed["IFD0:DepthFormat"] == "Linear"
    assert printed["IFD0:DepthUnits"] == "Meters"
    assert printed["IFD0:DepthMeasureType"] == "Optical Axis"
    assert printed["IFD0:DNGVersion"] == "1.5.0.0"
    assert "Depth map" in [value for key, value in printed.items() if key.endswith(":SubfileType")]
    assert "Depth Map" in [value for key, value in printed.items() if key.endswith(":PhotometricInterpretation")]
    numbers = exiftool_json(out, "-n", "-DepthNear", "-DepthFar")
    tiff = TiffFile(out.read_bytes())
    _, near, far = dng.depth_range(tiff, tiff.walk()[0])
    assert numbers["DepthNear"] == pytest.approx(near) and numbers["DepthFar"] == pytest.approx(far)
    assert near <= depth.array.min() < depth.array.max() <= far


def test_exiftool_validate_reports_no_new_warning(dng_pair):
    source, out, _ = dng_pair
    new = validation_warnings(out) - validation_warnings(source)
    if exiftool_version() < (12, 69):
        new -= OLD_EXIFTOOL_DEPTH_WARNINGS
    assert new == set()


def test_libraw_decodes_the_same_raw_pixels(dng_pair):
    rawpy = pytest.importorskip("rawpy")
    source, out, _ = dng_pair
    with rawpy.imread(str(source)) as before, rawpy.imread(str(out)) as after:
        assert before.raw_image.size > 0
        assert np.array_equal(after.raw_image, before.raw_image)
        assert np.array_equal(after.postprocess(), before.postprocess())


@pytest.mark.parametrize("pixel_format", ["hdep", "fdep", "hdis", "fdis"])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_round_trip_within_half_a_16_bit_step(pixel_format, byteorder):
    depth = depth_map(pixel_format, shape=(50, 70))
    back = dng.read_depth(dng.attach_depth(make_dng(byteorder=byteorder), depth))
    assert back.pixel_format.quantity == depth.pixel_format.quantity
    assert back.pixel_format.dtype == np.float32 and (back.width, back.height) == (70, 50)
    codes, _, near, far = dng.depth_codes(depth)
    first, last = (dng._ratio(r, depth.pixel_format.is_disparity) for r in (near, far))
    step = abs(last - first) / 65535
    original = depth.array.astype(np.float64)
    error = np.abs(back.array.astype(np.float64) - original)
    assert np.all(error <= step / 2 * (1 + 1e-9) + np.abs(original) * 2.0**-24)
    assert codes.min() == 0 and codes.max() == 65535


def test_codes_run_from_near_to_far_in_both_formats():
    linear_codes, *_ = dng.depth_codes(depth_map("fdep"))
    disparity_codes, form, near, far = dng.depth_codes(depth_map("fdis"))
    assert form == dng.INVERSE and dng._ratio(near) < dng._ratio(far)
    # the nearest pixel is the top-left one: code 0 in both DepthFormats, farthest the bottom-right
    for codes in (linear_codes, disparity_codes):
        assert codes[0, 0] == 0 and codes[-1, -1] == 65535
        assert np.all(np.diff(codes.astype(int), axis=1) >= 0)


def test_zero_disparity_is_an_infinite_far_distance():
    values = np.array([[0.0, 0.5], [1.0, 2.0]])
    _, form, near, far = dng.depth_codes(DepthData.from_array(values, "fdis"))
    assert (form, near, far) == (dng.INVERSE, (500_000_000, 10**9), dng.INFINITY)
    back = dng.read_depth(dng.attach_depth(make_dng(), DepthData.from_array(values, "fdis")))
    assert np.allclose(back.array, values, atol=2.0 / 65535)


def test_holes_are_refused():
    """DNG has no code for a hole (a NaN was once stored as the far end)."""
    with pytest.raises(
        DepthError, match=r"DNG depth maps cannot hold holes \(1 NaN pixels\): fill them \(--holes fill\)"
    ):
        dng.depth_codes(DepthData.from_array(np.array([[np.nan, 1.0], [2.0, 1.5]]), "fdep"))


@pytest.mark.parametrize(
    ("values", "pixel_format", "message"),
    [
        ([[-1.0, 2.0]], "fdep", "negative"),
        ([[-1.0, 2.0]], "fdis", "negative"),
        ([[0.0, 0.0]], "fdis", "no positive value"),
        ([[1.0, 5e9]], "fdep", "does not fit a TIFF RATIONAL"),
        ([[1.0, 2e9]], "fdis", "too large"),
    ],
)
def test_unstorable_maps_are_refused(values, pixel_format, message):
    with pytest.raises(DepthError, match=message):
        dng.depth_codes(DepthData.from_array(np.array(values), pixel_format))


def test_rationals_round_outwards_with_power_of_ten_denominators():
    assert dng.to_rational(0.5, up=False) == (500_000_000, 10**9)
    assert dng.to_rational(1 / 3, up=False) == (333_333_333, 10**9)
    assert dng.to_rational(1 / 3, up=True) == (333_333_334, 10**9)
    assert dng.to_rational(1234.5, up=True) == (1_234_500_000, 10**6)
    assert dng.to_rational(0.1, up=True) == (100_000_001, 10**9)  # the double 0.1 is a little above 1/10
    assert dng.to_rational(0.1, up=False) == (100_000_000, 10**9)
    assert dng.to_rational(4e9, up=False) == (4_000_000_000, 1)


def test_accuracy_becomes_depth_units():
    for accuracy, units in (("absolute", "absolute"), ("relative", None)):  # DepthUnits 0: unknown
        back = dng.read_depth(dng.attach_depth(make_dng(), depth_map(accuracy=accuracy)))
        assert back.metadata.accuracy == units


@pytest.mark.parametrize(
    ("version", "backward", "expected"),
    [
        ((1, 4, 0, 0), (1, 1, 0, 0), ((1, 5, 0, 0), (1, 1, 0, 0))),
        ((1, 4, 0, 0), None, ((1, 5, 0, 0), (1, 4, 0, 0))),
        ((1, 6, 0, 0), (1, 3, 0, 0), ((1, 6, 0, 0), (1, 3, 0, 0))),
    ],
)
def test_dng_version_raised_to_1_5_keeping_the_backward_version(version, backward, expected):
    out = dng.attach_depth(make_dng(version=version, backward=backward), depth_map())
    tiff = TiffFile(out)
    ifd0 = tiff.walk()[0]
    assert (tiff.integers(ifd0, dng.DNG_VERSION), tiff.integers(ifd0, dng.DNG_BACKWARD_VERSION)) == expected


@pytest.mark.parametrize("subifd_type", [4, 13], ids=["LONG", "IFD"])
def test_existing_subifds_are_kept_and_the_depth_map_appended(subifd_type, tmp_path):
    source = bytearray(make_dng("cfa-and-preview-subifds", ">"))
    tiff = TiffFile(bytes(source))
    source[entry_position(tiff.walk()[0], 330) + 2 : entry_position(tiff.walk()[0], 330) + 4] = struct.pack(
        ">H", subifd_type
    )
    tiff = TiffFile(bytes(source))
    before = tiff.integers(tiff.walk()[0], 330)
    out = TiffFile(dng.attach_depth(bytes(source), depth_map()))
    after = out.integers(out.walk()[0], 330)
    assert len(before) == 2 and after[:2] == before and after[2] == depth_ifd(out.data)[1].offset
    assert out.walk()[0].entries[330].type == subifd_type
    (tmp_path / "in.dng").write_bytes(source)
    (tmp_path / "out.dng").write_bytes(out.data)
    new = validation_warnings(tmp_path / "out.dng") - validation_warnings(tmp_path / "in.dng")
    assert new <= (OLD_EXIFTOOL_DEPTH_WARNINGS if exiftool_version() < (12, 69) else set())


@pytest.mark.parametrize("tile", [(16, 16), (32, 48)])
def test_tiled_raws_are_kept(tile):
    source = make_dng(tile=tile)
    out = dng.attach_depth(source, depth_map())
    with tifffile.TiffFile(io.BytesIO(source)) as before, tifffile.TiffFile(io.BytesIO(out)) as after:
        raw_before, raw_after = before.pages[0].pages[0], after.pages[0].pages[0]
        assert raw_after.is_tiled and raw_after.dataoffsets == raw_before.dataoffsets
        assert np.array_equal(raw_after.asarray(), raw_before.asarray())


def test_a_second_depth_map_needs_replace():
    once = dng.attach_depth(make_dng(), depth_map())
    with pytest.raises(DepthError, match=r"already has a depth map \(IFD0.SubIFD1\)$"):
        dng.attach_depth(once, depth_map("fdis"))
    twice = dng.attach_depth(once, depth_map("fdis"), replace=True)
    tiff, _ = depth_ifd(twice)
    assert len(tiff.integers(tiff.walk()[0], 330)) == 2
    assert dng.read_depth(twice).pixel_format.fourcc == "fdis"


@pytest.mark.parametrize("value", [1, 6, 8, 0, 9])
def test_orientation_is_ifd0s(value):
    data = bytearray(make_dng("linear-raw-in-ifd0", ">"))
    tiff = TiffFile(bytes(data))
    position = entry_position(tiff.walk()[0], 274) + 8
    data[position : position + 2] = struct.pack(">H", value)
    assert dng.orientation(bytes(data)) == (value if 1 <= value <= 8 else 1)


def test_no_depth_map_reads_as_none():
    assert dng.read_depth(make_dng()) is None


def test_reading_a_reduced_depth_map_and_8_bit_samples():
    out = bytearray(dng.attach_depth(make_dng(byteorder=">"), depth_map()))
    _, found = depth_ifd(bytes(out))
    out[entry_position(found, 254) + 8 : entry_position(found, 254) + 12] = struct.pack(">I", 9)
    assert dng.read_depth(bytes(out)) is not None
    out[entry_position(found, 258) + 8 : entry_position(found, 258) + 10] = struct.pack(">H", 8)
    out[entry_position(found, 256) + 8 : entry_position(found, 256) + 12] = struct.pack(">I", 128)
    back = dng.read_depth(bytes(out))  # each 16-bit sample is now two 8-bit samples
    assert (back.width, back.height) == (128, 48)


def test_a_plain_tiff_is_refused_clearly():
    stream = io.BytesIO()
    tifffile.imwrite(stream, np.zeros((4, 4), np.uint8))
    assert sniff(stream.getvalue()) is dng
    for call in (dng.read_depth, lambda data: dng.attach_depth(data, depth_map())):
        with pytest.raises(DepthError, match="without DNGVersion in IFD0 is not a DNG"):
            call(stream.getvalue())


def test_bigtiff_is_refused_clearly():
    stream = io.BytesIO()
    tifffile.imwrite(stream, np.zeros((4, 4), np.uint8), bigtiff=True)
    assert sniff(stream.getvalue()) is dng
    with pytest.raises(DepthError, match="BigTIFF"):
        dng.read_depth(stream.getvalue())


def test_encode_photo_is_refused():
    with pytest.raises(DepthError, match="cannot become one"):
        dng.encode_photo(None)


def test_bad_options_are_refused():
    with pytest.raises(DepthError, match="unknown DNG option"):
        dng.attach_depth(make_dng(), depth_map(), quality=3)
    with pytest.raises(DepthError, match="DepthMeasureType"):
        dng.attach_depth(make_dng(), depth_map(), measure_type=5)


def hostile(patch) -> bytes:
    out = bytearray(dng.attach_depth(make_dng(), depth_map()))
    tiff, found = depth_ifd(bytes(out))
    patch(out, tiff, found)
    return bytes(out)


def put(out: bytearray, position: int, code: str, value: int) -> None:
    out[position : position + struct.calcsize(code)] = struct.pack("<" + code, value)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            lambda out, t, f: put(out, entry_position(f, 279) + 8, "I", 1 << 30),
            r"strip/tile 0 at offset \d+: its 1073741824 bytes run past the end",
        ),
        (lambda out, t, f: put(out, entry_position(f, 273) + 4, "I", 2), "2 offsets and 1 byte counts for 1 strips"),
        (lambda out, t, f: put(out, entry_position(f, 259) + 8, "H", 7), r"259 \(Compression\) 7 are not supported"),
        (lambda out, t, f: put(out, entry_position(f, 258) + 8, "H", 12), "must be 8 or 16 bits"),
        (lambda out, t, f: put(out, entry_position(f, 257) + 8, "I", 1 << 20), "cannot be stored"),
        (lambda out, t, f: put(out, entry_position(f, 278) + 8, "I", 0), "RowsPerStrip is 0"),
        (lambda out, t, f: put(out, entry_position(t.walk()[0], 0xC7E9) + 8, "H", 0), "DepthFormat 0 gives no"),
        (lambda out, t, f: put(out, entry_position(f, 254) + 2, "H", 99), "unknown field type 99"),
        (lambda out, t, f: put(out, f.offset + 2 + 12 * len(f.entries), "I", f.offset), "form a loop"),
        (lambda out, t, f: put(out, t.walk()[0].offset, "H", 0xFFFF), "entries do not fit"),
        # a count of 0 unpacked to nothing: ValueError leaked (fuzz finding of the count-first check)
        (lambda out, t, f: put(out, entry_position(f, 256) + 4, "I", 0), r"\(ImageWidth\) must hold 1 value, not 0"),
        (lambda out, t, f: put(out, entry_position(t.walk()[0], 50706) + 4, "I", 3), "DNGVersion must be 4 BYTEs"),
        # a strip flood: each strip is decoded on its own (seconds and GBs for a file of a few MB)
        (
            lambda out, t, f: (
                put(out, entry_position(f, 259) + 8, "H", 8),
                put(out, entry_position(f, 257) + 8, "I", 1 << 15),
                put(out, entry_position(f, 278) + 8, "I", 1),
            ),
            "32768 strips or tiles, more than the 16384 allowed",
        ),
        # Deflate lets a small file claim up to the pixel limit: 2 GB for a 130 KB file
        (
            lambda out, t, f: (
                put(out, entry_position(f, 259) + 8, "H", 8),
                put(out, entry_position(f, 257) + 8, "I", 1 << 18),
            ),
            r"Deflate depth map of 33554432 bytes from \d+ bytes of data expands more than 64-fold",
        ),
    ],
    ids=[
        *("strip-count", "strip-offsets", "compression", "bits", "height", "rows", "format", "type", "loop", "ifd0"),
        *("no-width", "short-version", "strip-flood", "deflate-bomb"),
    ],
)
def test_hostile_dngs_raise_depth_error(patch, message):
    with pytest.raises(DepthError, match=message):
        dng.read_depth(hostile(patch))


def test_a_strip_past_the_end_of_the_file_is_refused():
    def patch(out, tiff, found):
        put(out, entry_position(found, 273) + 8, "I", len(out) - 8)  # the one strip starts 8 bytes before the end

    with pytest.raises(DepthError, match=r"strip/tile 0 at offset \d+: its 6144 bytes run past the end"):
        dng.read_depth(hostile(patch))


def test_the_api_attaches_and_reads_dng_files(tmp_path):
    photo = tmp_path / "raw.dng"
    photo.write_bytes(make_dng(byteorder=">"))
    depth = depth_map("hdis")
    out = gpu_depth.attach_depth(photo, depth, tmp_path / "with-depth.dng", measure_type=2, fit="stretch")
    assert gpu_depth.read_depth(out).pixel_format.fourcc == "fdis"
    as_depth = gpu_depth.read_depth(out, kind="depth")
    assert as_depth.pixel_format.fourcc == "fdep"
    assert np.allclose(as_depth.array, 1.0 / depth.array.astype(np.float64), rtol=1e-3)


def test_the_api_refuses_to_turn_a_jpeg_into_a_dng(tmp_path):
    from PIL import Image

    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(photo)
    with pytest.raises(DepthError):
        gpu_depth.attach_depth(photo, depth_map(), tmp_path / "out.dng")


@pytest.fixture(scope="module")
def attached() -> tuple[bytes, list[int]]:
    """A DNG with a depth map, and the byte positions of its header and of every IFD's entries."""
    data = dng.attach_depth(make_dng("cfa-and-preview-subifds", ">"), depth_map())
    positions = list(range(8))
    for ifd in TiffFile(data).walk():
        positions += range(ifd.offset, ifd.offset + 2 + 12 * len(ifd.entries) + 4)
    return data, positions


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_ifds_raise_only_depth_error(attached, data):
    original, positions = attached
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 6))):
        mutated[data.draw(st.sampled_from(positions))] = data.draw(st.integers(0, 255))
    for call in (dng.read_depth, lambda b: dng.attach_depth(b, depth_map(shape=(4, 4)), replace=True)):
        try:
            call(bytes(mutated))
        except DepthError:
            pass


def test_padded_rows_are_stored_without_their_padding():
    depth = DepthData.from_array(depth_map(shape=(48, 60)).array.astype(np.float64), "fdep", row_alignment=256)
    assert depth.bytes_per_row > depth.width * 4
    back = dng.read_depth(dng.attach_depth(make_dng(), depth))
    assert back.bytes_per_row == depth.width * 4
    assert np.allclose(back.array, depth.array, rtol=1e-4)


def test_the_api_names_a_plain_tiff_as_not_a_dng(tmp_path):
    photo = tmp_path / "scan.tif"
    tifffile.imwrite(photo, np.zeros((4, 4), np.uint8))
    with pytest.raises(DepthError, match=r"scan\.tif: a TIFF without DNGVersion in IFD0 is not a DNG"):
        gpu_depth.read_depth(photo)
    with pytest.raises(DepthError, match="not a DNG"):
        gpu_depth.attach_depth(photo, depth_map(), tmp_path / "out.tif")


def tifffile_depth_dng(byteorder: str, codes: np.ndarray, **options) -> bytes:
    """A DNG whose depth IFD tifffile wrote (DepthFormat linear, 0.5 m to 5 m)."""
    depth_tags = [(51177, "H", 1, 1, True), (51178, "2I", 1, (1, 2), True), (51179, "2I", 1, (5, 1), True)]
    stream = io.BytesIO()
    with tifffile.TiffWriter(stream, byteorder=byteorder) as tif:
        tags = [(50706, "B", 4, (1, 5, 0, 0), True), *depth_tags]
        tif.write(np.zeros((8, 8, 3), np.uint8), photometric="rgb", subfiletype=1, subifds=1, extratags=tags)
        tif.write(codes, photometric=51177, subfiletype=8, **options)
    return stream.getvalue()


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize(
    "options",
    [{}, {"compression": "zlib"}, {"compression": "zlib", "predictor": True}, {"tile": (16, 32)}],
    ids=["plain", "deflate", "deflate-predictor", "tiled"],
)
@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_depth_maps_written_by_tifffile_are_read(byteorder, options, dtype):
    top = np.iinfo(dtype).max
    codes = (np.random.default_rng(3).integers(0, top + 1, (40, 72))).astype(dtype)
    back = dng.read_depth(tifffile_depth_dng(byteorder, codes, **options))
    assert back.pixel_format.fourcc == "fdep"
    assert np.allclose(back.array, 0.5 + codes / top * 4.5, rtol=1e-6)


def test_bad_deflate_data_is_refused():
    data = bytearray(tifffile_depth_dng("<", np.zeros((40, 72), np.uint16), compression="zlib"))
    _, found = depth_ifd(bytes(data))
    (offset,) = TiffFile(bytes(data)).integers(found, 273)
    data[offset : offset + 4] = b"\xff\xff\xff\xff"
    with pytest.raises(DepthError, match="bad Deflate data"):
        dng.read_depth(bytes(data))


def test_deflate_stops_at_the_size_the_map_needs():
    codes = np.zeros((40, 72), np.uint16)
    data = bytearray(tifffile_depth_dng("<", codes, compression="zlib"))
    _, found = depth_ifd(bytes(data))
    put(data, entry_position(found, 257) + 8, "I", 20)  # the strip inflates to twice what 20 rows need
    assert dng.read_depth(bytes(data)).height == 20


def test_new_data_goes_after_every_range_a_truncated_dng_claims():
    """A truncated ProRAW's preview strip claims bytes past its end; the depth strips were put there."""
    data = bytearray(make_dng())
    tiff = TiffFile(bytes(data))
    ifd0 = tiff.walk()[0]
    (offset,) = tiff.integers(ifd0, 273)
    claimed = len(data) + 5000
    assert ifd0.entries[279].type == 4 and ifd0.entries[279].count == 1
    struct.pack_into("<I", data, entry_position(ifd0, 279) + 8, claimed - offset)
    out = dng.attach_depth(bytes(data), depth_map())
    tiff, found = depth_ifd(out)
    assert min(tiff.integers(found, 273)) >= claimed and found.offset >= claimed
    assert np.allclose(dng.read_depth(out).array, depth_map().array, rtol=1e-3)
    assert out[8 : len(data)] == bytes(data)[8:]  # every input byte kept but the header's IFD0 offset
