"""A bulk run survives what its inputs can do: 200 items, 20 of them hostile in 14 ways, fail exactly those 20,
one line each, and nothing else is touched; alone, in 4 shards into one folder, and writing beside the photos."""

import io
import os
import struct
import subprocess
import zlib

import numpy as np
import pytest
from helpers.pipeline import CONVERT, make_dataset, report_lines
from PIL import Image

from gpu_depth import DepthData, PixelFormat
from gpu_depth.api import attach_depth
from gpu_depth.fileio import TEMP_SUFFIX

COUNT = 200
SIZE = (32, 24)


def png_header(width, height):
    """A PNG of only its signature, IHDR (16-bit gray) and IEND: 57 bytes that claim any size."""

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


def zero_width(photo):
    """The JPEG with its SOF0 width set to 0."""
    sof = photo.index(b"\xff\xc0")
    return photo[: sof + 7] + b"\0\0" + photo[sof + 9 :]


def utf7_depth(tmp_path, photo):
    """The photo with a depth map already attached whose XMP declares encoding utf-7 (same length)."""
    source, out = tmp_path / "utf7-in.jpg", tmp_path / "utf7-out.jpg"
    source.write_bytes(photo)
    values = np.linspace(0.5, 2.0, SIZE[0] * SIZE[1], dtype=np.float32).reshape(SIZE[1], SIZE[0])
    attach_depth(source, DepthData.from_array(values, PixelFormat.parse("hdis")), out)
    data = out.read_bytes()
    declaration = b'<?xml version="1.0" encoding="utf-7"?>'
    start = data.index(b"<x:xmpmeta", data.index(b"pixeldatainfo") - 400)
    end = data.index(b"</x:xmpmeta>", start)
    lines, spare = data[start:end].split(b"\n"), len(declaration)
    for number, line in enumerate(lines):  # drop as much indentation as the declaration takes, to keep offsets
        cut = min(spare, len(line) - len(line.lstrip(b" ")))
        lines[number], spare = line[cut:], spare - cut
    assert spare == 0
    patched = data[:start] + declaration + b"\n".join(lines) + data[end:]
    assert len(patched) == len(data)
    return patched


