"""Folder mode through the console script: subfolders with -r, their structure kept under --out, every photo
and depth-map kind single-pair mode takes, and a run that finds nothing is exit 1 saying what it looked for."""

import subprocess

import numpy as np
from helpers.pipeline import CONVERT, report_lines
from PIL import Image

from gpu_depth import read_depth
from gpu_depth.pipeline.example import gray_depth, render


def pair(photo, depth, size=(64, 48), save=None):
    photo.parent.mkdir(parents=True, exist_ok=True)
    depth.parent.mkdir(parents=True, exist_ok=True)
    rgb, metres = render(*size)
    Image.fromarray(rgb).save(photo, format="JPEG" if photo.suffix in (".jpg", ".mpo") else None)
    (save or (lambda path, gray: Image.fromarray(gray).save(path)))(depth, gray_depth(metres))


def convert(photos, depths, out, *extra):
    command = [*CONVERT, "--photos", str(photos), "--depth", str(depths), "--out", str(out), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_nested_folders_are_converted_with_their_structure(tmp_path):
    photos, depths, out = tmp_path / "photos", tmp_path / "depth", tmp_path / "out"
    for name in ("top", "2024/a", "2024/trip/b"):
        pair(photos / f"{name}.jpg", depths / f"{name}.png")
    run = convert(photos, depths, out, "-r")
    assert run.returncode == 0, run.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert written == ["2024/a.jpg", "2024/trip/b.jpg", "top.jpg"]
    assert all(read_depth(out / name) is not None for name in written)
    items, (summary,) = report_lines(out / "report.jsonl")
    assert summary["ok"] == 3 and {line["output"] for line in items} == {str(out / name) for name in written}


def test_without_r_subfolders_are_not_searched_and_an_empty_match_is_exit_1(tmp_path):
    photos, depths, out = tmp_path / "photos", tmp_path / "depth", tmp_path / "out"
    pair(photos / "2024" / "a.jpg", depths / "2024" / "a.png")
    run = convert(photos, depths, out)
    assert run.returncode == 1 and not out.exists()
    (line,) = run.stderr.splitlines()
    assert line.startswith("gpu-depth: nothing to convert: no photo (") and ".jpg" in line
    assert "add -r to search them" in line


def test_folder_mode_takes_what_one_pair_takes(tmp_path):
    """.mpo and .webp photos; .npy and .tif maps; a .jpg map is refused by content, naming what it is."""
    photos, depths, out = tmp_path / "photos", tmp_path / "depth", tmp_path / "out"
    pair(photos / "stereo.mpo", depths / "stereo.npy", save=lambda path, gray: np.save(path, gray))
    pair(photos / "web.webp", depths / "web.tif")
    pair(
        photos / "lossy.jpg",
        depths / "lossy.jpg",
        save=lambda path, gray: Image.fromarray((gray >> 8).astype(np.uint8)).save(path),
    )
    pair(photos / "fake.jpg", depths / "fake.png")
    (photos / "fake.jpg").write_bytes(b"GIF89a not a photo")
    run = convert(photos, depths, out, "--container", "jpeg")
    assert run.returncode == 1
    items, (summary,) = report_lines(out / "report.jsonl")
    status = {line["photo"].rsplit("/", 1)[1]: line for line in items}
    assert {name: line["status"] for name, line in status.items()} == {
        "stereo.mpo": "ok",
        "web.webp": "ok",
        "lossy.jpg": "failed",
        "fake.jpg": "failed",
    }
    (fake,) = [line for line in run.stderr.splitlines() if "fake.jpg" in line]
    assert fake.count(str(photos / "fake.jpg")) == 1  # no message names its file twice
    assert "looks like a JPEG image" in status["lossy.jpg"]["error"]
    assert "unmatched:" not in run.stderr and summary["unmatched"] == 0


def test_photos_and_maps_in_one_folder_told_apart_by_the_suffix(tmp_path):
    both, out = tmp_path / "both", tmp_path / "out"
    pair(both / "a.jpg", both / "a_depth.png")
    pair(both / "b.jpg", both / "b_depth.png")
    run = convert(both, both, out, "--depth-suffix", "_depth")
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.glob("*.jpg")) == ["a.jpg", "b.jpg"] and "unmatched:" not in run.stderr
