"""HEIC depth: attach without re-encoding, read ours and iPhone files, checked with pillow-heif."""

from __future__ import annotations

import io
import struct

import imagecodecs
import numpy as np
import pillow_heif
import pytest
from helpers import sample
from helpers.heic import with_jpeg_depth
from helpers.verify import problems
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

import gpu_depth
from gpu_depth import DepthData, DepthMapping, DepthMetadata
from gpu_depth.containers.heic import isobmff
from gpu_depth.containers.heic import plugin as heic
from gpu_depth.containers.heic.depth_sei import DepthRepresentation, build_aux_subtype, parse_aux_subtype
from gpu_depth.core.formats import StoredFormat
from gpu_depth.core.quantize import dequantize, quantize
from gpu_depth.core.xmp import parse_depth_xmp
from gpu_depth.errors import DepthError
from gpu_depth.verify import verify_bytes

FAST = {"quality": 60, "enc_params": {"preset": "ultrafast"}}
#: The auxC subtype of the disparity item in iphone13pro-pug.heic (depth-formats.md §1.3).
APPLE_SEI = bytes.fromhex("000000110000000d4e01b109351f7bfc010bc62020")


def encode(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, **FAST, **options)
    return buffer.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def photo() -> bytes:
    return encode(noise(192, 144))


@pytest.fixture(scope="module")
def grid_photo() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the grid gets an irot the depth item must share
    return encode(noise(256, 192, 1), tile_size=64, exif=exif.tobytes())


def depth_map(fmt: str = "hdis", width: int = 96, height: int = 72) -> DepthData:
    y, x = np.mgrid[0:height, 0:width]
    values = 0.4 + 2.5 * x / width + 0.3 * np.sin(y / 5.0)
    if not fmt.endswith("dis"):
        values = 1 / values
    metadata = DepthMetadata(
        accuracy="absolute",
        calibration=gpu_depth.CameraCalibration(((1000.0, 0, 96), (0, 1000.0, 72), (0, 0, 1)), (192, 144)),
    )
    return DepthData.from_array(values, fmt, metadata=metadata)


def decode(data: bytes) -> pillow_heif.HeifFile:
    return pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False)


def step_tolerance(depth: DepthData) -> np.ndarray:
    """Half a quantisation step plus half a unit in the last place of the output format."""
    info = quantize(depth).info
    half_step = (info.float_max - info.float_min) / info.int_max / 2
    values = depth.array.astype(np.float64)
    return half_step + np.spacing(np.abs(values).astype(depth.pixel_format.dtype)).astype(np.float64)


# ----------------------------------------------------------------------------------------------- pillow-heif


@pytest.mark.parametrize("fmt", ["hdis", "fdep"])
def test_pillow_heif_sees_the_depth_image(photo, fmt):
    depth = depth_map(fmt)
    out = heic.attach_depth(photo, depth)
    depth_images = decode(out).info["depth_images"]
    assert len(depth_images) == 1
    assert depth_images[0].size == (96, 72)
    info = quantize(depth).info
    sei = depth_images[0].info["metadata"]
    if fmt == "hdis":
        assert (sei["representation_type"], sei["d_min"], sei["d_max"]) == (1, info.float_min, info.float_max)
    else:
        assert (sei["representation_type"], sei["z_near"], sei["z_far"]) == (2, info.float_min, info.float_max)
    assert np.array_equal(np.asarray(depth_images[0]), quantize(depth).pixels)


@pytest.mark.parametrize("name", ["photo", "grid_photo"])
def test_photo_items_kept_byte_identical_and_pixels_unchanged(request, name):
    data = request.getfixturevalue(name)
    out = heic.attach_depth(data, depth_map())
    before, after = isobmff.parse_file(data), isobmff.parse_file(out)
    for item in before.meta.items:
        assert isobmff.item_data(after, item.item_id) == isobmff.item_data(before, item.item_id)
        assert after.meta.item_properties(item.item_id) == before.meta.item_properties(item.item_id)
        assert after.meta.item(item.item_id).to_bytes() == item.to_bytes()
    assert after.meta.idat == before.meta.idat
    assert np.array_equal(np.asarray(decode(out)), np.asarray(decode(data)))


