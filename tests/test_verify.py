"""gpu-depth verify: our outputs and iPhone files verify clean; each rule, broken once on purpose, is reported alone."""

import functools
import importlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import sample, tool
from helpers.heic import with_jpeg_depth
from helpers.verify import only, problems
from PIL import Image

from gpu_depth import DepthMapping, attach_depth, convert
from gpu_depth.cli.main import main
from gpu_depth.containers.heic import isobmff
from gpu_depth.containers.heic import plugin as heic
from gpu_depth.containers.heic.depth_sei import UNIFORM_DISPARITY, UNIFORM_Z, DepthRepresentation, build_aux_subtype
from gpu_depth.containers.jpeg import ljpeg, mpf
from gpu_depth.containers.jpeg import plugin as jpeg_plugin
from gpu_depth.containers.jpeg.segments import APP1, APP2, XMP_ID, parse_jpeg, segment
from gpu_depth.core.xmp import parse_depth_xmp
from gpu_depth.errors import DepthError
from gpu_depth.pipeline.example import FAR, NEAR, gray_depth, render
from gpu_depth.verify import verify, verify_bytes

PHOTO, MAP = (128, 96), (96, 72)  # sizes pillow-heif codes without padding (no clap)
PUG, IPHONE_JPEG = "iphone13pro-pug.heic", "iphoneX-image-with-depth.jpg"


@functools.cache
def ours(container: str, pixel_format: str = "hdis", orientation: int = 1, photo=PHOTO, scale=0.75, **options) -> bytes:
    """A photo with depth written by gpu_depth (convert + attach_depth), the map ``scale`` of its stored size."""
    rgb, _ = render(*photo)
    _, metres = render(*MAP)
    image = Image.fromarray(rgb)
    exif = image.getexif()
    if orientation != 1:
        exif[0x0112] = orientation
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "photo.jpg"
        image.save(source, quality=85, exif=exif)
        if container == "heic":
            source = source.with_suffix(".heic")
            source.write_bytes(heic.encode_photo(Image.open(source.with_suffix(".jpg")), encoder_preset="ultrafast"))
        width, height = stored_size(source.read_bytes())
        size = (round(width * scale), round(height * scale))
        depth = convert(gray_depth(metres), pixel_format, DepthMapping("apple-gray", near=NEAR, far=FAR), size=size)
        return attach_depth(source, depth, Path(folder) / f"out{source.suffix}", **options).read_bytes()


def stored_size(data: bytes) -> tuple[int, int]:
    """The primary image's size as stored (before irot/imir or Exif orientation)."""
    if not data.startswith(b"\xff\xd8"):
        meta = isobmff.parse_file(data).meta
        boxes = {kind: raw for kind, raw, _ in meta.item_properties(meta.primary)}
        if "clap" in boxes:  # pillow-heif pads small or odd sizes and crops them back with clap
            width_n, width_d, height_n, height_d = struct.unpack_from(">IIII", boxes["clap"], 8)
            return width_n // width_d, height_n // height_d
        return struct.unpack_from(">II", boxes["ispe"], 12)
    with Image.open(io.BytesIO(data)) as image:
        return image.size


# ----------------------------------------------------------------------------------------------- clean files


@pytest.mark.parametrize(
    "container, pixel_format, orientation",
    [("heic", "hdis", 1), ("heic", "hdep", 6), ("heic", "fdis", 8), ("jpeg", "hdis", 1), ("jpeg", "fdep", 6)],
)
def test_our_outputs_verify_clean(container, pixel_format, orientation):
    findings = verify_bytes(ours(container, pixel_format, orientation))
    assert problems(findings) == []
    rules = [f"{container}.{rule}" for rule in ("xmp-metadata", "portrait", "depth-found")]
    assert [f.rule for f in findings] == rules  # infos: no DepthDataVersion, and ImageIO's Portrait signals


def pipeline_outputs(folder: Path, photos: list[tuple[str, int]], container: str) -> list[Path]:
    """``gpu-depth convert`` of photos given as (suffix, Exif orientation), depth maps as displayed."""
    import pillow_heif

    (folder / "photos").mkdir()
    (folder / "depth").mkdir()
    for index, (suffix, orientation) in enumerate(photos):
        image = Image.fromarray(render(*PHOTO, shift=index / 3)[0])
        if suffix == "heic":
            pillow_heif.from_pillow(image).save(
                folder / "photos" / f"p{index}.heic", enc_params={"preset": "ultrafast"}
            )
        else:
            exif = image.getexif()
            exif[0x0112] = orientation
            image.save(folder / "photos" / f"p{index}.jpg", quality=85, exif=exif)
        shown = MAP if orientation == 1 else MAP[::-1]
        Image.fromarray(gray_depth(render(*shown, shift=index / 3)[1])).save(folder / "depth" / f"p{index}.png")
    args = ["--photos", folder / "photos", "--depth", folder / "depth", "--near", NEAR, "--far", FAR]
    args += ["--out", folder / "out", "--container", container, "--encoder-preset", "ultrafast"]
    assert main(["convert", "--quiet", "--workers", "1", *map(str, args)]) == 0
    return sorted((folder / "out").glob("p*.*"))


