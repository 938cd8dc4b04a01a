"""DNG 1.6 semantic masks as mattes, checked by tifffile, exiftool and LibRaw (rawpy) on DNGs made here."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from helpers.dng import CAMERA, CFA, depth_map, make_dng
from helpers.verify import problems
from PIL import Image
from test_dng import OLD_EXIFTOOL_DEPTH_WARNINGS, exiftool_json, validation_warnings

import gpu_depth
from gpu_depth import DepthError, Matte
from gpu_depth.cli.main import main
from gpu_depth.containers.dng import plugin as dng
from gpu_depth.containers.dng.tiff import TiffFile
from gpu_depth.errors import ExistingDepth
from gpu_depth.verify import verify_bytes

#: The raw of make_dng's CFA layouts is 96x64: mattes at half its size, depth at a third.
MATTE_SHAPE, DEPTH_SHAPE = (32, 48), (16, 24)
SKIN = "urn:com:apple:photo:2019:aux:semanticskinmatte"


def soft(shape=MATTE_SHAPE, seed: int = 0) -> np.ndarray:
    """A matte with flat 0 and 255 regions and every level between."""
    rng = np.random.default_rng(seed)
    pixels = np.where(np.arange(shape[1]) < shape[1] // 2, 0, 255).astype(np.uint8) * np.ones((shape[0], 1), np.uint8)
    pixels[:, shape[1] // 2 - 4 : shape[1] // 2 + 4] = rng.integers(0, 256, (shape[0], 8), dtype=np.uint8)
    return pixels


MATTES = [Matte.of("skin", soft()), Matte.of("portrait-effects", soft(seed=1)[::-1].copy())]


def mask_ifds(data: bytes) -> list:
    tiff = TiffFile(data)
    return [ifd for ifd in tiff.walk() if 254 in ifd and tiff.integers(ifd, 254) == (dng.SEMANTIC_MASK,)]


def put_values(data: bytes, ifd, tag: int, code: str, *values: int) -> bytes:
    """``data`` with the values of ``tag`` in ``ifd`` overwritten (inline or where its offset points)."""
    fmt = TiffFile(data).format
    entry = ifd.entries[tag]
    packed = fmt.pack(f"{len(values)}{code}", *values)
    at = ifd.offset + 2 + 12 * list(ifd.entries).index(tag) + 8
    if entry.count * len(packed) // len(values) > 4:
        (at,) = fmt.unpack("I", entry.field)
    return data[:at] + packed + data[at + len(packed) :]


def third_party(mask: np.ndarray, name: str | None = "skin", **options) -> bytes:
    """A DNG whose second SubIFD is a semantic mask written by tifffile (NewSubFileType as an extra tag and
    PhotometricInterpretation patched to 52527, values tifffile does not know)."""
    rng = np.random.default_rng(7)
    stream = io.BytesIO()
    dng_tags = [(50706, "B", 4, (1, 6, 0, 0), True)]
    extra = [(dng.SEMANTIC_NAME, "s", 0, name, True)] if name else []
    extra += options.pop("extratags", [])
    with tifffile.TiffWriter(stream) as tif:
        preview = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
        tif.write(preview, photometric="rgb", subfiletype=1, subifds=2, extratags=dng_tags + CAMERA)
        tif.write(rng.integers(0, 4096, (64, 96), dtype=np.uint16), photometric=32803, subfiletype=0, extratags=CFA)
        tif.write(mask, photometric="minisblack", extratags=[(254, "I", 1, dng.SEMANTIC_MASK, True), *extra], **options)
    data = stream.getvalue()
    return put_values(data, mask_ifds(data)[0], 262, "H", dng.PHOTOMETRIC_MASK)


@pytest.fixture(params=[(layout, order) for layout in ("cfa-in-subifd", "cfa-and-preview-subifds") for order in "<>"])
def pair(request, tmp_path) -> tuple[Path, Path]:
    """An input DNG and the same DNG with a depth map and two mattes attached, both on disk."""
    source, out = tmp_path / "in.dng", tmp_path / "out.dng"
    source.write_bytes(make_dng(*request.param))
    out.write_bytes(dng.attach_depth(source.read_bytes(), depth_map("hdis", shape=DEPTH_SHAPE), mattes=MATTES))
    return source, out


def test_every_input_byte_stays_in_place_except_the_first_ifd_offset(pair):
    source, out = pair
    before, after = source.read_bytes(), out.read_bytes()
    assert after[:4] == before[:4] and after[8 : len(before)] == before[8:]


def test_tifffile_reads_each_matte_as_a_semantic_mask_subifd_and_every_other_ifd_unchanged(pair):
    source, out = pair
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tifffile.TiffFile(source) as original, tifffile.TiffFile(out) as ours:
            old, new = list(original.pages[0].pages), list(ours.pages[0].pages)
            assert len(new) == len(old) + 3  # depth, then the two mattes
            for page, before in zip(new, old, strict=False):
                assert np.array_equal(page.asarray(), before.asarray()) and page.dataoffsets == before.dataoffsets
            assert new[len(old)].subfiletype == dng.DEPTH_MAP
            for page, matte in zip(new[len(old) + 1 :], MATTES, strict=True):
                assert (page.subfiletype, page.photometric, page.samplesperpixel) == (0x10004, 52527, 1)
                assert page.bitspersample == 8 and page.compression == 8  # Deflate
                assert page.tags[dng.SEMANTIC_NAME].value == matte.kind.urn
                assert page.tags[dng.MASK_SUB_AREA].value == (0, 0, matte.width, matte.height)
                assert np.array_equal(page.asarray(), matte.pixels)


def test_exiftool_names_the_semantic_mask_tags_and_the_matte_xmp(pair):
    _, out = pair
    printed = exiftool_json(
        out, "-a", "-G1", "-SemanticName", "-MaskSubArea", "-SubfileType", "-DNGVersion", "-XMP:all"
    )
    names = sorted(value for key, value in printed.items() if key.endswith(":SemanticName"))
    assert names == sorted(matte.kind.urn for matte in MATTES)
    assert [value for key, value in printed.items() if key.endswith(":MaskSubArea")] == ["0 0 48 32"] * 2
    assert [value for key, value in printed.items() if key.endswith(":SubfileType")].count("Semantic Mask") == 2
    assert printed["IFD0:DNGVersion"] == "1.6.0.0"
    assert printed["XMP-portraitEffectsMatte:PortraitEffectsMatteVersion"] == 65537


def test_exiftool_validate_reports_only_its_unknown_semantic_mask_tags(pair):
    """exiftool's -validate places SemanticName and MaskSubArea in no IFD ("only for Validate", not
    checked) and XMP in IFD0 only, where the DNG SDK reads a mask's XMP in its own IFD: minor warnings."""
    source, out = pair
    masks = [ifd.name.split(".")[-1] for ifd in mask_ifds(out.read_bytes())]
    expected = {f"[minor] Non-standard {ifd} tag 0x{tag:04x} {name}" for ifd in masks for tag, name in MASK_TAGS}
    expected |= {f"[minor] Non-standard XMP at TIFF-IFD0-{ifd}-XMP" for ifd in masks}
    assert validation_warnings(out) - validation_warnings(source) - OLD_EXIFTOOL_DEPTH_WARNINGS == expected


