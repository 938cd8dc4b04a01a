"""Attaching depth to existing HEICs at the speed of the depth encoder: the pipeline against its floor.

Attach-only workload: HEIC photos 4032×3024 (a 512-px grid, as iPhones tile them) and 768×576 16-bit depth
PNGs; ``gpu-depth``'s local pipeline attaches each map to its photo (the photo's coded bytes are never
re-encoded), with the default HEVC depth item, with the 16-bit lossless JPEG one, and with the HEVC item coded
by x265 (``depth_preset`` ultrafast: session 9's default, an encode that dominates the item).  For each, with 1
and 2 worker processes, items/s per worker is set against 1 / (the depth encode alone: our lossless HEVC coder,
x265 through pillow-heif with the threads the runner gives each worker, or our lossless JPEG encoder), measured
in the same run on the same stored map; then 1 → 2 workers, JPEG against HEVC, and the peak RSS of a 2,000-item
run against a 200-item one (the driver's and its largest worker's).

Each run is a fresh process (so its RSS is its own); items/s is counted in steady state, from the 8th item
reported to the last (the workers' start-up, ~1-2 s of imports, is left out and printed apart).  Outputs are
deleted as they are reported (the first of each run is verified first), so the disk stays flat.  The photos
are made once and cached in ``--cache``: 4 distinct encodes, each linked under many names.  ``--against
CHECKOUT`` runs each pipeline also with another checkout's ``gpu_depth`` (a baseline: its run right before
this one's, on the same load), and prints this one's items/s and CPU per item against it (a ``git worktree``
needs its C extensions beside its sources: copied from this checkout where the C is unchanged, or built by
``setup.py build_ext --inplace`` under setuptools ≥ 77; without them it runs its fallbacks, x265 for the HEVC
item).  ``--stages N`` prints instead where one worker's item spends its CPU: N items through ``every_stage`` in
this process (as a worker of a NumPy run with several workers does them), each step's median CPU per item.

    PYTHONPATH=. python bench/bench_heic_throughput.py [--count 160] [--items hevc,jpeg,x265] [--rss 2000,200]
        [--rss-size 4032x3024] [--against ../main] [--stages 60]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, timings
from PIL import Image
from pillow_heif import from_pillow

from gpu_depth import DepthMapping, convert
from gpu_depth.backends import numpy_backend
from gpu_depth.cli.convert import parse_size
from gpu_depth.containers.heic import hevc_lossless, isobmff
from gpu_depth.containers.heic import plugin as heic
from gpu_depth.containers.jpeg import ljpeg
from gpu_depth.core.formats import StoredFormat
from gpu_depth.core.quantize import quantize
from gpu_depth.depthmaps import load_depth_map
from gpu_depth.pipeline import Options, run, stages
from gpu_depth.pipeline.example import FAR, NEAR, gray_depth, render
from gpu_depth.pipeline.jobs import pair_folders
from gpu_depth.pipeline.local import keep_freed_memory
from gpu_depth.verify import verify

DISTINCT = 4
#: The depth items timed: the pipeline's attach options of each.
ITEMS = {
    "hevc": {"depth_codec": "hevc"},
    "jpeg": {"depth_codec": "jpeg"},
    "x265": {"depth_codec": "hevc", "depth_preset": heic.DEPTH_PRESET},
}
DEPTH_SIZE = (768, 576)
#: Items reported before the steady-state clock starts.
WARM_ITEMS = 8


def distinct_pairs(cache: Path, size: tuple[int, int]) -> list[tuple[Path, Path]]:
    """``DISTINCT`` photo/depth pairs of this size, encoded once into ``cache``."""
    folder = cache / f"{size[0]}x{size[1]}"
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for index in range(DISTINCT):
        photo, depth = folder / f"s{index}.heic", folder / f"s{index}.png"
        if not (photo.exists() and depth.exists()):
            rgb, _ = render(*size, shift=0.1 * index)
            noise = np.random.default_rng(index).normal(0, 2.5, rgb.shape)  # sensor-like noise: iPhone-size files
            image = Image.fromarray(np.clip(rgb + noise, 0, 255).astype(np.uint8))
            from_pillow(image).save(photo, quality=80, tile_size=512, enc_params={"preset": "ultrafast"})
            _, metres = render(*DEPTH_SIZE, shift=0.1 * index)
            Image.fromarray(gray_depth(metres)).save(depth)
        pairs.append((photo, depth))
    return pairs


def dataset(cache: Path, size: tuple[int, int], count: int) -> tuple[Path, Path]:
    """Folders of ``count`` photos and maps, links to the distinct pairs (made once per count and size)."""
    photos, depths = (
        cache / f"set-{size[0]}x{size[1]}-{count}" / "photos",
        cache / f"set-{size[0]}x{size[1]}-{count}" / "depth",
    )
    if photos.is_dir() and len(os.listdir(photos)) == count:
        return photos, depths
    photos.mkdir(parents=True, exist_ok=True)
    depths.mkdir(parents=True, exist_ok=True)
    pairs = distinct_pairs(cache, size)
    for index in range(count):
        photo, depth = pairs[index % DISTINCT]
        for source, target in ((photo, photos / f"p{index:05d}.heic"), (depth, depths / f"p{index:05d}.png")):
            if not target.exists():
                os.link(source, target)
    return photos, depths


def hevc_coder(codec: str, threads: int) -> str:
    """Which coder codes the depth item: ours, or x265 with the runner's threads (asked, or a build without C)."""
    if codec == "jpeg":
        return "our lossless JPEG"
    if codec == "hevc" and hevc_lossless.AVAILABLE:
        return "our lossless HEVC"
    return f"x265 {heic.DEPTH_PRESET} threads {threads}"


