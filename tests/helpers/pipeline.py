"""Running the console script and reading its outputs."""

import json
import sys

from PIL import Image

from gpu_depth.pipeline.example import gray_depth, render

#: ``gpu-depth convert`` run as its own process, with the options most tests share.
CONVERT = [
    sys.executable,
    "-m",
    "gpu_depth",
    "convert",
    "--quiet",
    "--workers",
    "2",
    "--near",
    "0.5",
    "--far",
    "10",
]


def report_lines(path):
    """The report's item lines and its summaries (its ``run`` header left out)."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    items = [line for line in lines if "summary" not in line and "run" not in line]
    return items, [line["summary"] for line in lines if "summary" in line]


def make_dataset(folder, count, size=(64, 48), suffix=".jpg"):
    """``count`` JPEG photos (named with ``suffix``) with 16-bit gray depth PNGs of the same scene."""
    photos, depths = folder / "photos", folder / "depth"
    photos.mkdir(parents=True)
    depths.mkdir()
    for index in range(count):
        rgb, depth = render(*size, shift=index / count)
        Image.fromarray(rgb).save(photos / f"p{index:04d}{suffix}", quality=85)
        Image.fromarray(gray_depth(depth)).save(depths / f"p{index:04d}.png")
    return photos, depths


def dying_encode(item, options, commit=True):
    """An encode stage (importable by spawned workers) whose worker dies on ``die.jpg``, as one killed by the system."""
    import os

    if item.job.photo.name == "die.jpg":
        os._exit(3)
    item.status = "ok"
    return item


def dead_pid():
    """The id of a process of this host that has ended (a writer killed before it could clean up)."""
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def page_faults_per_item(items=20):
    """Minor page faults per item of a loop that allocates as a worker's item does (importable by spawned
    workers): the photo's bytes, the output built from them, a converted map and a codec's large buffer."""
    import resource

    import numpy as np

    def item():
        photo = bytearray(5 << 20)
        output = bytes(photo) + b"depth"
        depth = np.ones((576, 768), np.float32) * 2
        codec = np.zeros(20 << 20, np.uint8)
        codec[::4096] = 1  # one write a page
        return len(output) + int(depth[0, 0]) + int(codec[0])

    item()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(items):
        item()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / items