MASK_TAGS = ((dng.SEMANTIC_NAME, "SemanticName"), (dng.MASK_SUB_AREA, "MaskSubArea"))


def test_libraw_decodes_the_same_raw_pixels(pair):
    rawpy = pytest.importorskip("rawpy")
    source, out = pair
    with rawpy.imread(str(source)) as before, rawpy.imread(str(out)) as after:
        assert before.raw_image.size > 0
        assert np.array_equal(before.raw_image, after.raw_image)


def test_reading_returns_each_matte_with_its_kind_version_and_pixels(pair):
    _, out = pair
    found = gpu_depth.read_mattes(out)
    assert [(m.kind.name, m.version) for m in found] == [("skin", 65536), ("portrait-effects", 65537)]
    assert all(np.array_equal(m.pixels, matte.pixels) for m, matte in zip(found, MATTES, strict=True))
    info = gpu_depth.read_auxiliary(out, "portrait-effects").dictionary_representation()
    assert info["DataDescription"]["Width"] == 48 and b"PortraitEffectsMatteVersion" in info["Metadata"]
    assert gpu_depth.read_auxiliary(out, "hair") is None
    assert gpu_depth.read_depth(out) is not None
    assert dng.auxiliary_images(out.read_bytes()) == [("depth", 24, 16), ("skin", 48, 32), ("portrait-effects", 48, 32)]


