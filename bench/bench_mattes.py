"""Attach depth + one portrait matte to a 12 Mpix HEIC against attaching the depth alone (issue 19: ≤ 2×).

The matte is half the photo's size, as iPhones store it (2016x1512 for 4032x3024), with a soft-edged
subject like a segmentation model's; the depth map is 768x576.  Map and matte are coded lossless by our HEVC coder
(hevc_lossless) and, as the baseline, by x265 (the coder before it, and still that of builds without C).  All
attaches run alternately in the same process on the same photo, so load from other work falls on all; the
script prints the medians (wall time, and the process's CPU time, which load inflates less), the ratios and the
coded sizes.  With the samples beside the checkout it first times both coders on the iPhone 14's five mattes.

    PYTHONPATH=. python bench/bench_mattes.py [--repeat 7] [--no-grid]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import pillow_heif
from bench_heic_attach import DEPTH_SIZE, HEIGHT, WIDTH, depth, photo
from common import SAMPLES, machine, timings

from gpu_depth import Matte
from gpu_depth.containers.heic import hevc_lossless
from gpu_depth.containers.heic import plugin as heic


def matte() -> np.ndarray:
    """A person-like ellipse, 255 inside, 0 outside, a few pixels of soft edge between."""
    width, height = WIDTH // 2, HEIGHT // 2
    y, x = np.mgrid[0:height, 0:width]
    radius = np.hypot((x - width / 2) / (width * 0.25), (y - height * 0.6) / (height * 0.4))
    return np.rint(255 / (1 + np.exp((radius - 1) * 120))).astype(np.uint8)


def by_x265(run: Callable[[], bytes]) -> Callable[[], bytes]:
    """``run`` with the map and the mattes coded by x265, as a build without the C coder codes them."""

    def with_x265() -> bytes:
        saved, hevc_lossless.AVAILABLE = hevc_lossless.AVAILABLE, False
        try:
            return run()
        finally:
            hevc_lossless.AVAILABLE = saved

    return with_x265


def iphone_mattes() -> None:
    """Each coder's CPU time and bytes on the iPhone 14's mattes (lossy-coded by the iPhone: noisy edges)."""
    path = SAMPLES / "iphone14-front-mattes.heic"
    if not path.is_file():
        return
    x265 = heic._map_encoder_params(heic.MATTE_PRESET, None) | heic.MATTE_X265
    for matte in heic.read_mattes(path.read_bytes()):
        coders = {"ours": hevc_lossless.encode, "x265": lambda p: heic._encode_x265(p, -1, x265, "matte")}
        size = {name: len(code(matte.pixels)[1]) for name, code in coders.items()}
        cpu = {
            name: statistics.median(timings(lambda c=code, m=matte.pixels: c(m), 5, False, time.process_time))
            for name, code in coders.items()
        }
        print(
            f"  iPhone 14 {matte.kind.name} {matte.width}x{matte.height}: ours {cpu['ours'] * 1e3:.1f} ms CPU "
            f"{size['ours']} B, x265 {cpu['x265'] * 1e3:.1f} ms {size['x265']} B; "
            f"time {cpu['ours'] / cpu['x265']:.2f}x, size {size['ours'] / size['x265']:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each attach (medians reported)")
    parser.add_argument("--no-grid", action="store_true", help="a single 4032x3024 image instead of 512 tiles")
    args = parser.parse_args()

    data, depth_map, mattes = photo(not args.no_grid), depth(), [Matte.of("portrait-effects", matte())]
    print(f"machine: {machine()}, pillow-heif {pillow_heif.__version__}, libheif {pillow_heif.libheif_version()}")
    print(
        f"photo: {WIDTH}x{HEIGHT} HEIC, {len(data) / 1e6:.1f} MB; depth {DEPTH_SIZE[0]}x{DEPTH_SIZE[1]} hdis; "
        f"matte {WIDTH // 2}x{HEIGHT // 2}, lossless (ours; x265 preset {heic.MATTE_PRESET}, {heic.MATTE_X265})"
    )
    iphone_mattes()  # first: x265 codes mattes worse after a depth map's encode in the same process
    both = lambda: heic.attach_depth(data, depth_map, mattes=mattes)  # noqa: E731
    alone = lambda: heic.attach_depth(data, depth_map)  # noqa: E731
    runs = {"depth": alone, "both": both, "x265 depth": by_x265(alone), "x265 both": by_x265(both)}
    sizes = {name: len(run()) - len(data) for name, run in runs.items()}  # also the warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, run in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    labels = {"depth": "ours: attach depth alone:      ", "both": "ours: attach depth + one matte:"}
    labels |= {"x265 depth": "x265: attach depth alone:      ", "x265 both": "x265: attach depth + one matte:"}
    for name, label in labels.items():
        print(
            f"{label} {statistics.median(times[name]) * 1e3:8.1f} ms (median of {args.repeat}; CPU "
            f"{statistics.median(cpu[name]) * 1e3:.1f} ms), +{sizes[name] / 1e3:.0f} kB"
        )
    ours, theirs = (statistics.median(times[f"{c}both"]) / statistics.median(times[f"{c}depth"]) for c in ("", "x265 "))
    print(f"ratio {ours:.2f}x (issue 19 asks at most 2x); coded by x265 {theirs:.2f}x")


if __name__ == "__main__":
    main()