def encode_alone(depth_png: Path, codec: str, threads: int, repeat: int) -> tuple[float, float]:
    """Median wall seconds and CPU seconds (all threads) of the depth encode alone of one stored map: the
    codec call, nothing else (the default HEVC encode, x265 with the runner's threads, or our lossless JPEG)."""
    depth = convert(load_depth_map(depth_png), "hdis", DepthMapping("apple-gray", NEAR, FAR), backend="numpy")
    if codec == "jpeg":
        pixels = quantize(depth, StoredFormat.L016).pixels
        call = lambda: ljpeg.encode(pixels)  # noqa: E731
    else:
        pixels, params = quantize(depth).pixels, heic._map_encoder_params(heic.DEPTH_PRESET, threads)
        coder = heic._encode_map if codec == "hevc" else heic._encode_x265
        call = lambda: coder(pixels, -1, params, "depth map")  # noqa: E731
    cpu = []
    wall = timings(lambda: (start := time.process_time(), call(), cpu.append(time.process_time() - start)), repeat)
    return statistics.median(wall), statistics.median(cpu[1:])  # cpu[0] is the warm-up's


def child(args: argparse.Namespace) -> None:
    """One pipeline run in this fresh process; prints its figures as one JSON line."""
    photos, depths = Path(args.photos), Path(args.depths)
    jobs, _ = pair_folders(photos, depths)
    out = Path(args.out)
    options = Options(out=out, near=NEAR, far=FAR, workers=args.workers, backend="numpy", attach=ITEMS[args.codec])
    stamps: list[float] = []
    findings: list = []
    reported: dict[str, list[float]] = {"decode_s": [], "convert_s": [], "attach_s": []}

    def on_result(line: dict) -> None:
        assert line["status"] == "ok", line
        stamps.append(time.perf_counter())
        for key, values in reported.items():
            values.append(line[key])
        output = Path(line["output"])
        if len(stamps) == 1:
            findings.extend(f for f in verify(output) if f.severity != "info")
        output.unlink()

    start, cpu = time.perf_counter(), _cpu_seconds()
    summary = run(jobs, options, on_result)
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    steady = (len(stamps) - WARM_ITEMS) / (stamps[-1] - stamps[WARM_ITEMS - 1])
    figures = {
        "items": summary["ok"],
        "wall_items_per_s": len(jobs) / wall,
        "steady_items_per_s": steady,
        "first_item_s": stamps[0] - start,
        "cpu_per_item_s": cpu / len(jobs),
        "driver_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "problems": [f"{f.severity} {f.rule}" for f in findings],
        **{key: statistics.median(values) for key, values in reported.items()},
    }
    print(json.dumps(figures))


