"""Items/s of ``gpu-depth convert`` on the local pipeline and on the Ray engine, same data, same machine.

The data is the built-in example (HEIC and JPEG photos alternate, 16-bit gray depth PNGs); Ray runs
locally with ``--cpus`` CPUs, the local pipeline with as many encoder processes.  Each engine does a
warm-up run, then the best of ``--repeat`` runs counts; the runs of the two engines alternate, with Ray
started (and timed) beforehand.
The ratio is Ray's items/s over the local pipeline's.
Run: python bench/bench_engines.py [--count 32 --width 640 --height 480 --cpus 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from common import machine

from gpu_depth.pipeline import Options, run
from gpu_depth.pipeline.example import FAR, NEAR, write_example
from gpu_depth.pipeline.jobs import pair_folders


def rate(engine, jobs: list, options: Options) -> float:
    """Items/s of one run into an empty output folder."""
    shutil.rmtree(options.out, ignore_errors=True)
    start = time.perf_counter()
    summary = engine(jobs, options, lambda line: None)
    elapsed = time.perf_counter() - start
    if summary["ok"] != len(jobs):
        raise SystemExit(f"{engine.__name__}: {summary}")
    return len(jobs) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--backend", choices=("auto", "cupy", "numpy"), default="auto")
    args = parser.parse_args()

    import ray

    from gpu_depth.pipeline.ray_engine import run_ray

    with tempfile.TemporaryDirectory() as folder:
        photos, depths = write_example(Path(folder) / "in", args.count, (args.width, args.height))
        jobs, _ = pair_folders(photos, depths)
        options = Options(out=Path(folder) / "out", near=NEAR, far=FAR, backend=args.backend, workers=args.cpus)
        print(f"machine: {machine()}")
        print(f"{args.count} items, {args.width}x{args.height}, {args.cpus} CPUs, best of {args.repeat} after warm-up")
        start = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False)
        started = time.perf_counter() - start
        try:
            rates = {run: [], run_ray: []}
            for _ in range(args.repeat + 1):  # alternate, so that load from elsewhere hits both alike
                for engine, found in rates.items():
                    found.append(rate(engine, jobs, options))
        finally:
            ray.shutdown()
    local, distributed = (max(found[1:]) for found in rates.values())
    print(f"local pipeline {local:7.2f} items/s")
    print(f"ray engine     {distributed:7.2f} items/s  (ray.init {started:.1f} s, not counted)")
    print(f"ratio ray/local {distributed / local:5.2f}x")


if __name__ == "__main__":
    main()