def test_grid_depth_refers_to_the_grid_and_shares_its_rotation(grid_photo):
    out = heic.attach_depth(grid_photo, depth_map())
    meta = isobmff.parse_file(out).meta
    grid = meta.primary
    assert meta.item(grid).item_type == "grid"
    depth_id = heic.find_depth_item(meta)
    assert meta.referenced("auxl", depth_id) == [grid]
    irot = [index for index, _ in meta.associations[grid] if meta.property_type(index) == "irot"]
    assert irot and irot[0] in [index for index, _ in meta.associations[depth_id]]
    # readers that apply irot turn the depth map with the photo
    assert decode(out).info["depth_images"][0].size == (72, 96)


def test_depth_item_matches_the_iphone_item_graph(grid_photo):
    """Item 54 of iphone13pro-pug.heic: same item kind, flags, property kinds/essential flags and irefs."""
    iphone = isobmff.parse_file(sample("iphone13pro-pug.heic").read_bytes())
    ours = isobmff.parse_file(heic.attach_depth(grid_photo, depth_map()))

    def shape(meta: isobmff.Meta, depth_id: int) -> tuple:
        item = meta.item(depth_id)
        (hvcc,) = [raw[8:] for kind, raw, _ in meta.item_properties(depth_id) if kind == "hvcC"]
        (pixi,) = [raw[12:] for kind, raw, _ in meta.item_properties(depth_id) if kind == "pixi"]
        coding = (hvcc[1] & 0x1F, hvcc[16] & 3, (hvcc[17] & 7) + 8, pixi)  # profile 4, 4:0:0, 8 bit, [8]
        (xmp_id,) = meta.referencing("cdsc", depth_id)
        xmp = meta.item(xmp_id)
        refs = sorted(
            (r.kind, r.from_id == depth_id, meta.item(r.to_ids[0]).item_type)
            for r in meta.references
            if depth_id in (r.from_id, *r.to_ids)
        )
        return (
            item.item_type,
            item.flags,
            coding,
            [(kind, essential) for kind, _, essential in meta.item_properties(depth_id)],
            heic._aux_type(meta, depth_id)[0],
            refs,
            (xmp.item_type, xmp.flags, xmp.content_type),
            meta.referenced("auxl", depth_id) == [meta.primary],
        )

    assert heic.find_depth_item(iphone.meta) == 54
    assert shape(ours.meta, heic.find_depth_item(ours.meta)) == shape(iphone.meta, 54)


# ----------------------------------------------------------------------------------------------- reading


def test_read_iphone_disparity():
    data = sample("iphone13pro-pug.heic").read_bytes()
    depth = heic.read_depth(data)
    assert (depth.pixel_format.fourcc, depth.width, depth.height) == ("hdis", 768, 576)
    pixels = np.asarray(decode(data).info["depth_images"][0]).astype(np.float64)
    expected = 1.498047 + pixels * (4.382812 - 1.498047) / 255
    assert np.array_equal(depth.array, expected.astype(np.float16))
    calibration = depth.metadata.calibration
    assert calibration.reference_dimensions == (4032, 3024)
    assert calibration.intrinsic_matrix[0][0] == pytest.approx(3032.594, abs=1e-3)
    assert calibration.intrinsic_matrix[0][2] == pytest.approx(1988.45, abs=1e-2)
    assert calibration.pixel_size == pytest.approx(0.0019)
    assert (depth.metadata.accuracy, depth.metadata.version) == ("relative", 65541)


def test_no_depth_gives_none_and_gain_maps_are_not_depth(photo):
    assert heic.read_depth(photo) is None
    data = sample("iphone13pro-pug.heic").read_bytes()
    parsed = isobmff.parse_file(data)
    parsed.meta.remove_items({54, 55})  # left: the HDR gain map aux item 52 with its XMP 53
    stripped = isobmff.rebuild(parsed, parsed.meta)
    assert heic._aux_type(isobmff.parse_file(stripped).meta, 52)[0] == "urn:com:apple:photo:2020:aux:hdrgainmap"
    assert heic.read_depth(stripped) is None


