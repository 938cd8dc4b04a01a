"""Depth-map files in and out: the 8/16-bit PNG and TIFF, float TIFF and NumPy .npy maps datasets ship,
and DepthData saved for other tools (float32 .npy, 16-bit .png with its mapping recorded, float .tif)."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from tokenize import TokenError

import numpy as np

from . import limits
from .core.depthdata import DepthData
from .errors import DepthError
from .fileio import read_file, write_atomic

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
        raise DepthError(f"{path}: {exc}") from exc
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
        raise DepthError(f"not a valid .npy array ({exc})") from exc
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
        raise DepthError(f"cannot decode the depth map ({exc})") from exc
    if image.mode not in ("L", "I;16", "I;16B", "I;16L", "I", "F"):
        raise DepthError(f"depth map must be grayscale, got mode {image.mode}")
    array = np.asarray(image)
    if image.mode == "I":  # 16-bit PNGs open as 32-bit integers
        if array.min() < 0 or array.max() > 65535:
            raise DepthError("32-bit integer depth maps are not supported; use 16-bit")
        array = array.astype(np.uint16)
    return array.astype(array.dtype.newbyteorder("="))


def save_depth(depth: DepthData, path: Path) -> None:
    """Write ``depth`` as the format ``path``'s suffix names, atomically."""
    writers = {".npy": _npy, ".png": _png, ".tif": _tiff, ".tiff": _tiff}
    suffix = path.suffix.lower()
    if suffix not in writers:
        raise DepthError(f"{path}: choose a .npy, .png or .tif output")
    write_atomic(path, writers[suffix](depth))


def _npy(depth: DepthData) -> bytes:
    stream = io.BytesIO()
    np.save(stream, depth.array.astype(np.float32))
    return stream.getvalue()


def _png(depth: DepthData) -> bytes:
    """16-bit gray, linear in the native quantity between the map's finite min and max (0 for NaN);
    the tEXt chunks ``gpu-depth:*`` record how to map codes back."""
    from PIL import Image, PngImagePlugin

    values = depth.array.astype(np.float64)
    finite = np.isfinite(values)
    low, high = (float(values[finite].min()), float(values[finite].max())) if finite.any() else (0.0, 0.0)
    scale = 65534 / (high - low) if high > low else 0.0
    codes = np.where(finite, np.rint((np.where(finite, values, low) - low) * scale) + 1, 0).astype(np.uint16)
    text = PngImagePlugin.PngInfo()
    for key, value in (
        ("PixelFormat", depth.pixel_format.fourcc),
        ("Quantity", depth.pixel_format.quantity),
        ("Code1", repr(low)),
        ("Code65535", repr(high)),
        ("Code0", "invalid (NaN)"),
    ):
        text.add_text(f"gpu-depth:{key}", value)
    stream = io.BytesIO()
    Image.fromarray(codes).save(stream, format="PNG", pnginfo=text)
    return stream.getvalue()


def _tiff(depth: DepthData) -> bytes:
    from PIL import Image

    stream = io.BytesIO()
    Image.fromarray(depth.array.astype(np.float32), mode="F").save(stream, format="TIFF")
    return stream.getvalue()
