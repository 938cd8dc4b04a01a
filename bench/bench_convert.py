"""gpu_depth.convert (NumPy backend) against a plain NumPy script computing the same formula.

The baseline is what a user would write: evaluate the mapping in float64, take the reciprocal for
disparity, cast with astype.  Both must give the same bits; the ratio is baseline time / ours.
Run: python bench/bench_convert.py [--width 4032 --height 3024]
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np
from common import best_of, machine

from gpu_depth import DepthMapping, convert

NEAR, FAR = 0.5, 8.0


def baseline(gray: np.ndarray, fmt_dtype: str, disparity: bool) -> np.ndarray:
    top = float(np.iinfo(gray.dtype).max)
    depth = NEAR + gray.astype(np.float64) / top * (FAR - NEAR)
    return (1.0 / depth if disparity else depth).astype(fmt_dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4032)
    parser.add_argument("--height", type=int, default=3024)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    mapping = DepthMapping("apple-gray", NEAR, FAR)
    print(f"machine: {machine()}")
    print(f"{args.width}x{args.height} ({args.width * args.height / 1e6:.1f} Mpix), best of 5")
    for dtype in ("uint8", "uint16"):
        gray = rng.integers(0, np.iinfo(dtype).max + 1, (args.height, args.width), dtype=dtype)
        for fmt, fmt_dtype, disparity in (("hdis", "float16", True), ("fdep", "float32", False)):
            ours = convert(gray, fmt, mapping, backend="numpy")
            same = np.array_equal(ours.array.view(np.uint8), baseline(gray, fmt_dtype, disparity).view(np.uint8))
            t_ours = best_of(partial(convert, gray, fmt, mapping, backend="numpy"))
            t_base = best_of(partial(baseline, gray, fmt_dtype, disparity))
            print(
                f"{dtype:>6} -> {fmt}: gpu_depth {t_ours * 1e3:7.1f} ms  plain numpy {t_base * 1e3:7.1f} ms  "
                f"ratio {t_base / t_ours:5.1f}x  same bits: {same}"
            )


if __name__ == "__main__":
    main()