def test_a_kind_the_dng_has_needs_replace_and_drop_mattes_drops_them():
    data = dng.attach_auxiliary(make_dng(), MATTES)
    with pytest.raises(ExistingDepth, match=r"already has a skin matte \(IFD0\.SubIFD1\)"):
        dng.attach_auxiliary(data, [Matte.of("skin", soft(seed=5))])
    replaced = dng.attach_auxiliary(data, [Matte.of("skin", soft(seed=5))], replace=True)
    assert [(m.kind.name, np.array_equal(m.pixels, soft(seed=5))) for m in dng.read_mattes(replaced)] == [
        ("portrait-effects", False),
        ("skin", True),
    ]
    assert dng.read_mattes(dng.attach_auxiliary(data, [], drop_mattes=True)) == []
    assert subifds_of(dng.attach_auxiliary(data, [], drop_mattes=True)) == subifds_of(make_dng())


def subifds_of(data: bytes) -> tuple[int, ...]:
    tiff = TiffFile(data)
    return tiff.integers(tiff.walk()[0], 330)


def test_replacing_depth_keeps_the_mattes_unless_dropped():
    data = dng.attach_depth(make_dng(), depth_map(shape=DEPTH_SHAPE), mattes=MATTES)
    again = dng.attach_depth(data, depth_map("hdis", shape=DEPTH_SHAPE), replace=True)
    assert [m.kind.name for m in dng.read_mattes(again)] == ["skin", "portrait-effects"]
    assert dng.read_depth(again).pixel_format.fourcc == "fdis"
    assert dng.read_mattes(dng.attach_depth(data, depth_map(shape=DEPTH_SHAPE), replace=True, drop_mattes=True)) == []
    with pytest.raises(ExistingDepth, match="already has a depth map"):
        dng.attach_depth(data, depth_map(shape=DEPTH_SHAPE), mattes=[Matte.of("hair", soft())])


def test_the_version_becomes_1_6_keeping_a_newer_one():
    assert TiffFile(dng.attach_auxiliary(make_dng(version=(1, 7, 1, 0)), MATTES)).walk()[0].entries[
        50706
    ].value == bytes((1, 7, 1, 0))
    tiff = TiffFile(dng.attach_auxiliary(make_dng(backward=None), MATTES))
    assert [bytes(tiff.walk()[0].entries[tag].value) for tag in (50706, 50707)] == [
        bytes((1, 6, 0, 0)),
        bytes((1, 4, 0, 0)),
    ]


def test_masks_of_other_names_are_listed_kept_and_not_read_as_mattes():
    data = third_party(soft(), name="Sky Segmentation")
    assert dng.read_mattes(data) == []
    assert dng.auxiliary_images(data) == [("Sky Segmentation", 48, 32)]
    ours = dng.attach_auxiliary(data, MATTES, drop_mattes=True)
    assert [name for _, name, _ in dng.semantic_masks(TiffFile(ours), TiffFile(ours).walk())] == [
        "Sky Segmentation",
        *(m.kind.urn for m in MATTES),
    ]


