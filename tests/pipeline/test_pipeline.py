"""The bulk pipeline end to end: real photos, real containers, real worker processes."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers.pipeline import CONVERT, dead_pid, make_dataset, report_lines
from PIL import Image

from gpu_depth import read_depth
from gpu_depth.cli.main import main
from gpu_depth.fileio import TEMP_SUFFIX, temp_path
from gpu_depth.pipeline.example import gray_depth, render


def convert(*args):
    return main(["convert", "--quiet", "--workers", "2", "--near", "0.5", "--far", "10", *map(str, args)])


def test_batch_with_broken_inputs_fails_only_those(tmp_path):
    photos, depths = make_dataset(tmp_path, 200, size=(32, 24))
    good = (depths / "p0000.png").read_bytes()
    (depths / "p0001.png").write_bytes(good[: len(good) // 2])  # truncated PNG
    Image.fromarray(np.zeros((10, 30), np.uint16)).save(depths / "p0002.png")  # wrong size (aspect)
    (depths / "p0003.png").unlink()
    (depths / "p0003.png").symlink_to(tmp_path / "gone.png")  # unreadable
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(depths / "p0004.png")  # not grayscale
    (depths / "p0005.png").unlink()
    np.save(depths / "p0005.npy", np.full((24, 32), np.nan, np.float32))  # NaN-only map
    out = tmp_path / "out"
    assert convert("--photos", photos, "--depth", depths, "--preset", "apple-gray", "--out", out) == 1
    items, (summary,) = report_lines(out / "report.jsonl")
    failed = {line["photo"].rsplit("/", 1)[1]: line["error"] for line in items if line["status"] == "failed"}
    assert sorted(failed) == [f"p000{i}.jpg" for i in range(1, 6)]
    assert "cannot decode" in failed["p0001.jpg"] and "aspect ratio" in failed["p0002.jpg"]
    assert "cannot read" in failed["p0003.jpg"] and "grayscale" in failed["p0004.jpg"]
    assert "no valid depth pixel" in failed["p0005.jpg"]
    assert (summary["ok"], summary["failed"]) == (195, 5)
    assert {line["backend"] for line in items if line["status"] == "ok"} == {summary["backend"]}
    outputs = sorted(out.glob("*.jpg"))
    assert len(outputs) == 195 and all(read_depth(path) is not None for path in outputs[:20])
    assert not list(out.glob(f"*{TEMP_SUFFIX}"))


def test_shards_together_equal_one_run(tmp_path):
    photos, depths = make_dataset(tmp_path, 12)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert convert("--photos", photos, "--depth", depths, "--out", whole) == 0
    for index in range(3):
        assert convert("--photos", photos, "--depth", depths, "--out", parts, "--shard", f"{index}/3") == 0
    names = sorted(p.name for p in whole.glob("*.jpg"))
    assert names == sorted(p.name for p in parts.glob("*.jpg")) and len(names) == 12
    assert all((whole / n).read_bytes() == (parts / n).read_bytes() for n in names)
    assert len(list(parts.glob("report.shard-*-of-3.jsonl"))) == 3


def descendants(pid):
    """The processes below ``pid`` (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                children.setdefault(int(stat.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="workers follow their driver through Linux's parent-death signal")
def test_sigkill_of_the_driver_ends_its_workers_then_resume_converts_exactly_the_missing(tmp_path):
    """Workers outlived a SIGKILLed driver, went on writing, and held the caller's stdout/stderr open."""
    photos, depths = make_dataset(tmp_path, 60, size=(320, 240))
    out = tmp_path / "out"
    command = [*CONVERT, "--batch-size", "4", "--photos", str(photos), "--depth", str(depths), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(out.glob("p*.jpg"))) < 10 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = descendants(process.pid)
    assert workers, "the driver should have started its workers"
    process.kill()
    killed = time.monotonic()
    while any(map(alive, workers)) and time.monotonic() < killed + 2:
        time.sleep(0.02)
    assert not any(map(alive, workers)), "workers outlived their driver by 2 s"
    process.communicate(timeout=5)  # no worker holds the pipes: they close at once
    before = {p.name for p in out.glob("p*.jpg")}
    assert 10 <= len(before) < 60, "the run should have been killed part-way"
    time.sleep(0.3)
    assert {p.name for p in out.glob("p*.jpg")} == before, "something was written after the kill"
    assert subprocess.run([*command, "--resume"], stderr=subprocess.DEVNULL).returncode == 0
    items, summaries = report_lines(out / "report.jsonl")
    assert len(items) == 60 and len(summaries) == 1  # the report lists each item once
    done = {line["output"].rsplit("/", 1)[1] for line in items if line["status"] == "ok"}
    assert done == {f"p{i:04d}.jpg" for i in range(60)} - before
    assert {line["output"].rsplit("/", 1)[1] for line in items if line["status"] == "skipped"} == before
    assert len(list(out.glob("p*.jpg"))) == 60 and all(read_depth(p) is not None for p in out.glob("p*.jpg"))
    assert not list(out.glob(f".*{TEMP_SUFFIX}"))


def test_a_shard_removes_the_stale_temps_of_every_shard_and_leaves_live_ones(tmp_path):
    """Temporary files of other shards' killed runs stayed in the output folder forever."""
    photos, depths = make_dataset(tmp_path, 6)
    out = tmp_path / "out"
    out.mkdir()
    stale = [temp_path(out / name, pid=dead_pid()) for name in [f"p{i:04d}.jpg" for i in range(6)] + ["old.heic"]]
    live = temp_path(out / "p0001.jpg")  # a writer still at work (this process)
    for path in [*stale, live]:
        path.write_bytes(b"partial")
    assert convert("--photos", photos, "--depth", depths, "--out", out, "--shard", "1/3") == 0
    assert list(out.glob(f".*{TEMP_SUFFIX}")) == [live]


def test_exif_orientation_depth_is_stored_like_the_photo(tmp_path):
    rgb, depth = render(48, 64)  # displayed portrait
    stored = np.rot90(rgb, 1)  # orientation 6: stored landscape, shown turned 90° clockwise
    image = Image.fromarray(np.ascontiguousarray(stored))
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "photo.jpg", exif=exif)
    Image.fromarray(gray_depth(depth)).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    assert (
        convert(
            "--photo", tmp_path / "photo.jpg", "--depth", tmp_path / "photo.png", "--pixel-format", "fdep", "--out", out
        )
        == 0
    )
    result = read_depth(out / "photo.jpg")
    assert (result.width, result.height) == (64, 48)
    expected = np.rot90(0.5 + gray_depth(depth) / 65535 * 9.5, 1)
    error = np.abs(result.array - expected)  # lossy 8-bit JPEG: a few steps at edges, far less elsewhere
    assert np.median(error) < 9.5 / 255 / 2 and error.max() < 3 * 9.5 / 255


def test_manifest_paths_cannot_escape_the_output_folder(tmp_path):
    make_dataset(tmp_path / "data", 2)
    (tmp_path / "run").mkdir()
    manifest = tmp_path / "run" / "pairs.csv"
    manifest.write_text(
        "photo,depth\n../data/photos/p0000.jpg,../data/depth/p0000.png\n"
        "../data/photos/p0001.jpg,../data/depth/p0001.png\n"
    )
    out = tmp_path / "run" / "out"
    assert convert("--manifest", manifest, "--out", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["p0000.jpg", "p0001.jpg", "report.jsonl"]


def test_output_never_overwrites_an_input(tmp_path):
    photos, depths = make_dataset(tmp_path, 1)
    before = (photos / "p0000.jpg").read_bytes()
    assert convert("--photos", photos, "--depth", depths, "--out", photos) == 1
    assert (photos / "p0000.jpg").read_bytes() == before


def test_bad_usage_is_one_line_and_exit_2(tmp_path, capsys):
    assert convert("--out", tmp_path) == 2
    assert "give exactly one input" in capsys.readouterr().err
    assert (
        main(
            [
                "convert",
                "--photos",
                str(tmp_path),
                "--depth",
                str(tmp_path),
                "--near",
                "5",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "preset apple-gray needs --near and --far" in err and err.count("\n") == 1


def test_example_converts_into_files_three_readers_accept(tmp_path):
    """README's first command: pillow-heif, exiftool and our reader accept what it writes."""
    import pillow_heif
    from helpers import tool

    out = tmp_path / "out"
    assert main(["convert", "--example", str(out), "--quiet", "--workers", "2"]) == 0
    outputs = sorted(out.glob("scene-*"))
    assert {p.suffix for p in outputs} == {".heic", ".jpg"} and len(outputs) == 4
    for path in outputs:
        depth = read_depth(path)
        assert depth.pixel_format.fourcc == "hdis" and (depth.width, depth.height) == (768, 576)
        assert 1 / 9.0 - 0.01 < np.nanmin(depth.array) and np.nanmax(depth.array) < 1 / 1.4
    for path in out.glob("*.heic"):
        (image,) = pillow_heif.open_heif(path).info["depth_images"]
        assert image.size == (768, 576) and image.info["metadata"]["representation_type"] == 1
    for path in out.glob("*.jpg"):
        report = subprocess.run(
            [tool("exiftool"), "-n", "-MPFVersion", "-NumberOfImages", "-MPImageLength", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "0100" in report and "Number Of Images                : 2" in report


PEAK_RSS = """
import resource, sys
from gpu_depth.cli.main import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""


def test_memory_stays_flat_with_dataset_size(tmp_path):
    make_dataset(tmp_path, 2000, size=(32, 24))
    peaks = {}
    for count in (200, 2000):
        manifest = tmp_path / f"m{count}.csv"
        manifest.write_text(
            "photo,depth\n" + "".join(f"photos/p{i:04d}.jpg,depth/p{i:04d}.png\n" for i in range(count))
        )
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                PEAK_RSS,
                *CONVERT[3:],
                "--manifest",
                str(manifest),
                "--out",
                str(tmp_path / f"out{count}"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        peaks[count] = [int(v) for v in run.stdout.split()]
    assert len(list((tmp_path / "out2000").glob("*.jpg"))) == 2000
    assert peaks[2000][0] <= 1.5 * peaks[200][0], peaks  # the driver process
    assert peaks[2000][1] <= 1.5 * peaks[200][1], peaks  # the largest worker


def test_inspect_extract_and_preview_an_iphone_file(tmp_path, capsys):
    from helpers import sample

    path = sample("iphone13pro-pug.heic")
    assert main(["inspect", "--json", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["container"], summary["location"], summary["pixel_format"]) == ("heic", "item 54", "hdis")
    assert (summary["width"], summary["height"], summary["min"], summary["max"]) == (768, 576, 1.498046875, 4.3828125)
    for suffix in (".npy", ".png", ".tif"):
        assert main(["extract", str(path), "--out", str(tmp_path / f"d{suffix}")]) == 0
    expected = read_depth(path).array.astype(np.float32)
    assert np.array_equal(np.load(tmp_path / "d.npy"), expected)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "d.tif")), expected)
    png = Image.open(tmp_path / "d.png")
    low, high = float(png.text["gpu-depth:Code1"]), float(png.text["gpu-depth:Code65535"])
    decoded = low + (np.asarray(png).astype(np.float64) - 1) / 65534 * (high - low)
    assert np.abs(decoded - expected).max() <= (high - low) / 65534
    assert main(["preview", str(path), "--out", str(tmp_path / "p.png")]) == 0
    assert Image.open(tmp_path / "p.png").height == 512


def test_dng_and_plain_tiff_photos_are_measured_by_their_own_readers(tmp_path):
    from helpers.dng import make_dng

    from gpu_depth.pipeline.stages import _photo_size

    (tmp_path / "linear.dng").write_bytes(make_dng("linear-raw-in-ifd0"))  # Pillow cannot open this one
    (tmp_path / "cfa.dng").write_bytes(make_dng())  # Pillow would read IFD0's 24x16 preview
    Image.fromarray(np.zeros((30, 50, 3), np.uint8)).save(tmp_path / "plain.tif")
    assert _photo_size(tmp_path / "linear.dng") == (56, 40)
    assert _photo_size(tmp_path / "cfa.dng") == (96, 64)
    assert _photo_size(tmp_path / "plain.tif") == (50, 30)


def test_gdepth_flag_adds_googles_depth_to_jpeg_outputs(tmp_path):
    from gpu_depth.containers.jpeg import gdepth
    from gpu_depth.containers.jpeg.segments import parse_jpeg

    photos, depths = make_dataset(tmp_path, 1)
    assert convert("--photos", photos, "--depth", depths, "--gdepth", "--out", tmp_path / "out") == 0
    data = (tmp_path / "out" / "p0000.jpg").read_bytes()
    assert gdepth.read(data, parse_jpeg(data)) is not None
    assert read_depth(tmp_path / "out" / "p0000.jpg").pixel_format.fourcc == "hdis"  # Apple's map comes first


@pytest.mark.parametrize(
    ("flag", "frame"), [((), b"\xff\xc3\x00\x0b\x10"), (("--jpeg-depth", "baseline"), b"\xff\xc0")]
)
def test_jpeg_depth_flag_picks_how_the_map_is_coded(tmp_path, flag, frame):
    photos, depths = make_dataset(tmp_path, 1)
    assert convert("--photos", photos, "--depth", depths, *flag, "--out", tmp_path / "out") == 0
    data = (tmp_path / "out" / "p0000.jpg").read_bytes()
    mpf = data.index(b"MPF\0", data.index(b"\xff\xd9"))  # the depth image's own MPF segment
    assert data.find(frame, mpf) > 0  # SOF3 16-bit (lossless, default) or SOF0 (baseline)
    assert read_depth(tmp_path / "out" / "p0000.jpg").pixel_format.fourcc == "hdis"


@pytest.mark.parametrize("flags", [(), ("--depth-xmp", "iphone", "--exif-portrait")], ids=["default", "iphone"])
def test_portrait_signal_flags(tmp_path, flags):
    """By default the XMP is ImageIO's for a custom map and the Exif is untouched; on request an iPhone's."""
    from gpu_depth.containers import exif
    from gpu_depth.containers.jpeg.segments import APP1, EXIF_ID, parse_jpeg

    photos, depths = make_dataset(tmp_path, 1)
    tags = Image.Exif()
    tags.get_ifd(0x8769)[0x8827] = 100  # ISO, in the Exif IFD iPhones write
    with Image.open(photos / "p0000.jpg") as image:
        image.save(photos / "p0000.jpg", exif=tags, quality=85)
    assert convert("--photos", photos, "--depth", depths, *flags, "--out", tmp_path / "out") == 0
    data = (tmp_path / "out" / "p0000.jpg").read_bytes()
    (segment,) = parse_jpeg(data).applications(data, APP1, EXIF_ID)
    rendered = exif.custom_rendered(segment.payload(data)[len(EXIF_ID) :])
    metadata = read_depth(tmp_path / "out" / "p0000.jpg").metadata
    if flags:
        assert (rendered, metadata.version, metadata.quality, metadata.portrait_score_is_high) == (
            8,
            85538,
            "high",
            True,
        )
    else:
        assert (rendered, metadata.version, metadata.quality, metadata.portrait_score_is_high) == (
            None,
            None,
            "low",
            False,
        )


@pytest.mark.parametrize(("flag", "item_type"), [((), "hvc1"), (("--heic-depth-codec", "jpeg"), "jpeg")])
def test_heic_depth_codec_flag_picks_the_depth_items_coding(tmp_path, flag, item_type):
    from gpu_depth.containers.heic import isobmff
    from gpu_depth.containers.heic import plugin as heic

    photos, depths = make_dataset(tmp_path, 1)
    out = tmp_path / "out"
    assert convert("--photos", photos, "--depth", depths, "--container", "heic", *flag, "--out", out) == 0
    meta = isobmff.parse_file((out / "p0000.heic").read_bytes()).meta
    assert meta.item(heic.find_depth_item(meta)).item_type == item_type
    assert read_depth(out / "p0000.heic").pixel_format.fourcc == "hdis"


def test_shards_into_the_photos_folder_never_overwrite_an_input(tmp_path):
    """b.jpg and b.jpeg fell in different shards and both wrote b.jpg: one shard replaced the other's input."""
    make_dataset(tmp_path, 2)
    photos, depths = tmp_path / "photos", tmp_path / "depth"
    (photos / "p0000.jpg").rename(photos / "b.jpg")
    (photos / "p0001.jpg").rename(photos / "b.jpeg")
    (depths / "p0000.png").rename(depths / "b.png")
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    errors = []
    for index in range(2):
        convert("--photos", photos, "--depth", depths, "--out", photos, "--shard", f"{index}/2")
        items, _ = report_lines(photos / f"report.shard-{index}-of-2.jsonl")
        errors += [line["error"] for line in items if line["status"] == "failed"]
    assert {p.name: p.read_bytes() for p in photos.iterdir() if p.suffix != ".jsonl"} == before
    assert sorted(errors) == sorted(
        [
            f"output b.jpg is also that of {photos / 'b.jpeg'}",
            f"output {photos / 'b.jpg'} is the input {photos / 'b.jpg'}: choose another --out",
        ]
    )
