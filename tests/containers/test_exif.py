"""Exif CustomRendered = Portrait on request: the TIFF edit, then JPEG and HEIC photos, refereed by exiftool,
Pillow and libheif; every other tag and the coded image untouched."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import pillow_heif
import pytest
from helpers import sample, tool
from helpers.jpeg import exiftool_json, exiftool_json_bytes, exiftool_warnings, make_photo, smooth_depth
from PIL import Image

import gpu_depth
from gpu_depth import DepthError
from gpu_depth.containers import exif
from gpu_depth.containers.heic import isobmff
from gpu_depth.containers.heic import plugin as heic
from gpu_depth.containers.jpeg import plugin as jpeg
from gpu_depth.containers.jpeg.segments import SOS, parse_jpeg

MAKE, MODEL, EXPOSURE, ISO = 0x010F, 0x0110, 0x829A, 0x8827


def exif_tiff(custom_rendered: int | None = None, exif_ifd: bool = True) -> bytes:
    """Pillow's Exif: IFD0 with Make/Model, an Exif IFD with an out-of-line rational and ISO."""
    info = Image.Exif()
    info[MAKE], info[MODEL] = "Apple", "iPhone 14"
    if exif_ifd:
        ifd = info.get_ifd(0x8769)
        ifd[EXPOSURE], ifd[ISO] = 1 / 120, 640
        if custom_rendered is not None:
            ifd[exif.CUSTOM_RENDERED] = custom_rendered
    return info.tobytes()[6:]  # without "Exif\0\0"


def jpeg_photo(exif_bytes: bytes | None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((60, 80, 3), 90, np.uint8)).save(
        buffer, "JPEG", **({"exif": exif_bytes} if exif_bytes else {})
    )
    return buffer.getvalue()


def pillow_tags(tiff: bytes) -> tuple[dict, dict]:
    info = Image.Exif()
    info.load(b"Exif\0\0" + tiff)
    return dict(info), dict(info.get_ifd(0x8769))


@pytest.mark.parametrize("tiff", [exif_tiff(), exif_tiff(custom_rendered=1)], ids=["no-tag", "custom"])
def test_custom_rendered_set_keeping_every_other_tag(tiff):
    marked = exif.with_custom_rendered(tiff)
    assert exif.custom_rendered(marked) == exif.PORTRAIT
    before, after = pillow_tags(tiff), pillow_tags(marked)
    assert {k: v for k, v in after[0].items() if k != 0x8769} == {k: v for k, v in before[0].items() if k != 0x8769}
    assert {k: v for k, v in after[1].items() if k != exif.CUSTOM_RENDERED} == {
        k: v for k, v in before[1].items() if k != exif.CUSTOM_RENDERED
    }
    changed = [i for i, (a, b) in enumerate(zip(tiff, marked, strict=False)) if a != b]
    assert len(changed) <= 4 and changed == list(range(changed[0], changed[-1] + 1))  # one pointer turned


def test_an_existing_short_is_rewritten_in_place():
    tiff = exif_tiff(custom_rendered=1)
    marked = exif.with_custom_rendered(tiff)
    assert len(marked) == len(tiff) and sum(a != b for a, b in zip(marked, tiff, strict=True)) == 1


def test_a_broken_or_missing_exif_ifd_is_refused():
    """A new Exif IFD would lack the tags Exif requires (exiftool -validate warns of them)."""
    tiff = bytearray(exif_tiff())
    tiff[4:8] = (1 << 20).to_bytes(4, "big" if tiff[:2] == b"MM" else "little")
    with pytest.raises(DepthError, match="outside"):
        exif.with_custom_rendered(bytes(tiff))
    with pytest.raises(DepthError, match="no Exif IFD"):
        exif.with_custom_rendered(exif_tiff(exif_ifd=False))
    with pytest.raises(DepthError, match="no Exif"):
        exif.with_custom_rendered(b"")


def scan(data: bytes) -> bytes:
    """The primary's entropy-coded image: its first SOS to its EOI."""
    primary = parse_jpeg(data)
    sos = next(s for s in primary.segments if s.marker == SOS)
    return data[sos.offset : primary.end]


