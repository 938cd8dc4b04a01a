"""Every real photo in ../shared/samples re-depths cleanly: read exactly (against libheif, exiftool's
extraction decoded by libjpeg-turbo), attach, replace three times; one depth, size stable, every other
image untouched, exiftool/heif-info/verify content (issue 15's acceptance)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import imagecodecs
import numpy as np
import pillow_heif
import pytest
from helpers import SAMPLES, tool
from helpers.jpeg import exiftool_warnings
from PIL import Image

import gpu_depth
from gpu_depth.verify import verify

DEPTH_URN = "urn:mpeg:hevc:2015:auxid:2"
NAMES = sorted(p.name for p in SAMPLES.glob("*") if p.suffix.lower() in (".heic", ".jpg", ".jpeg", ".dng"))
if not NAMES:
    pytestmark = pytest.mark.skip(f"no samples in {SAMPLES}")


def exiftool(path: Path, *args: str) -> dict:
    out = subprocess.run([tool("exiftool"), "-j", "-G1", "-n", "-a", *args, str(path)], capture_output=True)
    return json.loads(out.stdout)[0]


def exiftool_bytes(path: Path, tag: str) -> bytes:
    return subprocess.run([tool("exiftool"), "-b", f"-{tag}", str(path)], capture_output=True, check=True).stdout


# ------------------------------------------------------------------------------------ independent decodes


def heif_state(path: Path) -> dict:
    """libheif's view: depth images (codes and range) and every other aux image's pixels, by URN."""
    heif = pillow_heif.open_heif(path, convert_hdr_to_8bit=False)
    depth = [(np.asarray(d), d.info["metadata"]) for d in heif.info.get("depth_images", [])]
    aux = {urn: [np.asarray(heif.get_aux_image(i)).tobytes() for i in ids] for urn, ids in heif.info["aux"].items()}
    return {"depth": depth, "aux": aux, "primary": np.asarray(heif[0] if len(heif) else heif).tobytes()}


def mp_images(path: Path) -> list[bytes]:
    """Every MP image after the primary, as exiftool extracts it."""
    images, number = [], 2
    while blob := exiftool_bytes(path, f"MPImage{number}"):
        images.append(blob)
        number += 1
    return images


def apple_depth_images(folder: Path, images: list[bytes]) -> list[tuple[int, dict]]:
    """(index, exiftool's XMP of it) of each MP image whose XMP describes a depth/disparity map."""
    found = []
    for index, blob in enumerate(images):
        (folder / "mp.jpg").write_bytes(blob)
        tags = exiftool(folder / "mp.jpg")
        kind = tags.get("XMP-apdi:AuxiliaryImageType")
        if kind in ("disparity", "depth") and not tags.get("XMP-apdi:AuxiliaryImageSubType"):
            found.append((index, tags))
    return found


def independent_values(path: Path, folder: Path) -> np.ndarray | None:
    """The file's depth in its native quantity, decoded without gpu_depth."""
    if path.suffix.lower() == ".heic":
        depth = heif_state(path)["depth"]
        if not depth:
            return None
        codes, meta = depth[0]
        top = np.iinfo(codes.dtype).max if codes.dtype.kind == "u" and codes.max() > 255 else 255
        return meta["d_min"] + codes.astype(np.float64) / top * (meta["d_max"] - meta["d_min"])
    images = mp_images(path)
    found = apple_depth_images(folder, images)
    if found:
        index, tags = found[0]
        codes = imagecodecs.jpeg8_decode(images[index]).astype(np.float64)  # libjpeg-turbo 3: also lossless
        low, high = tags["XMP-apdi:FloatMinValue"], tags["XMP-apdi:FloatMaxValue"]
        span = tags["XMP-apdi:IntMaxValue"] - tags["XMP-apdi:IntMinValue"]
        return low + (codes - tags["XMP-apdi:IntMinValue"]) / span * (high - low)
    tags = exiftool(path)
    if "XMP-GDepth:Near" not in tags:
        return None
    png = exiftool_bytes(path, "XMP-GDepth:DepthImage")
    normal = np.asarray(Image.open(io.BytesIO(png))).astype(np.float64)
    normal = normal[..., 0] if normal.ndim == 3 else normal  # Lens Blur writes gray as RGBA
    normal /= 65535 if normal.max() > 255 else 255
    near, far = tags["XMP-GDepth:Near"], tags["XMP-GDepth:Far"]
    return far * near / (far - normal * (far - near))


def test_the_samples_folder_holds_depth_photos():
    assert len(NAMES) >= 5


@pytest.mark.parametrize("name", NAMES)
def test_read_matches_an_independent_decode(name, tmp_path):
    path = SAMPLES / name
    ours = gpu_depth.read_depth(path)
    theirs = independent_values(path, tmp_path)
    assert (ours is None) == (theirs is None)
    if ours is not None:
        assert ours.array.shape == theirs.shape
        assert np.allclose(ours.array, theirs, rtol=2e-3, atol=1e-4, equal_nan=True)


# ------------------------------------------------------------------------------------ attach and replace


@pytest.fixture(scope="module", params=[n for n in NAMES if "no-depth" not in n])
def replaced(request, tmp_path_factory):
    """The sample, its own map attached back with replace, then replaced three more times."""
    path = SAMPLES / request.param
    folder = tmp_path_factory.mktemp(Path(request.param).stem)
    depth = gpu_depth.read_depth(path)
    outputs = []
    source = path
    for step in range(4):
        out = folder / f"replace{step}{path.suffix}"
        gpu_depth.attach_depth(source, depth, out, replace=True)
        outputs.append(out)
        source = out
    return path, depth, outputs, folder


def test_size_is_stable_across_replaces(replaced):
    """A HEIC grew 1.16 → 2.38 MB in four replaces: the old depth stayed in ipco and mdat."""
    _, _, outputs, _ = replaced
    sizes = [out.stat().st_size for out in outputs]
    assert max(sizes) - min(sizes) <= 16, sizes


def test_replace_stores_the_map_read(replaced):
    _, depth, outputs, _ = replaced
    back = gpu_depth.read_depth(outputs[-1])
    assert back.array.shape == depth.array.shape
    assert np.allclose(back.converting(depth.pixel_format).array, depth.array, rtol=1e-2, atol=1e-3, equal_nan=True)


def test_exactly_one_depth_and_every_other_image_untouched(replaced):
    path, _, outputs, folder = replaced
    out = outputs[-1]
    if path.suffix.lower() == ".heic":
        before, after = heif_state(path), heif_state(out)
        assert len(after["depth"]) == 1
        assert after["aux"] == before["aux"] and after["primary"] == before["primary"]
        types = exiftool(out).get("QuickTime:AuxiliaryImageType", [])
        assert (types if isinstance(types, list) else [types]).count(DEPTH_URN) == 1
        subprocess.run([tool("heif-info"), str(out)], capture_output=True, check=True)
    else:
        before, after = mp_images(path), mp_images(out)
        old = {i for i, _ in apple_depth_images(folder, before)}
        assert len(apple_depth_images(folder, after)) == 1
        assert [b for i, b in enumerate(before) if i not in old] == after[: len(before) - len(old)]
        assert "XMP-GDepth:Near" not in exiftool(out)
        assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(path)))