#: The steps of a worker's item timed by --stages, in the order an item meets them: (module, function, what).
STEPS = (
    (stages, "load_depth_file", "decode: load the depth map"),
    (stages, "read_file", "decode: read the photo"),
    (isobmff, "parse_file", "decode: parse it"),
    (stages, "convert_maps", "convert"),
    (stages, "_prepared", "store: range, holes, turn"),
    (numpy_backend, "quantize", "store: quantise"),
    (stages, "attach", "attach"),
    (heic, "_encode_map", "  of it: our HEVC encode"),
    (heic, "_encode_x265", "  of it: x265's encode"),
    (ljpeg, "encode", "  of it: our JPEG encode"),
    (isobmff, "rebuild", "  of it: the rebuild"),
    (stages, "write_temp", "write"),
    (stages, "commit_temp", "commit: fsync, rename"),
)


def stage_costs(photos: Path, depths: Path, codec: str, count: int) -> None:
    """Print each step's median CPU per item over ``count`` items (after 10 unmeasured) that ``every_stage``
    attaches and commits in this process, and the whole item's; outputs are deleted as they are written."""
    keep_freed_memory()  # as a worker does
    jobs, _ = pair_folders(photos, depths)
    out = tempfile.TemporaryDirectory()
    options = Options(out=Path(out.name), near=NEAR, far=FAR, workers=2, backend="numpy", attach=ITEMS[codec])
    spent: dict[str, list[float]] = {what: [] for _, _, what in STEPS}
    originals = [getattr(module, name) for module, name, _ in STEPS]
    for (module, name, what), func in zip(STEPS, originals, strict=True):
        setattr(module, name, _timed(func, spent[what]))
    try:
        for batch in (jobs[:10], jobs[10 : 10 + count]):  # the first batch warms up
            for values in spent.values():
                values.clear()
            started = time.process_time()
            for item in stages.plan(batch, options, lambda done: None):
                item = stages.committed(stages.every_stage(item, options, commit=False))
                assert item.status == "ok", item.error
                item.output.unlink()
    finally:
        for (module, name, _), func in zip(STEPS, originals, strict=True):
            setattr(module, name, func)
        out.cleanup()
    whole = (time.process_time() - started) / count
    print(f"{codec}: CPU per item {whole * 1e3:.1f} ms, {count} items through every_stage in one process")
    for what, values in spent.items():
        if values:
            per_item = statistics.median(values) * len(values) / count
            print(f"  {what:28} {per_item * 1e3:6.2f} ms ({per_item / whole:4.0%})")