@pytest.mark.parametrize("fmt", ["hdis", "fdis", "hdep", "fdep"])
def test_round_trip_convert_attach_read(tmp_path, fmt):
    gray = np.linspace(0, 1, 80 * 60).reshape(60, 80) ** 2
    depth = gpu_depth.convert(gray, fmt, DepthMapping("apple-gray", near=0.5, far=6.0))
    src = tmp_path / "photo.heic"
    src.write_bytes(encode(noise(160, 120, 2)))
    out = gpu_depth.attach_depth(src, depth, tmp_path / "out.heic")
    back = gpu_depth.read_depth(out)
    assert (back.pixel_format, back.width, back.height, back.metadata) == (
        depth.pixel_format,
        depth.width,
        depth.height,
        depth.metadata.for_writing(),
    )
    error = np.abs(back.array.astype(np.float64) - depth.array.astype(np.float64))
    assert (error <= step_tolerance(depth)).all()


def test_sei_is_the_fallback_without_xmp(photo):
    depth = depth_map("fdis")
    out = heic.attach_depth(photo, depth)
    parsed = isobmff.parse_file(out)
    depth_id = heic.find_depth_item(parsed.meta)
    parsed.meta.remove_items({heic.xmp_item(parsed.meta, depth_id)})
    back = heic.read_depth(isobmff.rebuild(parsed, parsed.meta))
    assert back.pixel_format.fourcc == "hdis"  # no XMP: native format unknown, half precision
    with_xmp = heic.read_depth(out)
    assert np.array_equal(back.array, with_xmp.array.astype(np.float16))


# ----------------------------------------------------------------------------------------------- replace


def test_existing_depth_is_an_error_unless_replaced(photo):
    first = heic.attach_depth(photo, depth_map("hdis"))
    with pytest.raises(DepthError, match=r"already has a depth item \(\d+\)$"):
        heic.attach_depth(first, depth_map("hdep"))
    second = heic.attach_depth(first, depth_map("hdep", 64, 48), replace=True)
    meta = isobmff.parse_file(second).meta
    assert len(heic.depth_items(meta)) == 1
    xmp_items = [i for i in meta.items if i.item_type == "mime"]
    assert len(xmp_items) == 1
    back = heic.read_depth(second)
    assert (back.pixel_format.fourcc, back.width) == ("hdep", 64)
    assert len(decode(second).info["depth_images"]) == 1


def test_replace_iphone_depth_keeps_everything_else():
    data = sample("iphone13pro-pug.heic").read_bytes()
    out = heic.attach_depth(data, depth_map("hdis"), replace=True)
    before, after = isobmff.parse_file(data), isobmff.parse_file(out)
    assert heic.depth_items(after.meta) == [54]  # the freed ids are reused: 54 depth, 55 its XMP
    assert after.meta.referenced("cdsc", 55) == [54]
    assert isobmff.item_data(after, 54) != isobmff.item_data(before, 54)
    for item in before.meta.items:
        if item.item_id not in (54, 55):
            assert isobmff.item_data(after, item.item_id) == isobmff.item_data(before, item.item_id)
    assert heic.read_depth(out).width == 96
    assert list(decode(out).info["aux"]) == ["urn:com:apple:photo:2020:aux:hdrgainmap"]


# ----------------------------------------------------------------------------------------------- other photos


def test_a_motion_photo_keeps_its_video_and_trailer_at_the_end(photo):
    """Samsung's Motion Photo HEICs end with an ``mpvd`` box (the video, which readers find from the end of
    the file by its XMP's Item:Length) and a ``sefd`` box (the SEFT trailer, read from the last bytes)."""
    tail = isobmff.box_bytes("mpvd", b"\0\0\0\x18ftypmp42" + bytes(64)) + isobmff.box_bytes("sefd", b"SEFH..SEFT")
    for out in (
        (first := heic.attach_depth(photo + tail, depth_map())),
        heic.attach_depth(first, depth_map("hdep", 64, 48), replace=True),
    ):
        assert out.endswith(tail)
        assert [b.type for b in isobmff.parse_file(out).boxes][-2:] == ["mpvd", "sefd"]
        assert len(decode(out).info["depth_images"]) == 1
        assert not problems(verify_bytes(out))


