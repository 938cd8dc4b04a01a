"""Attach a depth map to a 12 Mpix JPEG: gpu_depth (primary kept byte for byte) vs Pillow's MPO writer
(which decodes and re-encodes the primary), measured in the same run.

    python bench/bench_jpeg_attach.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from common import median_of
from PIL import Image

from gpu_depth import DepthData
from gpu_depth.containers.jpeg import plugin as jpeg
from gpu_depth.core.quantize import quantize


def photo_12mpix() -> bytes:
    """A 4032x3024 camera-like JPEG (quality 90, 4:2:0) with texture, so the coder has real work."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:3024, 0:4032].astype(np.float32)
    base = 128 + 60 * np.sin(x / 97) * np.cos(y / 53)
    rgb = np.stack([base, base[::-1], base[:, ::-1]], axis=-1) + rng.normal(0, 12, (3024, 4032, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def depth_map() -> DepthData:
    y, x = np.mgrid[0:576, 0:768] / 768
    return DepthData.from_array(0.3 + 2.0 * (0.5 + 0.5 * np.sin(5 * x) * np.cos(3 * y)), "hdis")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    photo, depth = photo_12mpix(), depth_map()

    def ours(coding: str):
        return lambda: jpeg.attach_depth(photo, depth, coding=coding)

    def pillow_mpo() -> bytes:
        gray = Image.fromarray(quantize(depth).pixels)
        out = io.BytesIO()
        with Image.open(io.BytesIO(photo)) as primary:
            primary.save(out, format="MPO", save_all=True, append_images=[gray], quality=90)
        return out.getvalue()

    pillow_mpo()  # warm up (imports, caches)
    t_pillow = median_of(pillow_mpo, args.repeat)
    print(f"photo {len(photo) / 1e6:.1f} MB, 4032x3024; depth 768x576 hdis; median of {args.repeat}")
    print(f"Pillow MPO writer (re-encodes the photo, 8-bit map): {t_pillow * 1e3:8.1f} ms")
    for coding in jpeg.CODINGS:
        t_ours = median_of(ours(coding), args.repeat)
        attached = ours(coding)()
        t_read = median_of(lambda attached=attached: jpeg.read_depth(attached), args.repeat)
        print(
            f"gpu_depth attach, {coding:8s} map (photo kept):  {t_ours * 1e3:8.1f} ms  "
            f"speed-up {t_pillow / t_ours:5.1f}x (issue 5 asks >= 10x); read_depth {t_read * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
