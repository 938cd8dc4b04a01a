"""Save a DepthData for other tools: float32 .npy, 16-bit .png (with its mapping recorded), float .tif."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .atomic import write_atomic
from .depthdata import DepthData
from .errors import DepthError


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
