"""Read depth maps from the files datasets ship: 8/16-bit PNG and TIFF, float TIFF, NumPy .npy."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from tokenize import TokenError

import numpy as np

from . import limits
from .api import read_file
from .errors import DepthError

SUFFIXES = (".png", ".tif", ".tiff", ".npy", ".pgm")
#: .npy dtypes accepted (native byte order), and the header readers of the format versions np.save writes.
NPY_DTYPES = tuple(np.dtype(name) for name in ("uint8", "uint16", "float16", "float32", "float64"))
NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def load_depth_map(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """A 2-D uint8, uint16 or float32 array from a depth map file; DepthError on anything else.

    ``max_pixels``: the decompression-bomb limit, by default :func:`gpu_depth.limits.max_pixels`.
    """
    path = Path(path)
    max_pixels = limits.max_pixels() if max_pixels is None else max_pixels
    data = read_file(path)
    try:
        array = _load_npy(data, max_pixels) if path.suffix.lower() == ".npy" else _load_image(data, max_pixels)
    except DepthError as exc:
        raise DepthError(f"{path}: {exc}") from None
    if array.ndim != 2:
        raise DepthError(f"{path}: depth map must be single-channel grayscale, got shape {array.shape}")
    if array.size > max_pixels:
        raise DepthError(f"{path}: {array.size} pixels exceed the {max_pixels}-pixel limit")
    return array


def _load_npy(data: bytes, max_pixels: int) -> np.ndarray:
    """The array of a .npy file, its header checked (shape, dtype, size against the data) before any allocation."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version not in NPY_HEADER_READERS:
            raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
        shape, fortran_order, dtype = NPY_HEADER_READERS[version](stream)
    except (ValueError, SyntaxError, TokenError, OSError, EOFError) as exc:
        raise DepthError(f"not a valid .npy array ({exc})") from None
    if dtype not in NPY_DTYPES:
        raise DepthError(f"unsupported .npy dtype {dtype}; use uint8, uint16 or float32")
    if len(shape) != 2:
        raise DepthError(f"depth map must be single-channel grayscale, got shape {shape}")
    limits.check_pixels(shape[1], shape[0], "depth map", max_pixels)
    needed = shape[0] * shape[1] * dtype.itemsize
    if len(data) - stream.tell() < needed:
        raise DepthError(f"the .npy data holds {len(data) - stream.tell()} bytes; its {shape} {dtype} needs {needed}")
    array = np.frombuffer(data, dtype, shape[0] * shape[1], stream.tell())
    return array.reshape(shape, order="F" if fortran_order else "C").copy()


def _load_image(data: bytes, max_pixels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            limits.check_pixels(image.width, image.height, "depth map", max_pixels)
            limits.check_tiles(image, len(data))
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