def test_third_party_masks_are_read_16_bit_deflate_cropped_and_by_kind_name():
    sixteen = (soft().astype(np.uint16) * 257)[::-1].copy()
    (matte,) = dng.read_mattes(third_party(sixteen, name="hair", compression="zlib"))
    assert (matte.kind.name, matte.version) == ("hair", None)
    assert np.array_equal(matte.pixels, soft()[::-1])
    # a 20x10 mask cropped at (top 5, left 8) of a 48x32 one: the rest reads as 0 (DNG 1.6 MaskSubArea)
    cropped = third_party(soft((10, 20)), name=SKIN, extratags=[(dng.MASK_SUB_AREA, "I", 4, (5, 8, 48, 32), True)])
    (matte,) = dng.read_mattes(cropped)
    assert matte.pixels.shape == (32, 48) and np.array_equal(matte.pixels[5:15, 8:28], soft((10, 20)))
    assert matte.pixels.sum() == soft((10, 20)).astype(int).sum()
    assert dng.auxiliary_images(cropped) == [("skin", 48, 32)]
    # a MaskSubArea the stored mask runs past is ignored, as the spec says
    invalid = third_party(soft((10, 20)), name=SKIN, extratags=[(dng.MASK_SUB_AREA, "I", 4, (25, 8, 48, 32), True)])
    assert dng.read_mattes(invalid)[0].pixels.shape == (10, 20)


def test_hostile_mask_tags_raise_depth_error():
    with pytest.raises(DepthError, match=r"SemanticName.* must be ASCII"):
        dng.read_mattes(third_party(soft(), name=None, extratags=[(dng.SEMANTIC_NAME, "H", 1, 7, True)]))
    data = third_party(soft())
    with pytest.raises(DepthError, match=r"masks with 259 \(Compression\) 7 are not supported"):
        dng.read_mattes(put_values(data, mask_ifds(data)[0], 259, "H", 7))


# ----------------------------------------------------------------------------------------------- verify


def test_our_mattes_verify_clean_and_are_reported():
    findings = verify_bytes(dng.attach_depth(make_dng(), depth_map(shape=DEPTH_SHAPE), mattes=MATTES))
    assert problems(findings) == []
    assert [f.message for f in findings if f.rule == "dng.matte"] == [
        "a 48x32 skin matte (version 65536), not a depth map",
        "a 48x32 portrait-effects matte (version 65537), not a depth map",
    ]


def ours() -> bytes:
    return dng.attach_depth(make_dng(), depth_map(shape=DEPTH_SHAPE), mattes=MATTES[:1])


@pytest.mark.parametrize(
    ("broken", "rule", "says"),
    [
        (lambda d: put_values(d, mask_ifds(d)[0], 262, "H", 1), "dng.matte-tags", "requires 52527"),
        (
            lambda d: put_values(d, mask_ifds(d)[0], dng.MASK_SUB_AREA, "I", 0, 0, 10, 10),
            "dng.matte-tags",
            "MaskSubArea",
        ),
        (lambda d: put_values(d, TiffFile(d).walk()[0], 50706, "B", 1, 5, 0, 0), "dng.version", "predates 1.6"),
        (lambda d: d.replace(SKIN.encode(), b"x" * len(SKIN)), "dng.matte-name", "names no matte kind"),
        (lambda d: put_values(d, mask_ifds(d)[0], 259, "H", 7), "dng.matte-samples", "cannot be read"),
    ],
    ids=["photometric", "sub-area", "version", "name", "samples"],
)
def test_each_broken_mask_rule_is_reported(broken, rule, says):
    findings = verify_bytes(broken(ours()))
    assert any(f.rule == rule and says in f.message for f in findings), [(f.rule, f.message) for f in findings]
    assert {found for _, found in problems(findings)} <= {rule, "dng.matte-size"}


def test_a_matte_of_another_aspect_ratio_and_a_nameless_mask_are_reported():
    data = dng.attach_depth(make_dng(), depth_map(shape=DEPTH_SHAPE), mattes=[Matte.of("skin", soft((40, 40)))])
    assert problems(verify_bytes(data)) == [("warning", "dng.matte-size")]
    nameless = verify_bytes(third_party(soft(), name=None))
    assert any(f.rule == "dng.matte-tags" and "no SemanticName" in f.message for f in nameless)


# ----------------------------------------------------------------------------------------------- API and CLI


