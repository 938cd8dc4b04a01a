"""Attach depth + one portrait matte to a 12 Mpix HEIC against attaching the depth alone (issue 19: ≤ 2×).

The matte is half the photo's size, as iPhones store it (2016x1512 for 4032x3024), with a soft-edged
subject like a segmentation model's; the depth map is 768x576.  Both attaches run alternately in the same
process on the same photo, so load from other work falls on both; the script prints the medians and the
ratio, and the coded sizes.

    PYTHONPATH=. python bench/bench_mattes.py [--repeat 7] [--no-grid]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pillow_heif
from bench_heic_attach import DEPTH_SIZE, HEIGHT, WIDTH, depth, photo
from common import machine

from gpu_depth import Matte
from gpu_depth.containers.heic import plugin as heic


def matte() -> np.ndarray:
    """A person-like ellipse, 255 inside, 0 outside, a few pixels of soft edge between."""
    width, height = WIDTH // 2, HEIGHT // 2
    y, x = np.mgrid[0:height, 0:width]
    radius = np.hypot((x - width / 2) / (width * 0.25), (y - height * 0.6) / (height * 0.4))
    return np.rint(255 / (1 + np.exp((radius - 1) * 120))).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each attach (medians reported)")
    parser.add_argument("--no-grid", action="store_true", help="a single 4032x3024 image instead of 512 tiles")
    args = parser.parse_args()

    data, depth_map, mattes = photo(not args.no_grid), depth(), [Matte.of("portrait-effects", matte())]
    print(f"machine: {machine()}, pillow-heif {pillow_heif.__version__}, libheif {pillow_heif.libheif_version()}")
    print(
        f"photo: {WIDTH}x{HEIGHT} HEIC, {len(data) / 1e6:.1f} MB; depth {DEPTH_SIZE[0]}x{DEPTH_SIZE[1]} hdis; "
        f"matte {WIDTH // 2}x{HEIGHT // 2}, lossless (preset {heic.MATTE_PRESET}, {heic.MATTE_X265})"
    )
    runs = {
        "depth": lambda: heic.attach_depth(data, depth_map),
        "both": lambda: heic.attach_depth(data, depth_map, mattes=mattes),
    }
    sizes = {name: len(run()) - len(data) for name, run in runs.items()}  # also the warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    alone, both = (statistics.median(times[name]) for name in ("depth", "both"))
    print(
        f"attach depth alone:         {alone * 1e3:8.1f} ms (median of {args.repeat}), +{sizes['depth'] / 1e3:.0f} kB"
    )
    print(f"attach depth + one matte:   {both * 1e3:8.1f} ms (median of {args.repeat}), +{sizes['both'] / 1e3:.0f} kB")
    print(f"ratio {both / alone:.2f}x (issue 19 asks at most 2x)")


if __name__ == "__main__":
    main()