def test_jpeg_attach_marks_the_exif_portrait(tmp_path):
    photo = jpeg_photo(b"Exif\0\0" + exif_tiff())
    out = jpeg.attach_depth(photo, smooth_depth("hdis", 80, 60), exif_portrait=True)
    path = tmp_path / "out.jpg"
    path.write_bytes(out)
    source = tmp_path / "photo.jpg"
    source.write_bytes(photo)
    tags = exiftool_json(path, "-a")
    assert tags["ExifIFD:CustomRendered"] == exif.PORTRAIT
    assert exiftool_warnings(path) <= exiftool_warnings(source)
    assert scan(out) == scan(photo)
    assert jpeg.read_depth(out) is not None
    assert (tags["IFD0:Model"], tags["ExifIFD:ISO"]) == ("iPhone 14", 640)
    assert "ExifIFD:CustomRendered" not in exiftool_json_bytes(
        jpeg.attach_depth(photo, smooth_depth("hdis", 80, 60)), tmp_path
    )


@pytest.mark.parametrize("photo", [make_photo(80, 60), jpeg_photo(None)], ids=["no-exif-ifd", "no-exif"])
def test_jpeg_without_an_exif_ifd_is_refused(photo):
    with pytest.raises(DepthError, match="--exif-portrait: the photo"):
        jpeg.attach_depth(photo, smooth_depth("hdis", 80, 60), exif_portrait=True)


def heic_photo(exif_bytes: bytes | None) -> bytes:
    buffer = io.BytesIO()
    image = pillow_heif.from_pillow(Image.fromarray(np.full((60, 80, 3), 120, np.uint8)))
    image.save(buffer, quality=60, **({"exif": exif_bytes} if exif_bytes else {}))
    return buffer.getvalue()


def test_heic_attach_marks_the_exif_portrait(tmp_path):
    photo = heic_photo(b"Exif\0\0" + exif_tiff())
    out = heic.attach_depth(photo, smooth_depth("hdis", 80, 60), exif_portrait=True)
    path = tmp_path / "out.heic"
    path.write_bytes(out)
    read = pillow_heif.open_heif(path)
    primary, ifd = pillow_tags(read.info["exif"][6:] if read.info["exif"].startswith(b"Exif") else read.info["exif"])
    assert ifd[exif.CUSTOM_RENDERED] == exif.PORTRAIT
    assert primary[MODEL] == "iPhone 14" and ifd[ISO] == 640
    assert exiftool_json(path)["ExifIFD:CustomRendered"] == exif.PORTRAIT
    subprocess.run([tool("heif-info"), str(path)], check=True, capture_output=True)
    before, after = isobmff.parse_file(photo), isobmff.parse_file(out)
    assert isobmff.item_data(after, after.meta.primary) == isobmff.item_data(before, before.meta.primary)
    assert heic.read_depth(out) is not None
    with pytest.raises(DepthError, match="--exif-portrait: the photo has no Exif item"):
        heic.attach_depth(heic_photo(None), smooth_depth("hdis", 80, 60), exif_portrait=True)


@pytest.mark.parametrize("name", ["motorola-lensblur-gdepth.jpg", "visionpro-spatial-no-depth.heic"])
def test_real_photos_are_marked_portrait(tmp_path, name):
    """The Motorola's CustomRendered is 1 (Custom); the Vision Pro's spatial photo has none."""
    path = sample(name)
    out = tmp_path / ("out" + path.suffix)
    depth = smooth_depth("hdis", *_size(path))
    gpu_depth.attach_depth(path, depth, out, replace=True, fit="stretch", exif_portrait=True)
    before, after = exiftool_json(path, "-a"), exiftool_json(out, "-a")
    assert after["ExifIFD:CustomRendered"] == exif.PORTRAIT
    assert {k: v for k, v in before.items() if k.startswith("IFD0:")} == {
        k: v for k, v in after.items() if k.startswith("IFD0:")
    }


def _size(path) -> tuple[int, int]:
    width, height = gpu_depth.containers.sniff(path.read_bytes()[:64]).displayed_size(path.read_bytes())
    return width // 8, height // 8


def test_dng_outputs_refuse_the_exif_option(tmp_path):
    from helpers.dng import depth_map, make_dng

    photo = tmp_path / "p.dng"
    photo.write_bytes(make_dng())
    with pytest.raises(DepthError, match="--exif-portrait"):
        gpu_depth.attach_depth(photo, depth_map(), tmp_path / "o.dng", fit="stretch", exif_portrait=True)