def _timed(func, spent: list[float]):
    """``func``, adding the CPU seconds of each of its calls to ``spent``."""

    def timed(*args, **kwargs):
        started = time.process_time()
        try:
            return func(*args, **kwargs)
        finally:
            spent.append(time.process_time() - started)

    return timed


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its children that have ended."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pipeline(photos: Path, depths: Path, codec: str, workers: int, out: Path, code: Path | None = None) -> dict:
    """One run's figures, in a fresh process importing ``gpu_depth`` from ``code`` (default: this one's)."""
    command = [sys.executable, __file__, "--child", str(photos), str(depths), str(out), codec, str(workers)]
    env = os.environ | {"PYTHONPATH": str(code or Path(__file__).resolve().parent.parent)}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode:
        raise SystemExit(f"pipeline run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=160, help="photos in the throughput workload")
    parser.add_argument("--size", default="4032x3024", help="photo size of the throughput workload")
    parser.add_argument("--rss", default="2000,200", help="item counts whose peak RSS is compared ('' skips)")
    parser.add_argument("--rss-size", default="4032x3024", help="photo size of the RSS runs")
    parser.add_argument("--items", default=",".join(ITEMS), help="depth items timed (of hevc, jpeg, x265)")
    parser.add_argument("--rss-codec", choices=list(ITEMS), default="jpeg")
    parser.add_argument("--repeat", type=int, default=9, help="runs of the encode alone (median)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gpu-depth-bench")
    parser.add_argument("--against", type=Path, help="a baseline checkout whose gpu_depth runs each pipeline too")
    parser.add_argument("--stages", type=int, metavar="N", help="where one worker's item spends its CPU (N items)")
    parser.add_argument("--child", nargs=5, metavar=("PHOTOS", "DEPTHS", "OUT", "CODEC", "WORKERS"))
    args = parser.parse_args()
    if args.child:
        photos, depths, out, codec, workers = args.child
        child(argparse.Namespace(photos=photos, depths=depths, out=out, codec=codec, workers=int(workers)))
        return
    cores = os.cpu_count() or 1
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f} at start")
    size = parse_size(args.size)
    photos, depths = dataset(args.cache, size, max(args.count, 10 + (args.stages or 0)))
    if args.stages:
        for codec in args.items.split(","):
            stage_costs(photos, depths, codec, args.stages)
        return
    out = args.cache / "out"
    megabytes = os.path.getsize(next(photos.iterdir())) / 1e6
    print(f"{args.count} HEIC {args.size} photos (~{megabytes:.1f} MB, 512-px grid), depth 768x576 16-bit PNG")
    rates, items = {}, args.items.split(",")
    for codec in items:
        for workers in (1, 2):
            threads = max(1, cores // workers)  # as the local runner shares out the cores
            before = encode_alone(next(depths.iterdir()), codec, threads, args.repeat)
            base = pipeline(photos, depths, codec, workers, out, args.against) if args.against else None
            got = pipeline(photos, depths, codec, workers, out)
            after = encode_alone(next(depths.iterdir()), codec, threads, args.repeat)
            floor, floor_cpu = ((a + b) / 2 for a, b in zip(before, after, strict=True))  # load moves while it runs
            rates[codec, workers] = got["steady_items_per_s"]
            per_worker = got["steady_items_per_s"] / workers
            print(
                f"{codec:4} {workers} worker(s), {hevc_coder(codec, threads)}: "
                f"{got['steady_items_per_s']:6.2f} items/s steady ({got['wall_items_per_s']:.2f} wall, first item "
                f"after {got['first_item_s']:.1f} s); per worker {per_worker:.2f}/s vs 1/encode alone "
                f"{1 / floor:.2f}/s ({before[0] * 1e3:.0f}/{after[0] * 1e3:.0f} ms before/after): "
                f"{per_worker * floor:.0%} of the floor"
            )
            print(
                f"     CPU per item {got['cpu_per_item_s'] * 1e3:.0f} ms (driver + workers), encode alone "
                f"{floor_cpu * 1e3:.0f} ms CPU: the encode is {floor_cpu / got['cpu_per_item_s']:.0%} of it; median "
                f"worker attach+write {got['attach_s'] * 1e3:.0f} ms, driver decode {got['decode_s'] * 1e3:.0f} ms, "
                f"convert {got['convert_s'] * 1e3:.1f} ms; "
                f"load {os.getloadavg()[0]:.1f}; verify {'clean' if not got['problems'] else got['problems']}"
            )
            if base:
                print(
                    f"     against {args.against}: {base['steady_items_per_s']:.2f} items/s "
                    f"({got['steady_items_per_s'] / base['steady_items_per_s']:.2f}x), CPU per item "
                    f"{base['cpu_per_item_s'] * 1e3:.0f} ms ({got['cpu_per_item_s'] / base['cpu_per_item_s']:.2f}x), "
                    f"per worker {base['steady_items_per_s'] / workers * floor:.0%} of the floor; worker attach+write "
                    f"{base['attach_s'] * 1e3:.0f} ms, driver convert {base['convert_s'] * 1e3:.1f} ms; verify "
                    f"{'clean' if not base['problems'] else base['problems']}"
                )
    for codec in items:
        print(f"{codec}: 1 -> 2 workers {rates[codec, 2] / rates[codec, 1]:.2f}x")
    for workers in (1, 2):
        for other in ("hevc", "x265"):
            if ("jpeg", workers) in rates and (other, workers) in rates:
                ratio = rates["jpeg", workers] / rates[other, workers]
                print(f"jpeg vs {other} items/s, {workers} worker(s): {ratio:.1f}x")
    if args.rss:
        counts = [int(n) for n in args.rss.split(",")]
        rss_size = parse_size(args.rss_size)
        peaks = {}
        for count in counts:
            got = pipeline(*dataset(args.cache, rss_size, count), args.rss_codec, 2, out)
            peaks[count] = got
            print(
                f"RSS, {count} items {args.rss_size} {args.rss_codec}, 2 workers: "
                f"driver {got['driver_rss_mb']:.0f} MB, largest worker {got['worker_rss_mb']:.0f} MB "
                f"({got['steady_items_per_s']:.1f} items/s)"
            )
        big, small = peaks[max(counts)], peaks[min(counts)]
        driver, worker = (big[k] / small[k] for k in ("driver_rss_mb", "worker_rss_mb"))
        print(f"peak RSS {max(counts)} vs {min(counts)} items: driver {driver:.2f}x, worker {worker:.2f}x")


if __name__ == "__main__":
    main()
