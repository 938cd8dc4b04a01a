"""Read depth maps from the files datasets ship: 8/16-bit PNG and TIFF, float TIFF, NumPy .npy."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np

from . import limits
from .errors import DepthError

SUFFIXES = (".png", ".tif", ".tiff", ".npy", ".pgm")


def load_depth_map(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """A 2-D uint8, uint16 or float32 array from a depth map file; DepthError on anything else.

    ``max_pixels``: the decompression-bomb limit, by default :func:`gpu_depth.limits.max_pixels`.
    """
    path = Path(path)
    max_pixels = limits.max_pixels() if max_pixels is None else max_pixels
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DepthError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        array = _load_npy(data) if path.suffix.lower() == ".npy" else _load_image(data, max_pixels)
    except DepthError as exc:
        raise DepthError(f"{path}: {exc}") from None
    if array.ndim != 2:
        raise DepthError(f"{path}: depth map must be single-channel grayscale, got shape {array.shape}")
    if array.size > max_pixels:
        raise DepthError(f"{path}: {array.size} pixels exceed the {max_pixels}-pixel limit")
    return array


def _load_npy(data: bytes) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DepthError(f"not a valid .npy array ({exc})") from None
    if array.dtype == np.float64:
        return array
    if array.dtype not in (np.uint8, np.uint16, np.float16, np.float32):
        raise DepthError(f"unsupported .npy dtype {array.dtype}; use uint8, uint16 or float32")
    return array


def _load_image(data: bytes, max_pixels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            limits.check_pixels(image.width, image.height, "depth map", max_pixels)
            image.load()
    except DepthError:
        raise
    except (
        OSError,
        ValueError,  # Pillow's PNG, PPM and TIFF plugins raise it on broken headers (truncated IHDR, bad maxval …)
        UnidentifiedImageError,
        SyntaxError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as exc:
        raise DepthError(f"cannot decode the depth map ({exc})") from None
    if image.mode not in ("L", "I;16", "I;16B", "I;16L", "I", "F"):
        raise DepthError(f"depth map must be grayscale, got mode {image.mode}")
    array = np.asarray(image)
    if image.mode == "I":  # 16-bit PNGs open as 32-bit integers
        if array.min() < 0 or array.max() > 65535:
            raise DepthError("32-bit integer depth maps are not supported; use 16-bit")
        array = array.astype(np.uint16)
    return array.astype(array.dtype.newbyteorder("="))
