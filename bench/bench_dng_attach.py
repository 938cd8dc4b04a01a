"""Attach a depth map to a 24 Mpix DNG and read it back, against copying the file's bytes once.

Attaching appends to the input bytes, so its floor is one copy of the file; the script prints the
median times and their ratio to that copy, measured in the same run.

    PYTHONPATH=. python bench/bench_dng_attach.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import io

import numpy as np
import tifffile
from common import machine, median_of

from gpu_depth import DepthData
from gpu_depth.containers.dng import plugin as dng

RAW_SIZE = (4000, 6000)
DEPTH_SIZE = (576, 768)


def photo() -> bytes:
    """A 24 Mpix 16-bit CFA DNG (raw in a SubIFD below a small RGB preview), as tifffile writes it."""
    raw = np.random.default_rng(0).integers(0, 4096, RAW_SIZE, dtype=np.uint16)
    stream = io.BytesIO()
    with tifffile.TiffWriter(stream) as tif:
        dng_tags = [(50706, "B", 4, (1, 4, 0, 0), True), (50707, "B", 4, (1, 1, 0, 0), True)]
        tif.write(np.zeros((120, 180, 3), np.uint8), photometric="rgb", subfiletype=1, subifds=1, extratags=dng_tags)
        cfa = [(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True)]
        tif.write(raw, photometric=32803, subfiletype=0, extratags=cfa)
    return stream.getvalue()


def depth() -> DepthData:
    height, width = DEPTH_SIZE
    y, x = np.mgrid[0:height, 0:width]
    return DepthData.from_array(1.5 + 2.9 * (x / width) * (y / height), "hdis")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data, depth_map = photo(), depth()
    attached = dng.attach_depth(data, depth_map)
    copy = median_of(lambda: bytearray(data), args.repeat)
    attach = median_of(lambda: dng.attach_depth(data, depth_map), args.repeat)
    read = median_of(lambda: dng.read_depth(attached), args.repeat)
    print(f"machine: {machine()}")
    print(f"DNG {len(data) / 1e6:.1f} MB, depth {DEPTH_SIZE[1]}x{DEPTH_SIZE[0]} hdis, median of {args.repeat}")
    print(f"one copy of the file (baseline): {copy * 1e3:8.2f} ms")
    print(f"attach_depth:                    {attach * 1e3:8.2f} ms  ({attach / copy:.2f}x the copy)")
    print(f"read_depth:                      {read * 1e3:8.2f} ms  ({read / copy:.2f}x the copy)")


if __name__ == "__main__":
    main()
