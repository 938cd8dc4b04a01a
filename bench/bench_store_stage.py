"""CPU time per item of the pipeline's driver stages (decode, conversion) and of the worker's encode stage, run
one after the other in one process on the cached HEIC workload of ``bench_heic_throughput.py`` (4032×3024
photos, 768×576 16-bit PNG maps), for each depth codec.  Thread CPU time, which the load of other processes
moves far less than wall time, shows where the work of an item is done: ``--against CHECKOUT`` runs the same
in fresh processes importing another checkout's ``gpu_depth``, alternating with this one's, ``--rounds`` times.

    PYTHONPATH=. python bench/bench_store_stage.py [--count 40] [--rounds 3] [--against ../main]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine

CODECS = ("hevc", "jpeg")


def child(photos: Path, depths: Path, codec: str, count: int) -> dict:
    """Median thread CPU ms per item of decode, convert_batch and encode (outputs deleted as written)."""
    from gpu_depth.pipeline import stages
    from gpu_depth.pipeline.example import FAR, NEAR
    from gpu_depth.pipeline.jobs import pair_folders
    from gpu_depth.pipeline.options import Options

    jobs, _ = pair_folders(photos, depths)
    with tempfile.TemporaryDirectory() as out:
        options = Options(Path(out), near=NEAR, far=FAR, backend="numpy", attach={"depth_codec": codec})
        times: dict[str, list[float]] = {"decode": [], "convert": [], "encode": []}
        for job in jobs[: count + 2]:
            [item] = stages.plan([job], options, lambda done: None)
            started = time.thread_time()
            stages.decode(item, options)
            decoded = time.thread_time()
            stages.convert_batch([item], options, "numpy")
            converted = time.thread_time()
            stages.encode(item, options)
            encoded = time.thread_time()
            assert item.status == "ok", item.error
            item.output.unlink()
            for key, value in zip(times, (decoded - started, converted - decoded, encoded - converted), strict=True):
                times[key].append(value * 1e3)
        return {key: statistics.median(values[2:]) for key, values in times.items()}  # two warm-up items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gpu-depth-bench")
    parser.add_argument("--against", type=Path)
    parser.add_argument("--child", nargs=4, metavar=("PHOTOS", "DEPTHS", "CODEC", "COUNT"))
    args = parser.parse_args()
    if args.child:
        photos, depths, codec, count = args.child
        print(json.dumps(child(Path(photos), Path(depths), codec, int(count))))
        return
    from bench_heic_throughput import dataset

    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f} at start")
    photos, depths = dataset(args.cache, (4032, 3024), 160)
    here = Path(__file__).resolve().parent.parent
    checkouts = [("this", here)] + ([("against", args.against)] if args.against else [])
    for codec in CODECS:
        got: dict[str, list[dict]] = {name: [] for name, _ in checkouts}
        for _ in range(args.rounds):
            for name, code in checkouts:
                command = [sys.executable, __file__, "--child", str(photos), str(depths), codec, str(args.count)]
                env = os.environ | {"PYTHONPATH": str(code)}
                done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
                got[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
        for name, code in checkouts:
            medians = {key: statistics.median(run[key] for run in got[name]) for key in got[name][0]}
            driver = medians["decode"] + medians["convert"]
            print(
                f"{codec:4} {name} ({code}): CPU ms per item, medians of {args.rounds} runs of {args.count} items: "
                f"decode {medians['decode']:.1f}, conversion stage {medians['convert']:.1f} (driver {driver:.1f}), "
                f"encode stage {medians['encode']:.1f} (worker); load {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