@pytest.mark.parametrize("container", ["same", "heic", "jpeg"])
def test_pipeline_outputs_verify_clean(tmp_path, container):
    outputs = pipeline_outputs(tmp_path, [("jpg", 1), ("heic", 1)], container)
    assert len(outputs) == 2
    for path in outputs:
        assert problems(verify(path)) == [], path


@pytest.mark.parametrize("container", ["same", "heic"])
def test_pipeline_outputs_of_rotated_photos_verify_clean(tmp_path, container):
    (output,) = pipeline_outputs(tmp_path, [("jpg", 6)], container)
    assert problems(verify(output)) == []


def test_small_heic_outputs_verify_clean():
    findings = verify_bytes(ours("heic", photo=(64, 48), scale=1))
    assert problems(findings) == []


def test_iphone_heic_verifies_clean():
    findings = verify(sample(PUG))
    assert problems(findings) == []
    infos = {f.rule: f for f in findings}
    assert infos["heic.depth-found"].where == "item 54"
    assert "768x576 disparity" in infos["heic.depth-found"].message
    assert "hdrgainmap" in infos["heic.aux-image"].message and infos["heic.aux-image"].where.startswith("item 52 ")


def test_iphone_jpeg_verifies_clean_with_apples_entry0_quirk_as_info():
    findings = verify(sample(IPHONE_JPEG))
    assert problems(findings) == []
    quirk = next(f for f in findings if f.rule == "jpeg.mpf-entry0")
    assert quirk.severity == "info" and "2558675" in quirk.message and "MP entry 0" in quirk.where
    found = next(f for f in findings if f.rule == "jpeg.depth-found")
    assert "576x768 disparity" in found.message and "offset 2570521" in found.where


# ----------------------------------------------------------------------------------------------- HEIC rules


def edit_heic(data: bytes, change, xmp: bytes | None = None) -> bytes:
    """``data`` with ``change(meta, depth_id, xmp_id)`` applied; ``xmp`` replaces the depth XMP item's bytes."""
    parsed = isobmff.parse_file(data)
    meta = parsed.meta
    depth_id = heic.find_depth_item(meta)
    xmp_id = meta.referencing("cdsc", depth_id)[0]
    change(meta, depth_id, xmp_id)
    if xmp is None:
        return isobmff.rebuild(parsed, meta)
    meta.locations[xmp_id] = isobmff.Location(xmp_id, extents=[isobmff.Extent(0, len(xmp))])
    return isobmff.rebuild(parsed, meta, xmp, frozenset({xmp_id}))


def set_property(meta, item_id: int, kind: str, raw: bytes | None) -> None:
    """Give one item its own ``kind`` property ``raw`` (None removes it; appended when it had none)."""
    entries = meta.associations[item_id]
    at = next((n for n, (index, _) in enumerate(entries) if meta.property_type(index) == kind), None)
    if raw is None:
        del entries[at]
    elif at is None:
        entries.append((meta.add_property(raw), True))
    else:
        entries[at] = (meta.add_property(raw), entries[at][1])


def auxc(urn: str, subtype: bytes) -> bytes:
    return isobmff.full_box_bytes("auxC", 0, 0, urn.encode() + b"\0" + subtype)


def sei(data: bytes) -> bytes:
    """The auxC subtype (SEI) of our file's depth item."""
    meta = isobmff.parse_file(data).meta
    raw = next(raw for kind, raw, _ in meta.item_properties(heic.find_depth_item(meta)) if kind == "auxC")
    return raw[12 + len(heic.DEPTH_URN) + 1 :]


def xmp_of(data: bytes) -> str:
    parsed = isobmff.parse_file(data)
    xmp_id = parsed.meta.referencing("cdsc", heic.find_depth_item(parsed.meta))[0]
    return isobmff.item_data(parsed, xmp_id).decode()


def hidden_off(meta, depth_id, _):
    item = meta.item(depth_id)
    item.flags, item.raw = 0, None


def as_av01(meta, depth_id, _):
    item = meta.item(depth_id)
    item.item_type, item.raw = "av01", None


def no_auxl(meta, *_):
    meta.references = [ref for ref in meta.references if ref.kind != "auxl"]


