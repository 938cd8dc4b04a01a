"""A built-in example dataset: a procedural scene whose depth is known analytically.

A pinhole camera looks at a sphere and a box standing on a checkered floor in front of a wall.
Each pair is a photo (HEIC or JPEG) and a 16-bit depth PNG in Apple's gray convention
(0 = ``NEAR``, 65535 = ``FAR``), so ``gpu-depth convert --example`` runs the real job offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The depth range the example's gray maps use (metres).
NEAR, FAR = 0.5, 10.0
_FOCAL = 1.1  # focal length in units of the image half-width


def render(width: int, height: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """An RGB uint8 photo and its float64 depth (metres along the optical axis)."""
    x = (np.arange(width) + 0.5 - width / 2) / (width / 2)
    y = (np.arange(height) + 0.5 - height / 2) / (width / 2)
    rays = np.stack(np.broadcast_arrays(x[None, :], -y[:, None], np.full((1, 1), _FOCAL)), axis=-1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    hits = [
        _plane(rays, np.array([0.0, 1.0, 0.0]), -1.0),  # floor at y = -1
        _plane(rays, np.array([0.0, 0.0, -1.0]), -9.0),  # wall at z = 9
        _sphere(rays, np.array([-0.8 + shift, -0.2, 3.5]), 0.8),
        _box(rays, np.array([1.0 - shift, -1.0, 5.0]), np.array([1.8 - shift, 0.4, 5.8])),
    ]
    distance = np.min(hits, axis=0)
    which = np.argmin(hits, axis=0)
    depth = distance * rays[..., 2]
    points = rays * distance[..., None]
    checker = (np.floor(points[..., 0] * 2) + np.floor(points[..., 2] * 2)) % 2
    colours = np.array([[0.55, 0.5, 0.45], [0.35, 0.45, 0.6], [0.85, 0.3, 0.2], [0.2, 0.65, 0.3]])
    shade = colours[which] * (0.6 + 0.4 * np.where(which == 0, checker, 1.0))[..., None]
    shade *= np.clip(1.4 - depth / FAR, 0.3, 1.0)[..., None]
    return (shade * 255).clip(0, 255).astype(np.uint8), depth


def gray_depth(depth: np.ndarray) -> np.ndarray:
    """Depth in metres as a 16-bit Apple gray map (0 = NEAR, 65535 = FAR)."""
    return np.rint((np.clip(depth, NEAR, FAR) - NEAR) / (FAR - NEAR) * 65535).astype(np.uint16)


def write_example(folder: Path, count: int = 4, size: tuple[int, int] = (1024, 768)) -> tuple[Path, Path]:
    """Write ``count`` pairs into ``folder``/photos and ``folder``/depth; HEIC and JPEG alternate."""
    from PIL import Image
    from pillow_heif import from_pillow

    photos, depths = folder / "photos", folder / "depth"
    photos.mkdir(parents=True, exist_ok=True)
    depths.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        rgb, depth = render(*size, shift=0.3 * index)
        image = Image.fromarray(rgb)
        name = f"scene-{index:02d}"
        if index % 2:
            image.save(photos / f"{name}.jpg", quality=90)
        else:
            from_pillow(image).save(photos / f"{name}.heic", quality=80, enc_params={"preset": "ultrafast"})
        Image.fromarray(gray_depth(depth)).save(depths / f"{name}.png")
    return photos, depths


def _plane(rays: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    facing = rays @ normal
    with np.errstate(divide="ignore", invalid="ignore"):
        t = offset / facing
    return np.where((facing != 0) & (t > 0), t, np.inf)


def _sphere(rays: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    b = rays @ centre
    disc = b * b - (centre @ centre - radius * radius)
    t = b - np.sqrt(np.maximum(disc, 0))
    return np.where((disc >= 0) & (t > 0), t, np.inf)


def _box(rays: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = low / rays, high / rays
    near = np.nanmax(np.minimum(t1, t2), axis=-1)
    far = np.nanmin(np.maximum(t1, t2), axis=-1)
    return np.where((far >= near) & (near > 0), near, np.inf)
