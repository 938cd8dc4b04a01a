"""An independent float64 reference of the depth mappings, written from the spec, not from gpu_depth.

Rounding to binary16 goes through CPython's struct 'e' format (PyFloat_Pack2, round half to even),
to binary32 through struct 'f', so neither depends on NumPy's casts.
"""

from __future__ import annotations

import math
import struct

import numpy as np

NATIVE_DISPARITY = {"inverse-gray", "relative-disparity"}


def reference_value(code: float, top: float | None, preset: str, near: float, far: float, disparity: bool) -> float:
    """Depth (m) or disparity (1/m) of one input value; NaN when invalid. ``top``: largest code, None for floats."""
    if preset in ("kitti", "mm16", "metric"):
        metres = code / {"kitti": 256.0, "mm16": 1000.0, "metric": 1.0}[preset]
        if not metres > 0 or math.isinf(metres):
            return math.nan
        return 1.0 / metres if disparity else metres
    g = code / top if top is not None else code
    if preset == "inverted-gray":
        g = (top - code) / top if top is not None else 1.0 - code
    if preset == "apple-gray" or preset == "inverted-gray":
        native = near + g * (far - near)
    elif preset == "inverse-gray":
        native = 1.0 / near + g * (1.0 / far - 1.0 / near)
    else:
        native = 1.0 / far + g * (1.0 / near - 1.0 / far)
    if disparity == (preset in NATIVE_DISPARITY):
        return native
    return 1.0 / native


def round_bits(values: list[float], dtype: str) -> np.ndarray:
    """Bit patterns of ``values`` rounded once to float16/float32 by CPython's struct module."""
    code, view = {"float16": ("e", np.uint16), "float32": ("f", np.uint32)}[dtype]
    packed = b"".join(struct.pack("<" + code, v) for v in values)
    return np.frombuffer(packed, dtype=view)
