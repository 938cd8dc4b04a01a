"""Hole filling speed (issue 21): ``core.holes.fill_holes`` on a 4032×3024 map with 80% holes, NumPy, and the
CUDA kernels (``kernels/holes.cu``) through CuPy where a GPU is usable, checked to give the same bits.

Two hole patterns: 80% of pixels invalid at random, and a LiDAR-like map (the top third empty, below it 64
scan lines with 80% of their pixels invalid, as KITTI's projected Velodyne depth).
Run: python bench/bench_holes.py [--repeat 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from common import machine, median_of

from gpu_depth.backends import cupy_unavailable
from gpu_depth.backends import kernel_plan as kp
from gpu_depth.core.formats import PixelFormat
from gpu_depth.core.holes import fill_holes

WIDTH, HEIGHT, HOLES = 4032, 3024, 0.8


def maps(fmt: PixelFormat) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(21)
    dense = rng.lognormal(1.0, 0.6, (HEIGHT, WIDTH))
    random = np.where(rng.random(dense.shape) < HOLES, np.nan, dense)
    lidar = np.full(dense.shape, np.nan)
    lines = np.linspace(HEIGHT // 3, HEIGHT - 1, 64).astype(int)
    lidar[lines] = np.where(rng.random((64, WIDTH)) < HOLES, np.nan, dense[lines])
    return {name: values.astype(fmt.dtype) for name, values in (("random 80%", random), ("lidar-like", lidar))}


def cupy_fill(values: np.ndarray, fmt: PixelFormat, repeat: int) -> tuple[float, np.ndarray]:
    """Median seconds of the two fill launches on the device (map already there), and the filled map."""
    import cupy

    from gpu_depth.backends.cupy_backend import kernel_module

    module = kernel_module()

    def launch(name, grid, block, args):
        module.get_function(name)(grid, block, args)

    layout, size = kp.plan_fill([(HEIGHT, WIDTH, WIDTH)], fmt)
    d_rows = cupy.asarray(np.ascontiguousarray(values).reshape(-1))
    d_tmp, d_out = cupy.zeros(size, fmt.dtype), cupy.zeros(size, fmt.dtype)
    blocks = cupy.cuda.Device().attributes["MultiProcessorCount"] * 8

    def run():
        kp.run_fill_holes(launch, cupy, fmt, layout, d_rows, d_tmp, d_out, blocks)
        cupy.cuda.Stream.null.synchronize()

    return median_of(run, repeat), cupy.asnumpy(d_out).reshape(HEIGHT, WIDTH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    gpu = cupy_unavailable()
    if gpu:
        print(f"CuPy: not measured ({gpu})")
    for fmt in (PixelFormat.HDIS, PixelFormat.FDEP):
        for name, values in maps(fmt).items():
            larger = not fmt.is_disparity
            seconds = median_of(lambda v=values, f=larger: fill_holes(v, f), args.repeat)
            line = f"{fmt} {name}: NumPy {seconds * 1e3:.0f} ms ({values.size / seconds / 1e6:.1f} Mpix/s)"
            if not gpu:
                device_seconds, filled = cupy_fill(values, fmt, args.repeat)
                same = filled.tobytes() == fill_holes(values, larger).tobytes()
                line += f"; CuPy {device_seconds * 1e3:.1f} ms ({seconds / device_seconds:.0f}x), same bits: {same}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