def no_cdsc(meta, *_):
    meta.references = [ref for ref in meta.references if ref.kind != "cdsc"]


def depth_data_is_xmp(meta, depth_id, xmp_id):
    meta.locations[depth_id] = meta.locations[xmp_id]


def no_depth(meta, depth_id, xmp_id):
    meta.remove_items({depth_id, xmp_id})


def with_auxc(urn, subtype=None):
    return lambda meta, depth_id, _: set_property(
        meta, depth_id, "auxC", auxc(urn, sei(ours("heic")) if subtype is None else subtype)
    )


def with_property(kind, raw):
    return lambda meta, depth_id, _: set_property(meta, depth_id, kind, raw)


def patched(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


def hvcc_of_depth(data: bytes) -> bytes:
    meta = isobmff.parse_file(data).meta
    return next(raw for kind, raw, _ in meta.item_properties(heic.find_depth_item(meta)) if kind == "hvcC")


def ispe(width, height):
    return isobmff.full_box_bytes("ispe", 0, 0, struct.pack(">II", width, height))


def with_sei(kind, **bounds):
    """An auxC with our URN and an SEI of ``kind`` whose bounds are our XMP's FloatMin/FloatMax (``low``/``high``)."""

    def change(meta, depth_id, xmp_id):
        info, _ = parse_depth_xmp(xmp_of(ours("heic")).encode())
        values = {name: {"low": info.float_min, "high": info.float_max}.get(v, v) for name, v in bounds.items()}
        set_property(
            meta, depth_id, "auxC", auxc(heic.DEPTH_URN, build_aux_subtype(DepthRepresentation(kind, **values)))
        )

    return change


HEIC_CASES = {
    "depth-missing": (no_depth, None, "error", "heic.depth-missing", "meta"),
    "depth-hidden": (hidden_off, None, "warning", "heic.depth-hidden", "item {d} infe"),
    "apple-private-urn": (
        with_auxc("urn:com:apple:photo:2018:aux:depth"),
        None,
        "error",
        "heic.auxc-urn",
        "item {d} auxC",
    ),
    "avif-urn": (
        with_auxc("urn:mpeg:mpegB:cicp:systems:auxiliary:depth"),
        None,
        "warning",
        "heic.auxc-urn",
        "item {d}",
    ),
    "sei-missing": (with_auxc(heic.DEPTH_URN, b""), None, "error", "heic.sei-missing", "item {d} auxC"),
    "sei-not-177": (
        lambda m, d, x: with_auxc(heic.DEPTH_URN, patched(sei(ours("heic")), 10, b"\xb0"))(m, d, x),
        None,
        "error",
        "heic.sei-invalid",
        "item {d} auxC",
    ),
    "sei-lengths": (
        lambda m, d, x: with_auxc(heic.DEPTH_URN, patched(sei(ours("heic")), 0, b"\0\0\1\0"))(m, d, x),
        None,
        "error",
        "heic.sei-invalid",
        "item {d} auxC",
    ),
    "sei-range": (
        with_sei(UNIFORM_DISPARITY, d_min="low", d_max=4.0),
        None,
        "warning",
        "heic.sei-range",
        "item {d} auxC",
    ),
    "sei-type": (
        with_sei(UNIFORM_Z, z_near="low", z_far="high"),
        None,
        "warning",
        "heic.sei-type",
        "item {d} auxC",
    ),
    "auxl-missing": (no_auxl, None, "error", "heic.auxl-target", "item {d} iref auxl"),
    "xmp-missing": (no_cdsc, None, "error", "heic.xmp-missing", "item {d} iref cdsc"),
    "xmp-fields": (lambda *_: None, "FloatMaxValue", "error", "heic.xmp-fields", "item {x} (XMP, cdsc → {d})"),
    "xmp-values": (lambda *_: None, "NativeFormat", "error", "heic.xmp-values", "item {x} (XMP, cdsc → {d})"),
    "xmp-malformed": (lambda *_: None, "malformed", "error", "heic.xmp-fields", "item {x} (XMP, cdsc → {d})"),
    "xmp-metadata": (lambda *_: None, "Quality", "warning", "heic.xmp-metadata", "item {x} (XMP, cdsc → {d})"),
    "codec": (as_av01, None, "error", "heic.depth-codec", "item {d} infe"),
    "data": (depth_data_is_xmp, None, "error", "heic.depth-data", "item {d} iloc"),
    "hvcc-420": (
        lambda m, d, x: set_property(m, d, "hvcC", patched(hvcc_of_depth(ours("heic")), 24, b"\xfd")),
        None,
        "warning",
        "heic.depth-hvcc",
        "item {d} hvcC",
    ),
    "hvcc-10bit": (
        lambda m, d, x: set_property(m, d, "hvcC", patched(hvcc_of_depth(ours("heic")), 25, b"\xfa")),
        None,
        "warning",
        "heic.depth-hvcc",
        "item {d} hvcC",
    ),
    "no-ispe": (with_property("ispe", None), None, "error", "heic.depth-size", "item {d}"),
    "larger": (with_property("ispe", ispe(256, 192)), None, "warning", "heic.depth-size", "item {d} ispe"),
    "aspect": (with_property("ispe", ispe(96, 96)), None, "warning", "heic.depth-aspect", "item {d} ispe"),
    "orientation": (
        with_property("irot", isobmff.box_bytes("irot", b"\x01")),
        None,
        "warning",
        "heic.orientation",
        "item {d}",
    ),
}

#: XMP edits: drop a property, change NativeFormat to 'hdep' (depth) for a disparity map, or break the XML.
XMP_EDITS = {
    "FloatMaxValue": lambda x: re.sub(r"\s*<apdi:FloatMaxValue>.*?</apdi:FloatMaxValue>", "", x),
    "NativeFormat": lambda x: re.sub(r"<apdi:NativeFormat>\d+<", "<apdi:NativeFormat>1751410032<", x),
    "malformed": lambda x: x.replace("</rdf:RDF>", ""),
    "Quality": lambda x: re.sub(r"\s*<depthData:Quality>.*?</depthData:Quality>", "", x),
}


@pytest.mark.parametrize("case", HEIC_CASES)
def test_heic_rule(case):
    change, xmp_edit, severity, rule, where = HEIC_CASES[case]
    data = ours("heic")
    xmp = None
    if xmp_edit is not None:
        xmp = XMP_EDITS[xmp_edit](xmp_of(data)).encode()
        assert xmp != xmp_of(data).encode()
    finding = only(verify_bytes(edit_heic(data, change, xmp)), severity, rule)
    meta = isobmff.parse_file(data).meta
    depth_id = heic.find_depth_item(meta)
    assert finding.where.startswith(where.format(d=depth_id, x=meta.referencing("cdsc", depth_id)[0])), finding


@pytest.mark.parametrize("split", [False, True])
def test_heic_jpeg_depth_item_as_recent_iphones_write_it_verifies_clean(split):
    data = ours("heic")
    recoded = with_jpeg_depth(data, heic.read_depth(data), split)
    findings = verify_bytes(recoded)
    assert problems(findings) == [] and "heic.depth-found" in [f.rule for f in findings]


def test_heic_jpeg_depth_item_rules():
    data = ours("heic")
    recoded = with_jpeg_depth(data, heic.read_depth(data), split=True)
    meta = isobmff.parse_file(recoded).meta
    depth_id = heic.find_depth_item(meta)
    xmp = xmp_of(recoded).replace(">1278226742<", ">1278226488<").replace(">65535<", ">255<")  # says L008
    finding = only(verify_bytes(edit_heic(recoded, lambda *_: None, xmp.encode())), "warning", "heic.depth-codec")
    assert finding.where == f"item {depth_id} (JPEG)" and "16-bit (SOF3); iPhones store one-component 8-bit" in (
        finding.message
    )
    jpgc = next(raw for kind, raw, _ in meta.item_properties(depth_id) if kind == "jpgC")
    headless = recoded.replace(jpgc, jpgc[:8] + bytes(len(jpgc) - 8))
    finding = only(verify_bytes(headless), "error", "heic.depth-data")
    assert "the depth item is not a JPEG: no JPEG SOI marker at offset 0" in finding.message
    width, height = heic.coded_size(meta, depth_id)

    def halved(meta, depth_id, _xmp_id):
        index, _ = meta.first_property(depth_id, "ispe")
        meta.properties[index - 1] = isobmff.full_box_bytes("ispe", 0, 0, struct.pack(">II", width // 2, height // 2))

    finding = only(verify_bytes(edit_heic(recoded, halved)), "error", "heic.depth-size")
    assert finding.where == f"item {depth_id} (JPEG)"
    assert f"is {width}x{height} but the item's ispe says {width // 2}x{height // 2}" in finding.message


def test_heic_unedited_rebuild_verifies_clean():
    assert problems(verify_bytes(edit_heic(ours("heic"), lambda *_: None))) == []


def test_heic_apple_private_urn_is_no_depth_to_libheif(tmp_path):
    path = tmp_path / "private.heic"
    path.write_bytes(edit_heic(ours("heic"), with_auxc("urn:com:apple:photo:2018:aux:depth")))
    assert "depth channel: no" in subprocess.run([tool("heif-info"), path], capture_output=True, text=True).stdout
    only(verify(path), "error", "heic.auxc-urn")


def pug_edit(change) -> bytes:
    parsed = isobmff.parse_file(sample(PUG).read_bytes())
    change(parsed.meta)
    return isobmff.rebuild(parsed, parsed.meta)


def test_heic_auxl_to_a_tile_of_the_grid():
    def to_tile(meta):
        ref = next(r for r in meta.references if r.kind == "auxl" and r.from_id == 54)
        ref.to_ids = [meta.referenced("dimg", 49)[0]]

    finding = only(verify_bytes(pug_edit(to_tile)), "error", "heic.auxl-target")
    assert "item 1, a tile of the primary (item 49)" in finding.message


def test_heic_matte_is_info():
    matte = auxc("urn:com:apple:photo:2018:aux:portraiteffectsmatte", b"")
    findings = verify_bytes(pug_edit(lambda meta: set_property(meta, 52, "auxC", matte)))
    # the gain map's XMP stays: no matte version, no apdi type, but the depth is fine
    assert {rule for _, rule in problems(findings)} == {"heic.matte-xmp"}
    assert [f.where.split(" ")[:2] for f in findings if f.rule == "heic.matte"] == [["item", "52"]]


def test_heic_orientation_against_a_rotated_photo():
    data = ours("heic", orientation=6)  # irot on the primary, shared by the depth item
    finding = only(verify_bytes(edit_heic(data, with_property("irot", None))), "warning", "heic.orientation")
    assert "turned by nothing but the photo by irot" in finding.message


# ----------------------------------------------------------------------------------------------- JPEG rules


def split_jpeg(data: bytes) -> tuple[bytes, list[bytes]]:
    """The primary image without its MPF segment, and the images MP entries 1… list."""
    primary = parse_jpeg(data)
    seg = primary.applications(data, APP2, mpf.MPF_ID)[0]
    tiff_at = seg.offset + 8
    entries = mpf.parse_index(data[tiff_at : seg.end], tiff_at).entries
    images = [data[tiff_at + e.offset : tiff_at + e.offset + e.size] for e in entries[1:]]
    return data[: seg.offset] + data[seg.end : primary.end], images


def assemble(primary: bytes, images: list[bytes], edit=None) -> bytes:
    """An MPF JPEG: ``primary`` with a fresh MP index (entries changed by ``edit``) and ``images`` after it."""
    at = parse_jpeg(primary).after_leading_apps()
    head = len(primary) + 4 + mpf.index_size(len(images) + 1)
    tiff_at = at + 4 + len(mpf.MPF_ID)
    entries, pos = [mpf.Entry(mpf.PRIMARY_TYPE, head, 0)], head
    for image in images:
        entries.append(mpf.Entry(mpf.UNDEFINED_TYPE, len(image), pos - tiff_at))
        pos += len(image)
    if edit is not None:
        entries = edit(entries)
    return primary[:at] + segment(APP2, mpf.build_index(entries)) + primary[at:] + b"".join(images)


def replace_app(jpeg: bytes, marker: int, identifier: bytes, payload: bytes) -> bytes:
    seg = parse_jpeg(jpeg).applications(jpeg, marker, identifier)[0]
    return jpeg[: seg.offset] + segment(marker, payload) + jpeg[seg.end :]


def depth_xmp() -> str:
    depth = split_jpeg(ours("jpeg"))[1][0]
    seg = parse_jpeg(depth).applications(depth, APP1, XMP_ID)[0]
    return seg.payload(depth)[len(XMP_ID) :].decode()


def map_jpeg(size, xmp: str, mode="L", count=2) -> bytes:
    """A depth-style JPEG: SOI, APP1 XMP, APP2 MPF {count}, then the coded image (``L``: 16-bit lossless, as ours)."""
    if mode == "L":
        coded = ljpeg.encode(np.full(size[::-1], 32768, np.uint16))
    else:
        buffer = io.BytesIO()
        Image.new(mode, size, 128).save(buffer, "JPEG", quality=90)
        coded = buffer.getvalue()
    return b"\xff\xd8" + segment(APP1, XMP_ID + xmp.encode()) + segment(APP2, mpf.build_version(count)) + coded[2:]


def entry(number, **changes):
    def edit(entries):
        entries = list(entries)
        old = entries[number]
        entries[number] = mpf.Entry(
            changes.get("attribute", old.attribute),
            old.size + changes.get("size", 0),
            old.offset + changes.get("offset", 0),
        )
        return entries

    return edit


def jpeg_case(name: str) -> bytes:
    primary, (depth,) = split_jpeg(ours("jpeg"))
    xmp = depth_xmp()
    cases = {
        "mpf-missing": lambda: primary + depth,
        "mpf-invalid": lambda: assemble(primary, [depth]).replace(
            b"\xb0\x01\x00\x04\x00\x00\x00\x01\x00\x00\x00\x02", b"\xb0\x01\x00\x04\x00\x00\x00\x01\x00\x00\x00\x03"
        ),
        "mpf-entry0-offset": lambda: assemble(primary, [depth], entry(0, offset=4)),
        "mpf-offset": lambda: assemble(primary, [depth], entry(1, offset=1 << 20)),
        "mpf-not-soi": lambda: assemble(primary, [depth], entry(1, offset=2, size=-2)),
        "mpf-size": lambda: assemble(primary, [depth], entry(1, size=-7)),
        "mpf-count": lambda: assemble(primary, [replace_app(depth, APP2, mpf.MPF_ID, mpf.build_version(3))]),
        "depth-missing": lambda: assemble(primary, []),
        "xmp-missing": lambda: assemble(
            primary, [replace_app(depth, APP1, XMP_ID, b"http://ns.adobe.com/xap/1.1/\0" + xmp.encode())]
        ),
        "codec": lambda: assemble(primary, [map_jpeg(MAP, xmp, mode="RGB")]),
        "larger": lambda: assemble(primary, [map_jpeg((256, 192), xmp)]),
        "aspect": lambda: assemble(primary, [map_jpeg((96, 96), xmp)]),
        **{
            f"xmp-{key}": (lambda key=key: assemble(primary, [map_jpeg(MAP, XMP_EDITS[key](xmp))])) for key in XMP_EDITS
        },
    }
    return cases[name]()


JPEG_CASES = {
    "mpf-missing": ("error", "jpeg.mpf-missing", "primary image"),
    "mpf-invalid": ("error", "jpeg.mpf-invalid", "APP2 MPF at offset"),
    "mpf-entry0-offset": ("error", "jpeg.mpf-invalid", "APP2 MPF at offset"),
    "mpf-offset": ("error", "jpeg.mpf-offset", "APP2 MPF at offset"),
    "mpf-not-soi": ("error", "jpeg.mpf-offset", "APP2 MPF at offset"),
    "mpf-size": ("error", "jpeg.mpf-size", "APP2 MPF at offset"),
    "mpf-count": ("warning", "jpeg.mpf-count", "APP2 MPF at offset"),
    "depth-missing": ("error", "jpeg.depth-missing", "APP2 MPF"),
    "xmp-missing": ("error", "jpeg.xmp-missing", "MP entry 1"),
    "xmp-FloatMaxValue": ("error", "jpeg.xmp-fields", "MP entry 1"),
    "xmp-NativeFormat": ("error", "jpeg.xmp-values", "MP entry 1"),
    "xmp-malformed": ("error", "jpeg.xmp-fields", "MP entry 1"),
    "xmp-Quality": ("warning", "jpeg.xmp-metadata", "MP entry 1"),
    "codec": ("warning", "jpeg.depth-codec", "MP entry 1"),
    "larger": ("warning", "jpeg.depth-size", "MP entry 1"),
    "aspect": ("warning", "jpeg.depth-aspect", "MP entry 1"),
}


@pytest.mark.parametrize("case", JPEG_CASES)
def test_jpeg_rule(case):
    severity, rule, where = JPEG_CASES[case]
    finding = only(verify_bytes(jpeg_case(case)), severity, rule)
    assert finding.where.startswith(where), finding


def test_jpeg_reassembled_verifies_clean():
    primary, images = split_jpeg(ours("jpeg"))
    assert problems(verify_bytes(assemble(primary, images))) == []
    assert problems(verify_bytes(assemble(primary, [map_jpeg(MAP, depth_xmp())]))) == []


@pytest.mark.parametrize("coding", ["lossless", "baseline"])
def test_jpeg_both_codings_verify_clean(coding):
    assert problems(verify_bytes(ours("jpeg", coding=coding))) == []


def test_jpeg_16_bit_map_labelled_8_bit_is_a_warning():
    primary, _ = split_jpeg(ours("jpeg"))
    xmp = depth_xmp().replace("<apdi:StoredFormat>1278226742<", "<apdi:StoredFormat>1278226488<")
    xmp = xmp.replace("<apdi:IntMaxValue>65535<", "<apdi:IntMaxValue>255<")
    finding = only(verify_bytes(assemble(primary, [map_jpeg(MAP, xmp)])), "warning", "jpeg.depth-codec")
    assert "16-bit (SOF3); iPhones store one-component 8-bit maps" in finding.message


def test_jpeg_entry0_size_is_info():
    primary, images = split_jpeg(ours("jpeg"))
    findings = verify_bytes(assemble(primary, images, entry(0, size=5)))
    assert problems(findings) == [] and "jpeg.mpf-entry0" in [f.rule for f in findings if f.severity == "info"]


def test_jpeg_matte_is_info():
    primary, (depth,) = split_jpeg(ours("jpeg"))
    matte_xmp = re.sub(r"disparity</apdi:AuxiliaryImageType>", "depth</apdi:AuxiliaryImageType>", depth_xmp())
    matte_xmp = matte_xmp.replace(
        "</apdi:AuxiliaryImageType>",
        "</apdi:AuxiliaryImageType>\n<apdi:AuxiliaryImageSubType>portraiteffectsmatte</apdi:AuxiliaryImageSubType>",
    )
    depth3 = replace_app(depth, APP2, mpf.MPF_ID, mpf.build_version(3))
    findings = verify_bytes(assemble(primary, [depth3, map_jpeg(PHOTO, matte_xmp, count=3)]))
    assert problems(findings) == [("warning", "jpeg.matte-xmp")]  # no PortraitEffectsMatteVersion
    matte = next(f for f in findings if f.rule == "jpeg.matte")
    assert matte.severity == "info" and "portrait-effects matte" in matte.message and "MP entry 2" in matte.where


def test_jpeg_other_images_are_info():
    primary, (depth,) = split_jpeg(ours("jpeg"))
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "white").save(buffer, "JPEG")
    depth3 = replace_app(depth, APP2, mpf.MPF_ID, mpf.build_version(3))
    findings = verify_bytes(assemble(primary, [buffer.getvalue(), depth3]))
    assert problems(findings) == []
    other = next(f for f in findings if f.rule == "jpeg.aux-image")
    assert other.severity == "info" and "MP entry 1" in other.where
    assert "MP entry 2" in next(f for f in findings if f.rule == "jpeg.depth-found").where


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_exit_codes_and_json(tmp_path, capsys):
    broken = tmp_path / "broken.heic"
    broken.write_bytes(edit_heic(ours("heic"), no_cdsc))
    where = f"item {heic.find_depth_item(isobmff.parse_file(ours('heic')).meta)} iref cdsc"
    good = tmp_path / "good.jpg"
    good.write_bytes(ours("jpeg"))
    assert main(["verify", str(good)]) == 0
    assert capsys.readouterr().out.startswith(f"{good}: ok\n")
    assert main(["verify", str(good), str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}: depth will not be seen" in out and f"error: heic.xmp-missing: {where}:" in out
    assert main(["verify", "--json", str(tmp_path / "absent.heic"), str(broken)]) == 2
    captured = capsys.readouterr()
    unreadable, report = (json.loads(line) for line in captured.out.splitlines())
    assert "cannot read" in unreadable["error"] and "absent.heic" in captured.err
    assert report["ok"] is False and report["findings"][0] == {
        "severity": "error",
        "rule": "heic.xmp-missing",
        "message": report["findings"][0]["message"],
        "where": where,
    }


def test_cli_stops_quietly_when_its_reader_goes_away(tmp_path):
    good = tmp_path / "good.jpg"
    good.write_bytes(ours("jpeg"))
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `gpu-depth verify … | head` once head has exited
    command = [sys.executable, "-c", "import sys; from gpu_depth.cli.main import main; sys.exit(main(sys.argv[1:]))"]
    done = subprocess.run([*command, "verify", str(good)], stdout=write_end, stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    assert (done.returncode, done.stderr) == (1, "")


def test_unreadable_files_raise_depth_error(tmp_path):
    png = tmp_path / "map.png"
    Image.new("L", (4, 4)).save(png)
    with pytest.raises(DepthError, match="not a HEIC, JPEG or DNG file"):
        verify(png)
    for container in ("heic", "jpeg"):
        truncated = tmp_path / f"truncated.{container}"
        truncated.write_bytes(ours(container)[:200])
        with pytest.raises(DepthError, match=rf"truncated\.{container}: "):
            verify(truncated)
        assert main(["verify", str(truncated)]) == 2


# ----------------------------------------------------------------------------------------------- mattes


def _with_matte(container: str, size: tuple[int, int]) -> bytes:
    from gpu_depth import Matte

    plugin = heic if container == "heic" else jpeg_plugin
    pixels = (np.arange(size[0] * size[1]).reshape(size[1], size[0]) % 256).astype(np.uint8)
    return plugin.attach_auxiliary(ours(container), [Matte.of("portrait-effects", pixels)])


@pytest.mark.parametrize("container", ["heic", "jpeg"])
def test_our_mattes_verify_clean_and_are_described(container):
    stored = stored_size(ours(container))
    findings = verify_bytes(_with_matte(container, (stored[0] // 2, stored[1] // 2)))
    assert problems(findings) == []
    (matte,) = [f for f in findings if f.rule == f"{container}.matte"]
    assert f"{stored[0] // 2}x{stored[1] // 2} portrait-effects matte (version 65537)" in matte.message


@pytest.mark.parametrize("container", ["heic", "jpeg"])
def test_a_matte_of_another_aspect_is_a_warning(container):
    findings = verify_bytes(_with_matte(container, (40, 40)))
    assert problems(findings) == [("warning", f"{container}.matte-size")]


def test_a_matte_without_its_xmp_item_is_a_warning():
    data = _with_matte("heic", (64, 48))
    parsed = isobmff.parse_file(data)
    ((matte_id, _),) = heic.matte_items(parsed.meta)
    parsed.meta.remove_items({heic.xmp_item(parsed.meta, matte_id)})
    finding = only(verify_bytes(isobmff.rebuild(parsed, parsed.meta)), "warning", "heic.matte-xmp")
    assert "no XMP" in finding.message


def test_the_iphone_14s_mattes_are_five_infos_and_no_problem():
    findings = verify(sample("iphone14-front-mattes.heic"))
    assert problems(findings) == []
    kinds = sorted(f.message.split(" ")[2] for f in findings if f.rule == "heic.matte")
    assert kinds == ["glasses", "hair", "portrait-effects", "skin", "teeth"]
    assert all("1158x1544" in f.message for f in findings if f.rule == "heic.matte")


def _fourcc(code: str) -> str:
    return str(int.from_bytes(code.encode(), "big"))


#: Depth XMP edits → what is wrong ("" for nothing).  The reader silently returned an inverted map for a
#: reversed range, ignored a garbage StoredFormat, read hdep values off a disparity map, and said "a depth
#: of 0 m" for ±1e308.
CRAFTED_RANGES = {
    "as written": ({}, ""),
    "another float format": ({"NativeFormat": _fourcc("fdis")}, ""),
    "reversed range": ({"FloatMinValue": "2.5", "FloatMaxValue": "0.5"}, "not a finite range"),
    "±1e308": ({"FloatMinValue": "-1e308", "FloatMaxValue": "1e308"}, "span more than a float64 holds"),
    "1e308 over 65535 codes": ({"FloatMaxValue": "1e308"}, "span more than a float64 holds"),
    "garbage StoredFormat": ({"StoredFormat": "12345"}, "StoredFormat 12345 is not L008 or L016"),
    "hdep on a disparity map": ({"NativeFormat": _fourcc("hdep")}, "NativeFormat hdep holds depth, not disparity"),
    "IntMax past the codes": ({"IntMaxValue": "70000"}, "are not a range in 0.."),
    "IntMin = IntMax": ({"IntMinValue": "9", "IntMaxValue": "9"}, "are not a range in 0.."),
}


@pytest.mark.parametrize("container", ["jpeg", "heic"])
@pytest.mark.parametrize("case", CRAFTED_RANGES)
def test_the_reader_refuses_what_verify_calls_an_error(monkeypatch, container, case):
    """Reader and verify agree on every crafted range: both accept it, or both name the same fault."""
    edits, fault = CRAFTED_RANGES[case]
    plugin = heic if container == "heic" else importlib.import_module("gpu_depth.containers.jpeg.plugin")
    original = plugin.build_depth_xmp

    def edited(*args, **kwargs):
        xmp = original(*args, **kwargs).decode()
        for name, value in edits.items():
            xmp, count = re.subn(rf"<apdi:{name}>[^<]*</apdi:{name}>", f"<apdi:{name}>{value}</apdi:{name}>", xmp)
            assert count == 1
        return xmp.encode()

    monkeypatch.setattr(plugin, "build_depth_xmp", edited)
    data = ours(container) if not edits else _attached(container)
    errors = [f.message for f in verify_bytes(data) if f.severity == "error"]
    if not fault:
        assert errors == [] and read_depth_bytes(container, data) is not None
        return
    assert any(fault in message for message in errors), errors
    with pytest.raises(DepthError, match=re.escape(fault)):
        read_depth_bytes(container, data)


def _attached(container: str) -> bytes:
    """``ours(container)`` made again (not from its cache), with whatever XMP the writer now builds."""
    return ours.__wrapped__(container)


def read_depth_bytes(container: str, data: bytes):
    plugin = heic if container == "heic" else importlib.import_module("gpu_depth.containers.jpeg.plugin")
    return plugin.read_depth(data)