def test_jpeg_photo_becomes_heic_keeping_exif_icc_and_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "gpu_depth test"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "photo.jpg"
    noise(160, 120, 3).save(src, exif=exif.tobytes(), icc_profile=icc, quality=95)
    out = gpu_depth.attach_depth(src, depth_map(), tmp_path / "out.heic", quality=70, encoder_preset="ultrafast")
    result = decode(out.read_bytes())
    assert result.size == (120, 160)  # turned by the irot written for orientation 6
    assert result.info["icc_profile"] == icc
    read_exif = Image.Exif()
    read_exif.load(result.info["exif"])
    assert read_exif[0x010F] == "gpu_depth test"
    assert len(result.info["depth_images"]) == 1


# ----------------------------------------------------------------------------------------------- hostile files


def test_hostile_heic_bytes(photo):
    with_depth = heic.attach_depth(photo, depth_map())
    with pytest.raises(DepthError, match=r"runs past the end of file"):
        heic.read_depth(with_depth[: len(with_depth) // 2])
    grown = bytearray(with_depth)
    iinf_at = with_depth.index(b"iinf") - 4
    grown[iinf_at : iinf_at + 4] = struct.pack(">I", 10**6)
    with pytest.raises(DepthError, match=r"'iinf' box at offset \d+: size 1000000 runs past the end of 'meta' box"):
        heic.read_depth(bytes(grown))
    parsed = isobmff.parse_file(with_depth)
    depth_id = heic.find_depth_item(parsed.meta)
    parsed.meta.locations[depth_id].extents[0].length = 1 << 40
    with pytest.raises(DepthError, match=rf"iloc: item {depth_id} extent .* does not lie inside one top-level box"):
        isobmff.rebuild(parsed, parsed.meta)
    # written as if it were new data, the bad extent reaches the file: reading it is refused
    hostile = isobmff.rebuild(parsed, parsed.meta, b"", frozenset({depth_id}))
    with pytest.raises(DepthError, match=rf"iloc: item {depth_id} extent \d+\+1099511627776 runs past the end"):
        heic.read_depth(hostile)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_heic_raises_only_depth_error(photo, data):
    original = heic.attach_depth(photo, depth_map("hdis", 32, 24))
    mutated = bytearray(original)
    tables_end = original.index(b"mdat")
    for _ in range(data.draw(st.integers(1, 3))):
        mutated[data.draw(st.integers(0, tables_end))] = data.draw(st.integers(0, 255))
    try:
        heic.read_depth(bytes(mutated))
        heic.attach_depth(bytes(mutated), depth_map("hdis", 32, 24), replace=True)
    except DepthError:
        pass


def test_accept():
    assert heic.accept(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic")
    assert heic.accept(b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic")
    assert not heic.accept(b"\0\0\0\x18ftypavif\0\0\0\0avifmiaf")
    assert not heic.accept(b"\xff\xd8\xff\xe0")


# ----------------------------------------------------------------------------------------------- SEI


def test_sei_matches_apple_bytes():
    representation = parse_aux_subtype(APPLE_SEI)
    assert representation == DepthRepresentation(1, d_min=1.498046875, d_max=4.3828125)
    assert build_aux_subtype(representation) == APPLE_SEI


@pytest.mark.parametrize(
    "representation",
    [DepthRepresentation(2, z_near=0.0, z_far=3.5), DepthRepresentation(1, d_min=-0.25, d_max=65504.0)],
)
def test_sei_round_trip(representation):
    assert parse_aux_subtype(build_aux_subtype(representation)) == representation


@pytest.mark.parametrize(
    ("subtype", "message"),
    [
        (APPLE_SEI[:-3], r"lengths 17/13 do not fit"),
        (APPLE_SEI[:8] + b"\x08" + APPLE_SEI[9:], r"NAL type 4 is not an SEI"),
        (APPLE_SEI[:11] + b"\x7f" + APPLE_SEI[12:], r"payloadSize 127 runs past"),
        (APPLE_SEI[:12] + bytes(9), r"Exp-Golomb code too long"),
        (APPLE_SEI[:11] + b"\x03" + APPLE_SEI[12:], r"truncated payload"),
    ],
)
def test_hostile_sei(subtype, message):
    assert parse_aux_subtype(APPLE_SEI[:10] + b"\x05" + APPLE_SEI[11:]) is None  # another SEI payload type
    with pytest.raises(DepthError, match=message):
        parse_aux_subtype(subtype)


def test_unrepresentable_sei_bound():
    with pytest.raises(DepthError, match="not representable"):
        build_aux_subtype(DepthRepresentation(1, d_min=0.1, d_max=1.0))


# ----------------------------------------------------------------------------------------------- wide tables


def test_attach_past_127_properties_switches_to_15_bit_indices(photo, monkeypatch):
    monkeypatch.setattr(pillow_heif.options, "DISABLE_SECURITY_LIMITS", True)  # libheif allows 100 in ipco
    parsed = isobmff.parse_file(photo)
    for index in range(isobmff.SHORT_INDEX_MAX - len(parsed.meta.properties)):
        parsed.meta.add_property(isobmff.full_box_bytes("udes", 0, 0, b"\0\0\0" + bytes([index])))
    crowded = isobmff.rebuild(parsed, parsed.meta)
    out = heic.attach_depth(crowded, depth_map())
    meta = isobmff.parse_file(out).meta
    assert len(meta.properties) > isobmff.SHORT_INDEX_MAX
    assert max(index for index, _ in meta.associations[heic.find_depth_item(meta)]) > isobmff.SHORT_INDEX_MAX
    result = decode(out)
    assert np.array_equal(np.asarray(result), np.asarray(decode(photo)))
    assert np.array_equal(np.asarray(result.info["depth_images"][0]), quantize(depth_map()).pixels)


def test_attach_with_32_bit_item_ids(grid_photo):
    parsed = isobmff.parse_file(grid_photo)
    meta, shift = parsed.meta, 100_000
    for item in meta.items:
        item.item_id, item.raw = item.item_id + shift, None
    meta.primary += shift
    meta.locations = {
        i + shift: isobmff.Location(i + shift, loc.method, 0, loc.extents) for i, loc in meta.locations.items()
    }
    meta.associations = {i + shift: entries for i, entries in meta.associations.items()}
    for ref in meta.references:
        ref.from_id, ref.to_ids = ref.from_id + shift, [i + shift for i in ref.to_ids]
    wide = isobmff.rebuild(parsed, meta)
    out = heic.attach_depth(wide, depth_map())
    parsed_out = isobmff.parse_file(out)
    depth_id = heic.find_depth_item(parsed_out.meta)
    assert depth_id > isobmff.U16_MAX and parsed_out.meta.referenced("auxl", depth_id) == [meta.primary]
    result = decode(out)
    assert np.array_equal(np.asarray(result), np.asarray(decode(grid_photo)))
    assert heic.read_depth(out) == heic.read_depth(heic.attach_depth(grid_photo, depth_map()))


def test_lossy_depth_like_the_iphone(photo):
    depth = depth_map()
    lossless = heic.attach_depth(photo, depth)
    lossy = heic.attach_depth(photo, depth, depth_quality=50)
    assert len(lossy) < len(lossless)
    codes = np.asarray(decode(lossy).info["depth_images"][0]).astype(int)
    assert np.abs(codes - quantize(depth).pixels).mean() < 2
    with pytest.raises(DepthError, match="depth_quality must be -1"):
        heic.attach_depth(photo, depth, depth_quality=101)


def test_png_with_alpha_keeps_its_alpha_aux_item_apart_from_depth(tmp_path):
    src = tmp_path / "photo.png"
    noise(64, 48, 4).convert("RGBA").save(src)
    out = gpu_depth.attach_depth(src, depth_map(), tmp_path / "out.heic", quality=70, encoder_preset="ultrafast")
    meta = isobmff.parse_file(out.read_bytes()).meta
    aux = {heic._aux_type(meta, item.item_id)[0] for item in meta.items} - {None}
    assert len(aux) == 2 and heic.DEPTH_URN in aux  # the alpha plane and the depth
    assert decode(out.read_bytes()).has_alpha
    assert gpu_depth.read_depth(out) == heic.read_depth(heic.attach_depth(encode(noise(64, 48)), depth_map()))


def sei_subtype(payload_type: bytes, payload_size: bytes, payload: bytes) -> bytes:
    nal = bytes((39 << 1, 1)) + payload_type + payload_size + payload
    return struct.pack(">II", 4 + len(nal), len(nal)) + nal


def test_sei_header_runs_of_0xff_are_counted_in_one_step():
    """payloadType/payloadSize are 0xFF runs plus a last byte; a run may fill the box (was a Python loop)."""
    rep = DepthRepresentation(1, d_min=0.5, d_max=2.0)
    payload = build_aux_subtype(rep)[12:]
    padded = payload + bytes(300 - len(payload))  # payloadSize 300 = 0xFF 0x2D
    assert parse_aux_subtype(sei_subtype(b"\xb1", b"\xff\x2d", padded)) == rep
    assert parse_aux_subtype(sei_subtype(b"\xff" * 5_000_000 + b"\x01", b"\x00", b"")) is None
    with pytest.raises(DepthError, match="truncated payload header"):
        parse_aux_subtype(sei_subtype(b"\xb1", b"\xff" * 1000, b""))


@pytest.mark.parametrize("container", ["ipco", "iinf"])
def test_a_last_box_of_size_0_keeps_what_attach_adds_after_it(photo, container):
    """A size-0 box runs to the end of its parent: kept verbatim, it swallowed the property or item info
    attach_depth appends after it, and the file written did not read back (attach fuzz finding)."""
    data = bytearray(photo)
    heif_file = isobmff.parse_file(bytes(data))
    parent = next(b for b in _all_boxes(bytes(data), heif_file.meta_box) if b.type == container)
    last = isobmff.read_boxes(bytes(data), parent.start + (6 if container == "iinf" else 0), parent.end)[-1]
    struct.pack_into(">I", data, last.offset, 0)
    depth = DepthData.from_array(np.linspace(0.5, 2.0, 12).reshape(3, 4), "hdis")
    back = heic.read_depth(heic.attach_depth(bytes(data), depth))
    assert back is not None and (back.width, back.height) == (4, 3)


def _all_boxes(data: bytes, meta: isobmff.Box) -> list[isobmff.Box]:
    children = isobmff.read_boxes(data, meta.start + 4, meta.end)
    iprp = next(b for b in children if b.type == "iprp")
    return children + isobmff.read_boxes(data, iprp.start, iprp.end)


def test_attach_to_a_meta_without_iprp_writes_the_depth_items_properties(photo):
    """Without an iprp in the photo the new properties were never written (attach fuzz finding)."""
    data = bytearray(photo)
    iprp = next(b for b in _all_boxes(bytes(data), isobmff.parse_file(bytes(data)).meta_box) if b.type == "iprp")
    data[iprp.offset + 4 : iprp.offset + 8] = b"free"
    depth = DepthData.from_array(np.linspace(0.5, 2.0, 12).reshape(3, 4), "hdis")
    back = heic.read_depth(heic.attach_depth(bytes(data), depth))
    assert back is not None and (back.width, back.height) == (4, 3)


def test_a_stale_reference_does_not_latch_onto_the_new_depth_item(photo):
    """An XMP item whose cdsc names a missing item, the next free ID: attach gave the new depth item that
    ID, the stale XMP became the first one describing it and the file did not read back (attach fuzz)."""
    parsed = isobmff.parse_file(photo)
    meta = parsed.meta
    (xmp_id,) = meta.new_item_ids(1)
    meta.items.append(isobmff.ItemInfo(xmp_id, "mime", 1, content_type=heic.XMP_MIME))
    meta.locations[xmp_id] = isobmff.Location(xmp_id, extents=[isobmff.Extent(0, 8)])
    meta.references.append(isobmff.Reference("cdsc", xmp_id, [xmp_id + 1]))
    if "iref" not in meta.order:
        meta.order.insert(meta.order.index("iinf") + 1, "iref")
    hostile = isobmff.rebuild(parsed, meta, b"<broken ", frozenset({xmp_id}))
    depth = DepthData.from_array(np.linspace(0.5, 2.0, 12).reshape(3, 4), "hdis")
    out = heic.attach_depth(hostile, depth)
    assert heic.find_depth_item(isobmff.parse_file(out).meta) == xmp_id + 2
    assert heic.read_depth(out).width == 4


@pytest.mark.parametrize("largest", [0xFFFFFFFF, 0xFFFFFFFE])
def test_attach_beside_an_item_of_the_largest_ids_takes_free_ones(photo, largest):
    """An item ID 0xFFFFFFFF made attach fail with "iloc: an offset exceeds 64 bits" (its new IDs overflowed)."""
    parsed = isobmff.parse_file(photo)
    meta = parsed.meta
    meta.items.append(isobmff.ItemInfo(largest, "mime", 1, content_type="text/plain"))
    meta.locations[largest] = isobmff.Location(largest, extents=[isobmff.Extent(0, 5)])
    odd = isobmff.rebuild(parsed, meta, b"notes", frozenset({largest}))
    depth = DepthData.from_array(np.linspace(0.5, 2.0, 12).reshape(3, 4), "hdis")
    out = heic.attach_depth(odd, depth)
    depth_id = heic.find_depth_item(isobmff.parse_file(out).meta)
    assert depth_id < largest and heic.read_depth(out).width == 4
    assert isobmff.item_data(isobmff.parse_file(out), largest, 100) == b"notes"


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("fmt", ["hdis", "fdep"])
def test_reads_a_16_bit_lossless_jpeg_depth_item(photo, fmt, split):
    depth = depth_map(fmt)
    data = with_jpeg_depth(heic.attach_depth(photo, depth), depth, split)
    assert isobmff.parse_file(data).meta.item(heic.find_depth_item(isobmff.parse_file(data).meta)).item_type == "jpeg"
    back = heic.read_depth(data)
    info = quantize(depth, StoredFormat.L016).info
    half_step = (info.float_max - info.float_min) / 65535 / 2
    assert (back.pixel_format, back.width, back.height, back.metadata) == (
        depth.pixel_format,
        depth.width,
        depth.height,
        depth.metadata.for_writing(),
    )
    error = np.abs(back.array.astype(np.float64) - depth.array)
    assert error.max() <= half_step + float(np.finfo(depth.pixel_format.dtype).eps) * info.float_max


def test_a_broken_jpeg_depth_item_is_one_line(photo):
    depth = depth_map()
    data = with_jpeg_depth(heic.attach_depth(photo, depth), depth, split=True)
    meta = isobmff.parse_file(data).meta
    jpgc = next(raw for kind, raw, _ in meta.item_properties(heic.find_depth_item(meta)) if kind == "jpgC")
    broken = data.replace(jpgc, jpgc[:8] + b"\0" * (len(jpgc) - 8))  # headers gone: no SOI where JPEG starts
    with pytest.raises(DepthError, match=r"depth item \d+ \(JPEG\): no JPEG SOI marker at offset 0"):
        heic.read_depth(broken)


def item_graph(data: bytes) -> dict:
    """A HEIC's items (id, type, flags, content type), primary, references and each item's properties
    (type, essential, bytes) in ipma order: everything but the items' data and where it lies."""
    meta = isobmff.parse_file(data).meta
    return {
        "items": [(i.item_id, i.item_type, i.flags, i.content_type) for i in meta.items],
        "primary": meta.primary,
        "references": sorted((r.kind, r.from_id, tuple(r.to_ids)) for r in meta.references),
        "properties": {
            item_id: [(meta.property_type(i), essential, meta.properties[i - 1]) for i, essential in entries]
            for item_id, entries in meta.associations.items()
        },
    }


@pytest.mark.parametrize("source", ["photo", "grid_photo"])
def test_a_jpeg_depth_item_has_the_hevc_layout_but_for_its_type_and_coding_properties(request, source):
    photo = request.getfixturevalue(source)
    depth = depth_map("hdis")
    hevc_file = heic.attach_depth(photo, depth)
    depth_id = heic.find_depth_item(isobmff.parse_file(hevc_file).meta)
    hevc, jpeg = item_graph(hevc_file), item_graph(heic.attach_depth(photo, depth, depth_codec="jpeg"))
    as_jpeg = [(i, "jpeg" if i == depth_id else kind, flags, ct) for i, kind, flags, ct in hevc["items"]]
    assert jpeg["items"] == as_jpeg and jpeg["primary"] == hevc["primary"]
    assert jpeg["references"] == hevc["references"]
    assert {k: v for k, v in jpeg["properties"].items() if k != depth_id} == {
        k: v for k, v in hevc["properties"].items() if k != depth_id
    }
    # the codec property: no hvcC, and the pixi says 16 bits where the HEVC map has 8
    pixi = {isobmff.full_box_bytes("pixi", 0, 0, bytes([1, 8])): isobmff.full_box_bytes("pixi", 0, 0, bytes([1, 16]))}
    expected = [(k, e, pixi.get(raw, raw)) for k, e, raw in hevc["properties"][depth_id] if k != "hvcC"]
    assert jpeg["properties"][depth_id] == expected
    assert [k for k, _, _ in expected][:2] == ["ispe", "irot" if source == "grid_photo" else "pixi"]


@pytest.mark.parametrize("fmt", ["hdis", "fdis", "hdep", "fdep", "holes"])
def test_a_jpeg_depth_item_reads_back_exactly_by_us_and_by_libjpeg_turbo(photo, fmt):
    depth = depth_map("fdep" if fmt == "holes" else fmt)
    if fmt == "holes":
        values = depth.array.copy()
        values[10:20, 30:50] = np.nan
        depth = DepthData.from_array(values, "fdep", metadata=depth.metadata)
    stored = quantize(depth, StoredFormat.L016)
    data = heic.attach_depth(photo, depth, depth_codec="jpeg")
    heif = isobmff.parse_file(data)
    depth_id = heic.find_depth_item(heif.meta)
    coded = bytes(isobmff.item_data(heif, depth_id))
    assert heif.meta.item(depth_id).item_type == "jpeg" and heif.meta.first_property(depth_id, "jpgC") is None
    assert coded[:2] == b"\xff\xd8" and b"\xff\xc3" in coded  # the whole JPEG, lossless (SOF3)
    assert np.array_equal(imagecodecs.ljpeg_decode(coded), stored.pixels)
    assert np.array_equal(imagecodecs.jpeg8_decode(coded), stored.pixels)
    assert np.array_equal(heic.decode_item(heif, depth_id), stored.pixels)
    info, _ = parse_depth_xmp(isobmff.item_data(heif, heic.xmp_item(heif.meta, depth_id)))
    assert info == stored.info and info.stored_format == StoredFormat.L016.code
    back = heic.read_depth(data)
    expected = dequantize(stored.pixels, stored.info, depth.metadata.for_writing())
    assert (back.pixel_format, back.metadata) == (depth.pixel_format, expected.metadata)
    assert np.array_equal(back.array, expected.array, equal_nan=True)
    assert np.isnan(back.array).sum() == np.isnan(depth.array).sum()


def test_a_jpeg_depth_item_verifies_clean_and_replaces_either_way(grid_photo):
    depth = depth_map("hdep")
    jpeg = heic.attach_depth(grid_photo, depth, depth_codec="jpeg")
    assert problems(verify_bytes(jpeg)) == []
    hevc = heic.attach_depth(jpeg, depth, replace=True)
    back = heic.attach_depth(hevc, depth, replace=True, depth_codec="jpeg")
    for data, kind in ((hevc, "hvc1"), (back, "jpeg")):
        meta = isobmff.parse_file(data).meta
        assert [meta.item(i).item_type for i in heic.depth_items(meta)] == [kind]
        assert problems(verify_bytes(data)) == []
    assert back == jpeg  # replacing leaves the file as if the HEVC map had never been there


def test_jpeg_depth_item_options_are_checked(photo):
    depth = depth_map()
    with pytest.raises(DepthError, match=r"unknown HEIC depth codec 'av1'.*--heic-depth-codec"):
        heic.attach_depth(photo, depth, depth_codec="av1")
    with pytest.raises(DepthError, match="always 16-bit lossless; depth_quality 80"):
        heic.attach_depth(photo, depth, depth_codec="jpeg", depth_quality=80)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_jpeg_depth_items_raise_only_depth_error(photo, data):
    depth = depth_map("hdis", 32, 24)
    original = with_jpeg_depth(heic.attach_depth(photo, depth), depth, split=data.draw(st.booleans()))
    mutated = bytearray(original)
    tail = max(0, len(original) - 2048)  # the appended JPEG and XMP
    for _ in range(data.draw(st.integers(1, 4))):  # tables and jpgC headers, or the coded data
        at = data.draw(st.one_of(st.integers(0, len(original) - 1), st.integers(tail, len(original) - 1)))
        mutated[at] = data.draw(st.integers(0, 255))
    try:
        heic.read_depth(bytes(mutated))
    except DepthError:
        pass
