"""Attach depth to a 12 Mpix HEIC vs the only other way on Linux: decode and re-encode it with pillow-heif.

Both run in the same process on the same photo; the script prints the ratio (the issue asks ≥ 20×).
The baseline re-encode is timed at pillow-heif's default x265 preset and at ``ultrafast``.

    PYTHONPATH=. python bench/bench_heic_attach.py [--repeat 5] [--no-grid]
"""

from __future__ import annotations

import argparse
import io

import numpy as np
import pillow_heif
from common import machine, median_of
from PIL import Image

from gpu_depth import DepthData
from gpu_depth.containers.heic import plugin as heic

WIDTH, HEIGHT = 4032, 3024
DEPTH_SIZE = (768, 576)
QUALITY = 90


def photo(grid: bool) -> bytes:
    """A 12 Mpix photo-like HEIC (smooth shading plus texture), tiled 512 like an iPhone's when ``grid``."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    rng = np.random.default_rng(0)
    texture = rng.normal(0, 12, (HEIGHT, WIDTH)).astype(np.float32)
    rgb = np.stack([x / WIDTH * 200 + texture, y / HEIGHT * 200 + texture, 128 + 60 * np.sin(x / 300) + texture], -1)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    options = {"tile_size": 512} if grid else {}
    pillow_heif.from_pillow(image).save(buffer, quality=QUALITY, enc_params={"preset": "ultrafast"}, **options)
    return buffer.getvalue()


def depth() -> DepthData:
    width, height = DEPTH_SIZE
    y, x = np.mgrid[0:height, 0:width]
    return DepthData.from_array(1.5 + 2.9 * (x / width) * (y / height), "hdis")


def reencode(data: bytes, preset: str) -> bytes:
    """Decode the photo with pillow-heif and encode it again (what re-saving through pillow-heif does)."""
    image = pillow_heif.open_heif(io.BytesIO(data))
    buffer = io.BytesIO()
    image.save(buffer, quality=QUALITY, enc_params={"preset": preset})
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of the attach (median reported)")
    parser.add_argument("--no-grid", action="store_true", help="a single 4032x3024 image instead of 512 tiles")
    args = parser.parse_args()

    data, depth_map = photo(not args.no_grid), depth()
    print(f"machine: {machine()}, pillow-heif {pillow_heif.__version__}, libheif {pillow_heif.libheif_version()}")
    print(
        f"photo: {WIDTH}x{HEIGHT} HEIC {'grid of 512 tiles' if not args.no_grid else 'single image'}, "
        f"{len(data) / 1e6:.1f} MB; depth {DEPTH_SIZE[0]}x{DEPTH_SIZE[1]} hdis"
    )
    attach = median_of(lambda: heic.attach_depth(data, depth_map), args.repeat)
    print(f"attach_depth (no re-encode, lossless depth): {attach * 1e3:8.1f} ms (median of {args.repeat})")
    for preset in ("medium", "ultrafast"):
        baseline = median_of(lambda preset=preset: reencode(data, preset), 1, warmup=False)
        print(
            f"pillow-heif decode + re-encode, preset {preset:9}: {baseline * 1e3:8.1f} ms  "
            f"ratio {baseline / attach:6.1f}x"
        )


if __name__ == "__main__":
    main()
