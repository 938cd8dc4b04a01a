"""The depth map's encode, the cost that dominates attaching depth to a HEIC: x265 settings × time × size.

For iPhone-size maps (768×576, 576×768, 640×480; a smooth disparity ramp with sensor-like noise, quantised to
8 bits as the HEIC writer stores it), times pillow-heif's monochrome HEVC encode at each x265 preset, lossless
and at iPhone-like lossy qualities, with the x265 thread and lookahead settings of :data:`THREADS`, and our 16-bit
lossless JPEG encoder on the same map (the ``jpeg`` depth item's coding) as the baseline of the same run, and our
lossless HEVC coder (hevc_lossless, the default lossless encode where the package is built with C).

    PYTHONPATH=. python bench/bench_depth_encode.py [--repeat 5] [--presets ultrafast,medium]
"""

from __future__ import annotations

import argparse
import io

import numpy as np
import pillow_heif
from common import machine, median_of

from gpu_depth.containers.heic import hevc_lossless
from gpu_depth.containers.jpeg import ljpeg

SIZES = ((768, 576), (576, 768), (640, 480))
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
#: quality -1 is lossless; iPhones store filtered maps lossy.
QUALITIES = (-1, 90, 75)
#: x265 settings libheif passes through (``x265:NAME``) that could matter for one small intra frame: its default
#: (a thread pool of one thread per core, wavefront rows), one pool thread, no pool at all, no wavefront
#: parallelism, no lookahead slices; x265's own one TU depth (libheif's x265 plugin sets 2 over every preset's 1),
#: with RD level 1 too.  ``rc-lookahead=0`` is refused by x265 ("could not be opened").
THREADS = {
    "default": {},
    "1 thread": {"x265:pools": "1", "x265:frame-threads": "1"},
    "no pool": {"x265:pools": "none"},
    "no WPP": {"x265:wpp": "0"},
    "no la-sl": {"x265:lookahead-slices": "0"},
    "TU 1": {"x265:tu-intra-depth": "1"},
    "TU 1 RD 1": {"x265:tu-intra-depth": "1", "x265:rd": "1"},
}


def depth_map(width: int, height: int, bits: int) -> np.ndarray:
    """A smooth disparity ramp with noise, as ``bits``-bit codes."""
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    rng = np.random.default_rng(1)
    values = 0.3 + 0.5 * x + 0.2 * np.sin(6 * y) + rng.normal(0, 0.004, (height, width))
    top = (1 << bits) - 1
    return np.clip(np.rint(values * top), 0, top).astype(np.uint8 if bits == 8 else np.uint16)


def hevc(pixels: np.ndarray, quality: int, params: dict[str, str]) -> bytes:
    height, width = pixels.shape
    buffer = io.BytesIO()
    image = pillow_heif.from_bytes("L", (width, height), pixels.tobytes())
    image.save(buffer, quality=quality, enc_params=params, save_nclx_profile=False)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per setting (median reported)")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated x265 presets")
    args = parser.parse_args()
    print(f"machine: {machine()}, pillow-heif {pillow_heif.__version__}, libheif {pillow_heif.libheif_version()}")
    for width, height in SIZES:
        eight, sixteen = depth_map(width, height, 8), depth_map(width, height, 16)
        jpeg_time = median_of(lambda sixteen=sixteen: ljpeg.encode(sixteen), args.repeat)
        jpeg_size = len(ljpeg.encode(sixteen))
        coder = "compiled" if ljpeg.compiled() else "numpy"
        print(f"\n{width}x{height}: 16-bit lossless JPEG ({coder}) {jpeg_time * 1e3:7.1f} ms {jpeg_size / 1e3:6.1f} KB")
        if hevc_lossless.AVAILABLE:
            ours = median_of(lambda m=eight: hevc_lossless.encode(m), args.repeat)
            size = len(hevc_lossless.encode(eight)[1])
            print(f"  8-bit lossless HEVC (ours) {ours * 1e3:7.1f} ms {size / 1e3:6.1f} KB {ours / jpeg_time:11.1f}x")
        print(f"  {'preset':10} {'quality':>8} {'threads':>9} {'time':>9} {'size':>9} {'time / jpeg':>12}")
        for preset in args.presets.split(","):
            for quality in QUALITIES:
                for threads, extra in THREADS.items():
                    params = {"preset": preset, **extra}
                    seconds = median_of(lambda p=params, q=quality, m=eight: hevc(m, q, p), args.repeat)
                    size = len(hevc(eight, quality, params))
                    label = "lossless" if quality < 0 else str(quality)
                    print(
                        f"  {preset:10} {label:>8} {threads:>9} {seconds * 1e3:7.1f} ms {size / 1e3:6.1f} KB "
                        f"{seconds / jpeg_time:11.1f}x"
                    )


if __name__ == "__main__":
    main()
