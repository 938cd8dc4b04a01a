"""``gpu-depth convert --matte DIR``: mattes paired by stem, written with the depth, kept or dropped on replace."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.pipeline import report_lines
from PIL import Image

import gpu_depth
from gpu_depth.cli.main import main
from gpu_depth.pipeline.mattes import matte_file

FLAGS = ["--near", "0.5", "--far", "5", "--quiet", "--workers", "1"]


def ramp(width: int = 64, height: int = 48) -> np.ndarray:
    return (np.arange(width * height).reshape(height, width) % 256).astype(np.uint8)


@pytest.fixture
def folders(tmp_path):
    for name in ("photos", "depth", "mattes"):
        (tmp_path / name).mkdir()
    for stem in ("a", "b"):
        Image.fromarray(np.full((96, 128, 3), 90, np.uint8)).save(tmp_path / "photos" / f"{stem}.jpg")
        depth = np.tile(np.linspace(0, 65535, 128), (96, 1)).astype(np.uint16)
        Image.fromarray(depth).save(tmp_path / "depth" / f"{stem}.png")
    Image.fromarray(ramp()).save(tmp_path / "mattes" / "a_matte.png")
    return tmp_path


def convert(folders, *extra: str, photos: str = "photos", out: str = "out") -> list[dict]:
    args = ["convert", "--photos", str(folders / photos), "--depth", str(folders / "depth"), "--out"]
    assert main([*args, str(folders / out), *FLAGS, *extra]) == 0
    lines, _ = report_lines(folders / out / "report.jsonl")
    return sorted(lines, key=lambda line: line["photo"])


def test_each_photo_gets_its_matte_by_stem(folders):
    lines = convert(folders, "--matte", str(folders / "mattes"), "--matte-suffix", "_matte", "--matte-kind", "hair")
    assert [(line["matte"], line["mattes_kept"]) for line in lines] == [
        (str(folders / "mattes/a_matte.png"), []),
        (None, []),
    ]
    (matte,) = gpu_depth.read_mattes(folders / "out/a.jpg")
    assert (matte.kind.name, matte.width, matte.height) == ("hair", 64, 48)
    assert np.abs(matte.pixels.astype(int) - ramp()).max() <= 1
    assert gpu_depth.read_mattes(folders / "out/b.jpg") == []


def test_redepthing_keeps_the_photos_mattes_and_says_so_unless_dropped(folders, capsys):
    convert(folders, "--matte", str(folders / "mattes"), "--matte-suffix", "_matte")
    capsys.readouterr()
    kept = convert(folders, "--replace", "--container", "heic", photos="out", out="kept")
    assert [line["mattes_kept"] for line in kept if "mattes_kept" in line] == [["portrait-effects"]]
    assert "1 outputs keep their photo's own mattes" in capsys.readouterr().err
    assert [m.kind.name for m in gpu_depth.read_mattes(folders / "kept/a.heic")] == ["portrait-effects"]
    dropped = convert(folders, "--replace", "--drop-mattes", photos="out", out="dropped")
    assert [line["mattes_kept"] for line in dropped] == [[], []]
    assert gpu_depth.read_mattes(folders / "dropped/a.jpg") == []


def test_a_new_matte_replaces_the_photos_own_of_its_kind(folders):
    convert(folders, "--matte", str(folders / "mattes"), "--matte-suffix", "_matte")
    Image.fromarray(255 - ramp()).save(folders / "mattes" / "a.png")
    lines = convert(folders, "--replace", "--matte", str(folders / "mattes"), photos="out", out="again")
    assert lines[0]["mattes_kept"] == []
    (matte,) = gpu_depth.read_mattes(folders / "again/a.jpg")
    assert np.abs(matte.pixels.astype(int) - (255 - ramp())).max() <= 1


def test_bad_matte_options_are_one_line(folders, capsys):
    args = [
        "convert",
        "--photos",
        str(folders / "photos"),
        "--depth",
        str(folders / "depth"),
        "--out",
        str(folders / "o"),
    ]
    assert main([*args, *FLAGS, "--matte", str(folders / "nowhere")]) == 2
    assert "--matte" in capsys.readouterr().err
    Image.fromarray(ramp()).save(folders / "mattes" / "a_matte.tif")
    assert main([*args, *FLAGS, "--matte", str(folders / "mattes"), "--matte-suffix", "_matte"]) == 1
    lines, _ = report_lines(folders / "o" / "report.jsonl")
    (failed,) = [line for line in lines if line["status"] == "failed"]
    assert "several mattes match a.jpg" in failed["error"] and not (folders / "o" / "a.jpg").exists()


def test_matte_file_pairs_by_exact_stem(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "ab.png").write_bytes(b"")
    (tmp_path / "a.txt").write_bytes(b"")
    assert matte_file(tmp_path / "a.jpg", tmp_path, "") == tmp_path / "a.png"
    assert matte_file(tmp_path / "c.jpg", tmp_path, "") is None


def test_a_recursive_run_pairs_mattes_in_the_photos_subfolder(folders):
    """photos/SUB/a.jpg takes mattes/SUB/a*, not a matte of the same stem elsewhere."""
    for name in ("photos", "depth", "mattes"):
        (folders / name / "sub").mkdir()
        for path in (folders / name).glob("a*.*"):
            path.rename(folders / name / "sub" / path.name)
    Image.fromarray(255 - ramp()).save(folders / "mattes" / "a_matte.png")  # a decoy at the top
    lines = convert(folders, "-r", "--matte", str(folders / "mattes"), "--matte-suffix", "_matte")
    assert [line["matte"] for line in lines] == [None, str(folders / "mattes/sub/a_matte.png")]
    (matte,) = gpu_depth.read_mattes(folders / "out/sub/a.jpg")
    assert np.abs(matte.pixels.astype(int) - ramp()).max() <= 1


def test_a_manifest_names_each_photos_matte(folders):
    (folders / "m.csv").write_text(
        "photo,depth,matte\nphotos/a.jpg,depth/a.png,mattes/a_matte.png\nphotos/b.jpg,depth/b.png,\n"
    )
    assert main(["convert", "--manifest", str(folders / "m.csv"), "--out", str(folders / "out"), *FLAGS]) == 0
    lines, _ = report_lines(folders / "out" / "report.jsonl")
    assert sorted(line.get("matte") or "" for line in lines) == ["", str(folders / "mattes/a_matte.png")]
    (matte,) = gpu_depth.read_mattes(folders / "out/a.jpg")
    assert matte.kind.name == "portrait-effects" and np.abs(matte.pixels.astype(int) - ramp()).max() <= 1
    assert gpu_depth.read_mattes(folders / "out/b.jpg") == []
