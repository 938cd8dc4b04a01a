"""The small subcommands through the console script: extract many files, help with defaults and examples."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

import gpu_depth
from gpu_depth.cli.main import main


def portrait(path, seed):
    Image.new("RGB", (64, 48), (seed * 40, 90, 120)).save(path.with_suffix(".src.jpg"))
    gray = np.random.default_rng(seed).integers(0, 256, (48, 64), dtype=np.uint8)
    depth = gpu_depth.convert(gray, "hdis", gpu_depth.DepthMapping("apple-gray", near=0.5, far=8.0))
    gpu_depth.attach_depth(path.with_suffix(".src.jpg"), depth, path)
    return depth


def test_extract_writes_each_file_into_a_folder_and_names_the_one_that_fails(tmp_path, capsys):
    depths = {name: portrait(tmp_path / f"{name}.jpg", seed) for seed, name in enumerate(("a", "b"))}
    plain = tmp_path / "plain.jpg"
    Image.new("RGB", (8, 8)).save(plain)
    files = [tmp_path / "a.jpg", plain, tmp_path / "b.jpg"]
    assert main(["extract", *map(str, files), "--out", str(tmp_path / "maps"), "--format", "npy"]) == 1
    assert "plain.jpg: no depth to extract" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["a.npy", "b.npy"]
    for name, depth in depths.items():
        assert np.array_equal(np.load(tmp_path / "maps" / f"{name}.npy"), depth.array.astype(np.float32))


def test_extract_one_file_to_a_named_file(tmp_path):
    depth = portrait(tmp_path / "a.jpg", 3)
    assert main(["extract", str(tmp_path / "a.jpg"), "--out", str(tmp_path / "a.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "a.npy"), depth.array.astype(np.float32))


def test_subcommand_help_shows_defaults_and_examples():
    run = subprocess.run([sys.executable, "-m", "gpu_depth", "extract", "--help"], capture_output=True, text=True)
    assert run.returncode == 0
    assert "(default: npy)" in run.stdout and "gpu-depth extract IMG_1.heic --out IMG_1.npy" in run.stdout
    assert "default: None" not in run.stdout


# ----------------------------------------------------------------------------------------------- mattes


def test_inspect_lists_every_auxiliary_image(capsys):
    from helpers import sample

    assert main(["inspect", "--json", str(sample("iphone14-front-mattes.heic"))]) == 0
    auxiliary = json.loads(capsys.readouterr().out)["auxiliary"]
    assert sorted(a["type"] for a in auxiliary) == sorted(
        ["teeth", "portrait-effects", "urn:com:apple:photo:2020:aux:hdrgainmap", "skin", "hair", "depth", "glasses"]
    )
    assert {(a["width"], a["height"]) for a in auxiliary if a["type"] != "depth"} == {(1158, 1544)}
    assert main(["inspect", str(sample("iphoneXS-matte.jpg"))]) == 0
    assert "auxiliary" in (out := capsys.readouterr().out) and "portrait-effects 1158x1544" in out


def test_extract_aux_saves_the_matte_and_names_a_missing_one(tmp_path, capsys):
    import numpy as np
    from helpers import sample
    from PIL import Image

    import gpu_depth

    source = sample("iphoneXS-matte.jpg")
    assert main(["extract", str(source), "--aux", "portrait-effects", "--out", str(tmp_path / "m.png")]) == 0
    saved = np.asarray(Image.open(tmp_path / "m.png"))
    assert saved.dtype == np.uint8 and np.array_equal(saved, gpu_depth.read_auxiliary(source).pixels)
    assert main(["extract", str(source), "--aux", "hair", "--out", str(tmp_path / "h.png")]) == 1
    assert "no hair matte to extract (--aux)" in capsys.readouterr().err