def test_no_new_exiftool_warning_and_verify_is_content(replaced):
    path, _, outputs, _ = replaced
    assert exiftool_warnings(outputs[-1]) <= exiftool_warnings(path)
    assert [f for f in verify(outputs[-1]) if f.severity != "info"] == []


def test_a_photo_without_depth_takes_one(tmp_path):
    path = SAMPLES / "visionpro-spatial-no-depth.heic"
    if not path.is_file():
        pytest.skip("no Vision Pro sample")
    depth = gpu_depth.read_depth(SAMPLES / "iphone13pro-pug.heic")
    out = gpu_depth.attach_depth(path, depth, tmp_path / "out.heic", fit="stretch")
    before, after = heif_state(path), heif_state(out)
    assert len(after["depth"]) == 1 and after["aux"] == before["aux"] and after["primary"] == before["primary"]
    parse = gpu_depth.containers.heic.isobmff.parse_file
    old, new = parse(path.read_bytes()).meta, parse(out.read_bytes()).meta
    added = {item.item_id for item in new.items} - {item.item_id for item in old.items}
    assert len(added) == 2 and not added & old.group_ids()  # entity-group IDs share the item ID space


def test_cli_replace_over_a_folder_of_every_sample(tmp_path):
    photos, depths = tmp_path / "photos", tmp_path / "depths"
    photos.mkdir()
    depths.mkdir()
    for name in NAMES:
        data = (SAMPLES / name).read_bytes()
        (photos / name).write_bytes(data)
        width, height = gpu_depth.containers.sniff(data).displayed_size(data)
        size = (max(8, width // 40), max(8, height // 40))
        gray = np.linspace(0, 255, size[0] * size[1]).reshape(size[1], size[0]).astype(np.uint8)
        Image.fromarray(gray).save(depths / f"{Path(name).stem}.png")
    common = ["convert", "--photos", str(photos), "--depth", str(depths), "--container", "same", "--quiet"]
    common += ["--preset", "apple-gray", "--near", "0.5", "--far", "5"]
    done = subprocess.run(
        [sys.executable, "-m", "gpu_depth", *common, "--out", str(tmp_path / "a"), "--replace"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "gpu_depth", *common, "--out", str(tmp_path / "b")], capture_output=True, text=True
    )
    assert refused.returncode == 1 and "pass --replace to replace it" in refused.stderr
    assert "replace=True" not in refused.stderr
