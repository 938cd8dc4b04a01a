"""Mistakes caught before any item, through the console script: exit 2, one line naming the flag, nothing
written; help for every option; shell completion; ``info``'s versions; sizes that fit every photo."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from helpers.pipeline import CONVERT, make_dataset, report_lines
from PIL import Image

from gpu_depth import read_depth
from gpu_depth.cli.main import _parser

GPU_DEPTH = [sys.executable, "-m", "gpu_depth"]


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--quality", "150"], "--quality"),
        (["--encoder-preset", "turbo"], "--encoder-preset"),
        (["--near", "0"], "--near"),
        (["--near", "5", "--far", "5"], "--near (5 m) must be less than --far (5 m)"),
        (["--shard", "3"], "--shard"),
        (["--shard", "4/4"], "--shard"),
        (["--depth-size", "big"], "--depth-size"),
        (["--container", "png"], "--container"),
        (["--progress-interval", "0"], "--progress-interval"),
    ],
)
def test_bad_options_are_exit_2_before_any_item(tmp_path, extra, flag):
    photos, depths = make_dataset(tmp_path, 2)
    out = tmp_path / "out"
    command = [*CONVERT, "--photos", str(photos), "--depth", str(depths), "--out", str(out), *extra]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and not out.exists()
    (line,) = run.stderr.splitlines()
    assert flag in line and "Traceback" not in line


def test_png_photos_with_the_default_container_name_the_flag(tmp_path):
    photos, depths = make_dataset(tmp_path, 2, suffix=".png")
    out = tmp_path / "out"
    command = [*CONVERT, "--photos", str(photos), "--depth", str(depths), "--out", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and not out.exists()
    (line,) = run.stderr.splitlines()
    assert "PNG photos cannot keep their container: give --container heic, jpeg or dng" in line
    run = subprocess.run([*command, "--container", "jpeg"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_every_convert_option_has_help():
    convert = _parser()._subparsers._group_actions[0].choices["convert"]
    missing = [action.option_strings for action in convert._actions if not action.help]
    assert not missing
    text = " ".join(convert.format_help().split())
    assert "(default: 768)" in text and "gpu-depth convert --example out/" in text and "black = near" in text


def test_completion_script():
    if importlib.util.find_spec("shtab") is None:
        pytest.skip("shtab is not installed (extra: completion)")
    run = subprocess.run([*GPU_DEPTH, "completion", "bash"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "--depth-suffix" in run.stdout and "complete" in run.stdout


def test_info_names_its_own_libheif_and_ray_versions():
    import pillow_heif

    run = subprocess.run([*GPU_DEPTH, "info"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0
    lines = run.stdout.splitlines()
    assert "gpu_depth: 0.1.0" in lines
    assert any(line.startswith(f"libheif: {pillow_heif.libheif_info()['libheif']} (HEVC encoder: ") for line in lines)
    assert any(line.startswith("ray: ") for line in lines)
    assert "lossless-JPEG codec: compiled" in lines and "area resampler: compiled" in lines


def test_depth_size_longest_side_fits_every_photo(tmp_path):
    """One folder of 4:3, 3:2 and portrait photos, all given an iPhone-like size; a photo smaller than 768
    is never given a larger map; a larger map than the photo asked for with native is said so."""
    photos, depths, out = tmp_path / "photos", tmp_path / "depth", tmp_path / "out"
    photos.mkdir()
    depths.mkdir()
    for name, photo, depth in (("wide", (1024, 768), (256, 192)), ("three", (1200, 800), (300, 200)),
                               ("tall", (600, 900), (400, 600)), ("small", (320, 240), (640, 480))):  # fmt: skip
        Image.new("RGB", photo, "gray").save(photos / f"{name}.jpg")
        Image.fromarray(np.full(depth[::-1], 128, np.uint8)).save(depths / f"{name}.png")
    command = [*CONVERT, "--photos", str(photos), "--depth", str(depths), "--out", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    sizes = {p.stem: (d.width, d.height) for p in out.glob("*.jpg") if (d := read_depth(p))}
    assert sizes == {"wide": (768, 576), "three": (768, 512), "tall": (512, 768), "small": (320, 240)}
    assert "larger than" not in run.stderr

    run = subprocess.run([*command, "--depth-size", "native", "--overwrite"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    items, (summary,) = report_lines(out / "report.jsonl")
    warned = [line for line in items if "warning" in line]
    assert [line["photo"].rsplit("/", 1)[1] for line in warned] == ["small.jpg"] and summary["larger_than_photo"] == 1
    assert "small.jpg: warning: the stored map 640x480 is larger than the photo 320x240" in run.stderr
