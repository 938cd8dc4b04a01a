"""``gpu-depth preview`` and ``inspect``: panels as shown, output in the current folder, unknowns shown so."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from helpers import sample
from helpers.jpeg import make_photo
from PIL import Image

import gpu_depth
from gpu_depth import DepthData
from gpu_depth.cli.preview import BAR, HEIGHT
from gpu_depth.containers.jpeg import plugin as jpeg


def test_the_depth_panel_is_turned_like_the_photo(tmp_path):
    """On an Exif-6 JPEG the map was drawn unturned, 90° off the upright photo beside it."""
    stored = np.tile(np.linspace(0.2, 2.0, 16), (12, 1))  # rises left to right as stored
    folder, here = tmp_path / "photos", tmp_path / "here"
    folder.mkdir()
    here.mkdir()
    photo = folder / "photo.jpg"
    photo.write_bytes(jpeg.attach_depth(make_photo(64, 48), DepthData.from_array(stored, "hdis")))  # shown 48x64
    subprocess.run([sys.executable, "-m", "gpu_depth", "preview", str(photo)], cwd=here, check=True)
    assert not (folder / "photo-preview.png").exists()
    canvas = np.asarray(Image.open(here / "photo-preview.png"), dtype=int)
    panel = HEIGHT * 48 // 64
    assert canvas.shape[:2] == (HEIGHT, panel + panel + BAR + 90)
    top, bottom = canvas[4, panel + panel // 2], canvas[-5, panel + panel // 2]
    assert top[2] > top[0] and bottom[0] > bottom[2]  # shown: low values on top (blue), high below (red)


def test_inspect_shows_what_a_gdepth_file_does_not_say():
    """Lens Blur reads reported accuracy relative, filtered, quality high and DepthDataVersion 65541."""
    path = sample("motorola-lensblur-gdepth.jpg")
    shown = subprocess.run([sys.executable, "-m", "gpu_depth", "inspect", str(path)], capture_output=True, text=True)
    fields = dict(line.split(None, 1) for line in shown.stdout.splitlines() if line.strip())
    assert {fields[k] for k in ("accuracy", "filtered", "quality", "depth_data_version")} == {"unknown"}


def test_the_portrait_matte_is_the_last_panel(tmp_path):
    from gpu_depth.cli.preview import write_preview

    write_preview(sample("iphoneXS-matte.jpg"), tmp_path / "p.png")
    canvas = np.asarray(Image.open(tmp_path / "p.png").convert("RGB")).astype(int)
    matte_width = round(1158 * HEIGHT / 1544)  # the 1158x1544 matte beside the upright 2316x3088 photo
    matte = gpu_depth.read_auxiliary(sample("iphoneXS-matte.jpg")).pixels
    expected = np.asarray(Image.fromarray(matte).resize((matte_width, HEIGHT))).astype(int)
    assert np.array_equal(canvas[:, -matte_width:, 1], expected) and canvas.shape[1] > matte_width + BAR
