"""Reading a 16-bit lossless-JPEG depth map: our compiled decoder, against our NumPy decoder (where the
package is built without a C compiler) and against libjpeg-turbo (through imagecodecs; it does not refuse
corrupt data), in the same run; and writing it: our compiled encoder against our NumPy encoder.

    python bench/bench_ljpeg.py [--repeat 9] [--encode-repeat 50] [--large]

``--large`` adds the 8 MB worst case (8192x8192 one-bit codes, the pixel limit), without the NumPy
decoder: it takes ~10 s there.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from unittest import mock

import imagecodecs
import numpy as np
from common import best_of, machine, timings
from PIL import Image

from gpu_depth import DepthData
from gpu_depth.containers.jpeg import ljpeg
from gpu_depth.containers.jpeg import plugin as jpeg
from gpu_depth.containers.jpeg.segments import parse_jpeg


def photo() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((576, 768, 3), 128, np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def depth_map() -> DepthData:
    """The map bench_jpeg_attach.py attaches: a smooth 768x576 disparity field (~8 bits a sample coded)."""
    y, x = np.mgrid[0:576, 0:768] / 768
    return DepthData.from_array(0.3 + 2.0 * (0.5 + 0.5 * np.sin(5 * x) * np.cos(3 * y)), "hdis")


def numpy_only():
    """Our NumPy decoder, as where the package was built without a C compiler."""
    return mock.patch.object(ljpeg, "_compiled", None)


def report(name: str, repeat: int, data: bytes, ours, numpy=True) -> None:
    """Best wall time of ours and of libjpeg-turbo alone, each with its best CPU time (the thread's: what
    the call costs when other work shares the cores), and the NumPy decoder alone."""
    fast, fast_cpu = best_of(ours, repeat), best_of(ours, repeat, time.thread_time)
    libjpeg = best_of(lambda: imagecodecs.jpeg8_decode(data), repeat)
    libjpeg_cpu = best_of(lambda: imagecodecs.jpeg8_decode(data), repeat, time.thread_time)
    line = (
        f"{name}: compiled {fast * 1e3:8.2f} ms (CPU {fast_cpu * 1e3:.2f}) | "
        f"libjpeg-turbo {libjpeg * 1e3:8.2f} ms (CPU {libjpeg_cpu * 1e3:.2f}, {libjpeg / fast:.2f}x)"
    )
    if numpy:
        with numpy_only():
            slow = best_of(ours, max(1, repeat // 3))
        line += f" | NumPy decoder {slow * 1e3:8.1f} ms ({slow / fast:.0f}x)"
    print(line)


def report_encode(samples: np.ndarray, repeat: int) -> None:
    """Min and median wall time of ljpeg.encode, compiled and NumPy, and the ratio of each."""
    compiled = timings(lambda: ljpeg.encode(samples), repeat)
    with numpy_only():
        slow = timings(lambda: ljpeg.encode(samples), repeat)
    fast_min, fast_median, slow_min, slow_median = (f(t) for t in (compiled, slow) for f in (min, statistics.median))
    print(
        f"ljpeg.encode of that map, min/median of {repeat}: compiled {fast_min * 1e3:.2f}/{fast_median * 1e3:.2f} ms | "
        f"NumPy encoder {slow_min * 1e3:.2f}/{slow_median * 1e3:.2f} ms "
        f"({slow_min / fast_min:.1f}x/{slow_median / fast_median:.1f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--encode-repeat", type=int, default=50)
    parser.add_argument("--large", action="store_true")
    args = parser.parse_args()
    print(machine(), f"imagecodecs {imagecodecs.__version__}, best of {args.repeat}")
    attached = jpeg.attach_depth(photo(), depth_map())
    image = jpeg.mp_index(attached, parse_jpeg(attached)).images[0]
    coded = attached[image.start : image.end]
    print(f"768x576 map: a depth image of {len(coded)} bytes")
    report("read_depth, 768x576 lossless map in a JPEG", args.repeat, coded, lambda: jpeg.read_depth(attached))
    parsed = parse_jpeg(coded)
    report("ljpeg.decode of that map", args.repeat, coded, lambda: ljpeg.decode(coded, parsed))
    report_encode(ljpeg.decode(coded, parsed), args.encode_repeat)
    flat = ljpeg.encode(np.full((2048, 4096), 1234, np.uint16))
    flat_parsed = parse_jpeg(flat)
    report(f"1 MB of one-bit codes (4096x2048, {len(flat)} bytes)", 3, flat, lambda: ljpeg.decode(flat, flat_parsed))
    if args.large:
        large = ljpeg.encode(np.full((8192, 8192), 1234, np.uint16))
        large_parsed = parse_jpeg(large)
        report(
            f"8 MB of one-bit codes (8192x8192, {len(large)} bytes)",
            3,
            large,
            lambda: ljpeg.decode(large, large_parsed),
            numpy=False,
        )


if __name__ == "__main__":
    main()
