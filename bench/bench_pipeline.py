"""Items/s of the local pipeline with 1 and 2 encoder processes on the same data.

Shows whether the encoders scale with cores and what the conversion stage takes an item (with one
worker it runs in the driver beside it; with two, NumPy's, each worker converts its own items).
Photos are the procedural example scene at iPhone size; depth maps are 16-bit PNGs at a quarter of
that, as depth models output them, stored at 768x576 as iPhones store them.
Run: python bench/bench_pipeline.py [--count 24 --size 4032x3024 --depth-input 1008x756 --container heic]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import machine
from PIL import Image
from pillow_heif import from_pillow

from gpu_depth import DepthMapping, convert
from gpu_depth.cli.convert import parse_size
from gpu_depth.depthmaps import load_depth_map
from gpu_depth.pipeline import Options, run
from gpu_depth.pipeline.example import FAR, NEAR, gray_depth, render
from gpu_depth.pipeline.jobs import pair_folders


def dataset(
    folder: Path, count: int, size: tuple[int, int], depth_input: tuple[int, int], container: str
) -> tuple[Path, Path]:
    photos, depths = folder / "photos", folder / "depth"
    photos.mkdir(parents=True)
    depths.mkdir()
    rgb, _ = render(*size)
    _, depth = render(*depth_input)
    image = Image.fromarray(rgb)
    if container == "heic":
        from_pillow(image).save(photos / "p0000.heic", quality=80, enc_params={"preset": "ultrafast"})
    else:
        image.save(photos / "p0000.jpg", quality=90)
    Image.fromarray(gray_depth(depth)).save(depths / "p0000.png")
    source = next(photos.iterdir())
    for index in range(1, count):
        (photos / f"p{index:04d}{source.suffix}").write_bytes(source.read_bytes())
        (depths / f"p{index:04d}.png").write_bytes((depths / "p0000.png").read_bytes())
    return photos, depths


def measure(
    photos: Path, depths: Path, out: Path, workers: int, depth_size, output: str, threads: int | None
) -> tuple[float, float]:
    jobs, _ = pair_folders(photos, depths)
    lines = []
    options = Options(
        out=out,
        near=NEAR,
        far=FAR,
        workers=workers,
        backend="numpy",
        depth_size=depth_size,
        container=output,
        encoder_preset="ultrafast",
        encoder_threads=threads,
    )
    start = time.perf_counter()
    summary = run(jobs, options, lines.append)
    wall = time.perf_counter() - start
    assert summary["ok"] == len(jobs), json.dumps(lines[:3])
    return len(jobs) / wall, sum(line.get("convert_s", 0) for line in lines) / len(lines)


def conversion_cpu(depth_png: Path, size: tuple[int, int]) -> float:
    """CPU seconds of converting one decoded map on this thread, best of 5."""
    gray = load_depth_map(depth_png)
    mapping = DepthMapping("apple-gray", NEAR, FAR)
    times = []
    for _ in range(5):
        start = time.thread_time()
        convert(gray, "hdis", mapping, size=size, backend="numpy")
        times.append(time.thread_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--size", default="4032x3024")
    parser.add_argument("--depth-input", default="1008x756")
    parser.add_argument("--depth-size", default="768x576")
    parser.add_argument("--container", choices=("heic", "jpeg"), default="heic", help="the photos' container")
    parser.add_argument(
        "--output",
        choices=("same", "heic", "jpeg"),
        default="same",
        help="output container; another than the photos' re-encodes them (x265 ultrafast)",
    )
    parser.add_argument(
        "--encoder-threads",
        type=int,
        default=1,
        help="x265 threads per worker (1 measures process scaling; 0 = the pipeline's default)",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as folder:
        photos, depths = dataset(
            Path(folder), args.count, parse_size(args.size), parse_size(args.depth_input), args.container
        )
        rates = {}
        for workers in (1, 2):
            out = Path(folder) / f"out{workers}"
            threads = args.encoder_threads or None
            rate, per_item = measure(photos, depths, out, workers, parse_size(args.depth_size), args.output, threads)
            rates[workers] = rate
            print(
                f"{args.count} {args.container} {args.size} -> {args.output}, depth {args.depth_input} "
                f"stored at {args.depth_size}, {workers} worker(s) x {args.encoder_threads or 'auto'} x265 thread(s): "
                f"{rate:.2f} items/s, conversion stage {per_item * 1e3:.1f} ms an item "
                f"({'in the driver' if workers == 1 else 'in each worker'})"
            )
        print(f"scaling 2 vs 1 workers: {rates[2] / rates[1]:.2f}x")
        cpu = conversion_cpu(depths / "p0000.png", parse_size(args.depth_size))
        print(
            f"conversion alone: {cpu * 1e3:.1f} ms CPU per map = {cpu * rates[1]:.1%} of the 1-worker time per item "
            "(the stage's times above also count waiting for a core while other work runs)"
        )


if __name__ == "__main__":
    main()