def test_the_api_attaches_mattes_to_dng_files(tmp_path):
    photo = tmp_path / "raw.dng"
    photo.write_bytes(make_dng())
    out = gpu_depth.attach_auxiliary(photo, "hair", soft(), tmp_path / "o.dng")
    assert [m.kind.name for m in gpu_depth.read_mattes(out)] == ["hair"]
    both = gpu_depth.attach_depth(photo, depth_map(shape=DEPTH_SHAPE), tmp_path / "b.dng", mattes={"teeth": soft()})
    assert [m.kind.name for m in gpu_depth.read_mattes(both)] == ["teeth"]
    with pytest.raises(DepthError, match="another aspect ratio"):
        gpu_depth.attach_auxiliary(photo, "hair", soft((40, 40)), tmp_path / "x.dng")


def test_convert_writes_mattes_into_dng_outputs(tmp_path):
    for name in ("photos", "depth", "mattes"):
        (tmp_path / name).mkdir()
    (tmp_path / "photos" / "a.dng").write_bytes(make_dng())
    Image.fromarray(np.tile(np.linspace(0, 65535, 24), (16, 1)).astype(np.uint16)).save(tmp_path / "depth" / "a.png")
    Image.fromarray(soft()).save(tmp_path / "mattes" / "a.png")
    args = ["convert", "--photos", str(tmp_path / "photos"), "--depth", str(tmp_path / "depth")]
    args += ["--out", str(tmp_path / "out"), "--matte", str(tmp_path / "mattes"), "--matte-kind", "skin"]
    assert main([*args, "--near", "0.5", "--far", "5", "--quiet", "--workers", "1"]) == 0
    (matte,) = gpu_depth.read_mattes(tmp_path / "out" / "a.dng")
    assert matte.kind.name == "skin" and np.array_equal(matte.pixels, soft())
    assert gpu_depth.read_depth(tmp_path / "out" / "a.dng") is not None


def test_inspect_and_extract_aux_read_dng_mattes(tmp_path, capsys):
    path = tmp_path / "m.dng"
    path.write_bytes(dng.attach_depth(make_dng(), depth_map(shape=DEPTH_SHAPE), mattes=MATTES))
    assert main(["inspect", "--json", str(path)]) == 0
    auxiliary = json.loads(capsys.readouterr().out)["auxiliary"]
    assert [(a["type"], a["width"], a["height"]) for a in auxiliary] == dng.auxiliary_images(path.read_bytes())
    assert main(["extract", str(path), "--aux", "portrait-effects", "--out", str(tmp_path / "p.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "p.png")), MATTES[1].pixels)


def test_an_uncropped_mask_beyond_the_pixel_limit_is_refused():
    huge = third_party(soft((10, 20)), name=SKIN, extratags=[(dng.MASK_SUB_AREA, "I", 4, (0, 0, 16000, 16000), True)])
    with pytest.raises(DepthError, match="MaskSubArea of 16000x16000 exceeds the"):
        dng.read_mattes(huge)


def test_mask_tags_outside_masks_and_a_mask_outside_the_subifds_are_reported():
    rng = np.random.default_rng(7)
    stream = io.BytesIO()
    with tifffile.TiffWriter(stream) as tif:
        preview = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
        dng_tags = [(50706, "B", 4, (1, 6, 0, 0), True), (dng.SEMANTIC_NAME, "s", 0, "skin", True)]
        tif.write(preview, photometric="rgb", subfiletype=1, subifds=1, extratags=dng_tags + CAMERA)
        tif.write(rng.integers(0, 4096, (64, 96), dtype=np.uint16), photometric=32803, subfiletype=0, extratags=CFA)
        mask = [(254, "I", 1, dng.SEMANTIC_MASK, True), (dng.SEMANTIC_NAME, "s", 0, "skin", True)]
        tif.write(soft(), photometric="minisblack", extratags=mask)  # IFD1 of the main chain, no SubIFD
    data = stream.getvalue()
    findings = verify_bytes(put_values(data, mask_ifds(data)[0], 262, "H", dng.PHOTOMETRIC_MASK))
    assert any(f.rule == "dng.matte-tags" and f.where == "IFD0" and "SemanticName" in f.message for f in findings)
    assert any(f.rule == "dng.matte-link" and f.where == "IFD1" for f in findings)