def make_chaos(folder):
    """``COUNT`` photo/depth pairs in folder/photos and folder/depth, 20 of them hostile; their names."""
    photos, depths = make_dataset(folder, COUNT, SIZE, suffix=".jpeg")
    photo = (photos / "p0000.jpeg").read_bytes()
    good_depth = (depths / "p0000.png").read_bytes()
    rgb_depth = io.BytesIO()
    Image.fromarray(np.zeros((SIZE[1], SIZE[0], 3), np.uint8)).save(rgb_depth, "PNG")
    long_name = "q" * 240

    def photo_of(index, data):
        (photos / f"p{index:04d}.jpeg").write_bytes(data)

    def depth_of(index, data):
        (depths / f"p{index:04d}.png").write_bytes(data)

    def replaced(index, make):
        path = depths / f"p{index:04d}.png"
        path.unlink()
        make(path)

    hostile = {
        "truncated depth": lambda i: depth_of(i, good_depth[: len(good_depth) // 2]),
        "truncated photo": lambda i: photo_of(i, photo[:300]),
        "photo of width 0": lambda i: photo_of(i, zero_width(photo)),
        "depth claiming 20000x20000": lambda i: depth_of(i, png_header(20000, 20000)),
        "depth of 100000x1": lambda i: depth_of(
            i, png_header(100000, 1)[:-12] + _idat(100000) + png_header(1, 1)[-12:]
        ),
        "depth a FIFO": lambda i: replaced(i, os.mkfifo),
        "depth /dev/zero": lambda i: replaced(i, lambda p: p.symlink_to("/dev/zero")),
        "depth a folder": lambda i: replaced(i, os.mkdir),
        "depth not gray": lambda i: depth_of(i, rgb_depth.getvalue()),
        "photo with a utf-7 depth XMP": lambda i: photo_of(i, utf7_depth(folder, photo)),
        "photo not a photo": lambda i: photo_of(i, b"GIF89a not a photo at all"),
        "output name taken": lambda i: (
            (photos / f"p{i:04d}.jpeg").rename(photos / f"p{i - 1:04d}.JPEG"),
            (depths / f"p{i:04d}.png").unlink(),
        ),
        "name too long to write": lambda i: (
            (photos / f"p{i:04d}.jpeg").rename(photos / f"{long_name}.jpeg"),
            (depths / f"p{i:04d}.png").rename(depths / f"{long_name}.png"),
        ),
        "depth of NaN": lambda i: replaced(i, lambda p: np.save(p.with_suffix(".npy"), np.full(SIZE[::-1], np.nan))),
    }
    twice = {
        "truncated depth",
        "truncated photo",
        "photo of width 0",
        "depth claiming 20000x20000",
        "depth of 100000x1",
        "photo with a utf-7 depth XMP",
    }
    kinds = [kind for kind in hostile for _ in range(2 if kind in twice else 1)]
    assert len(kinds) == 20 and len(hostile) >= 10
    for index, kind in zip(range(7, COUNT, COUNT // 20), kinds, strict=False):
        hostile[kind](index)
    return photos, depths


def _idat(width):
    """An IDAT of one all-zero 16-bit gray row ``width`` pixels wide."""
    body = zlib.compress(b"\0" * (1 + 2 * width))
    return struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))


def regular_files(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


def convert(photos, depths, out, *extra):
    inputs = ["--photos", str(photos), "--depth", str(depths), "--out", str(out)]
    return subprocess.run(
        [*CONVERT, "--fit", "stretch", "--depth-size", "native", *inputs, *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )


def check_outcome(out, runs, inputs):
    """Exactly the 20 hostile items failed, one stderr line each; the others verify clean; inputs unchanged."""
    items, summaries = [], []
    for report in sorted(out.glob("report*.jsonl")):
        lines, summary = report_lines(report)
        items += lines
        summaries += summary
    assert len(summaries) == len(runs) and all("Traceback" not in run.stderr for run in runs)
    failed = [line for line in items if line["status"] == "failed"]
    assert len(items) == COUNT and len(failed) == 20, [line["error"] for line in failed]
    assert sum(s["ok"] for s in summaries) == COUNT - 20 and sum(s["failed"] for s in summaries) == 20
    lines = [line for run in runs for line in run.stderr.splitlines()]
    item_lines = [line for line in lines if " converted, " not in line and not line.startswith("gpu-depth: mapping ")]
    assert len(item_lines) == 20, lines
    assert all(run.returncode == (1 if s["failed"] else 0) for run, s in zip(runs, summaries, strict=True))
    ok = {line["output"] for line in items if line["status"] == "ok"}
    assert len(ok) == COUNT - 20 and all(os.path.isfile(path) for path in ok)
    assert not list(out.glob(f".*{TEMP_SUFFIX}"))
    assert {path: data for path, data in regular_files(out.parent).items() if path in inputs} == inputs
    return failed


@pytest.mark.parametrize("mode", ["one run", "4 shards into one folder", "--out is the photos folder"])
def test_chaos_run_fails_exactly_the_hostile_items(tmp_path, mode):
    photos, depths = make_chaos(tmp_path)
    inputs = regular_files(tmp_path)
    out = photos if mode == "--out is the photos folder" else tmp_path / "out"
    if mode == "4 shards into one folder":
        runs = [convert(photos, depths, out, "--shard", f"{index}/4") for index in range(4)]
    else:
        runs = [convert(photos, depths, out)]
    failed = check_outcome(out, runs, inputs)
    errors = " | ".join(line["error"] for line in failed)
    assert "unexpected" not in errors and "stretch" not in errors  # each named by its cause
    for expected in ("exceeds the", "not a regular file", "is also that of", "already has a depth map", "no pixels"):
        assert expected in errors, errors
