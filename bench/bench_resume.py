"""``--resume`` over finished items against converting them, and against the check it replaced (reading
each output's map back with read_depth).

200 JPEG photos (1024x768) with 16-bit gray maps, converted to lossless-JPEG depth at 768x576 by the local
pipeline; then the same run with resume, where every item is skipped after its output's structure is
checked (verify's rules, no decoding of the map); then read_depth of every output, as resume did before.
Run: python bench/bench_resume.py [--count 200 --workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import machine
from PIL import Image

from gpu_depth import read_depth
from gpu_depth.pipeline import Options, run
from gpu_depth.pipeline.example import FAR, NEAR, gray_depth, render
from gpu_depth.pipeline.jobs import pair_folders


def dataset(folder: Path, count: int) -> tuple[Path, Path]:
    photos, depths = folder / "photos", folder / "depth"
    photos.mkdir(parents=True)
    depths.mkdir()
    rgb, depth = render(1024, 768)
    Image.fromarray(rgb).save(photos / "p0000.jpg", quality=90)
    Image.fromarray(gray_depth(depth)).save(depths / "p0000.png")
    for index in range(1, count):
        (photos / f"p{index:04d}.jpg").write_bytes((photos / "p0000.jpg").read_bytes())
        (depths / f"p{index:04d}.png").write_bytes((depths / "p0000.png").read_bytes())
    return photos, depths


def timed_run(photos: Path, depths: Path, out: Path, workers: int, resume: bool) -> tuple[float, dict]:
    jobs, _ = pair_folders(photos, depths)
    options = Options(out=out, near=NEAR, far=FAR, workers=workers, backend="numpy", resume=resume)
    start = time.perf_counter()
    summary = run(jobs, options, lambda line: None)
    return time.perf_counter() - start, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        photos, depths = dataset(Path(folder), args.count)
        out = Path(folder) / "out"
        converting, first = timed_run(photos, depths, out, args.workers, resume=False)
        resuming, second = timed_run(photos, depths, out, args.workers, resume=True)
        start = time.perf_counter()
        for path in sorted(out.glob("*.jpg")):
            read_depth(path)
        reading = time.perf_counter() - start
    assert first["ok"] == args.count and second["skipped"] == args.count, (first, second)
    print(f"machine: {machine()}")
    print(f"items: {args.count} JPEG 1024x768, maps stored 768x576 lossless, {args.workers} workers")
    print(f"convert: {converting:.2f} s")
    print(f"--resume (all skipped): {resuming:.2f} s = {resuming / converting:.3f} x convert")
    print(f"read_depth of every output (the old resume check): {reading:.2f} s = {reading / converting:.3f} x convert")


if __name__ == "__main__":
    main()
