"""Core Video pixel formats of depth and disparity maps, and the stored formats inside containers."""

from __future__ import annotations

import enum

import numpy as np

from ..errors import DepthError


def fourcc_code(fourcc: str) -> int:
    """The 32-bit big-endian code of a four-character code: ``'hdis'`` → 1751411059."""
    return int.from_bytes(fourcc.encode("ascii"), "big")


class PixelFormat(enum.Enum):
    """The four AVDepthData pixel formats: half/float × disparity (1/m) / depth (m)."""

    HDIS = ("hdis", "float16", True)
    FDIS = ("fdis", "float32", True)
    HDEP = ("hdep", "float16", False)
    FDEP = ("fdep", "float32", False)

    def __init__(self, fourcc: str, dtype: str, is_disparity: bool) -> None:
        self.fourcc = fourcc
        self.code = fourcc_code(fourcc)
        self.dtype = np.dtype(dtype)
        self.is_disparity = is_disparity

    @property
    def bytes_per_pixel(self) -> int:
        return self.dtype.itemsize

    @property
    def quantity(self) -> str:
        """``'disparity'`` or ``'depth'``: the AuxiliaryImageType Apple writes for it."""
        return "disparity" if self.is_disparity else "depth"

    @property
    def max_value(self) -> float:
        return float(np.finfo(self.dtype).max)

    def with_quantity(self, disparity: bool) -> PixelFormat:
        """The format of the same precision holding disparity (True) or depth (False)."""
        return _BY_KIND[(self.dtype.itemsize, disparity)]

    def with_precision(self, dtype: str) -> PixelFormat:
        """The format of the same quantity with ``float16`` or ``float32`` samples."""
        return _BY_KIND[(np.dtype(dtype).itemsize, self.is_disparity)]

    @classmethod
    def parse(cls, value: PixelFormat | str | int) -> PixelFormat:
        """A format from itself, its FourCC (``'hdis'``) or its numeric code (1751411059)."""
        if isinstance(value, cls):
            return value
        for member in cls:
            if value in (member.fourcc, member.code, member.name):
                return member
        names = ", ".join(m.fourcc for m in cls)
        raise DepthError(f"unknown depth pixel format {value!r}; expected one of {names}")

    def __str__(self) -> str:
        return self.fourcc


_BY_KIND = {(m.dtype.itemsize, m.is_disparity): m for m in PixelFormat}


class StoredFormat(enum.Enum):
    """Integer formats of the map as stored in a container (``apdi:StoredFormat``)."""

    L008 = ("L008", "uint8")
    L016 = ("L016", "uint16")

    def __init__(self, fourcc: str, dtype: str) -> None:
        self.fourcc = fourcc
        self.code = fourcc_code(fourcc)
        self.dtype = np.dtype(dtype)

    @property
    def max_code(self) -> int:
        return int(np.iinfo(self.dtype).max)

    @classmethod
    def parse(cls, value: StoredFormat | str | int) -> StoredFormat:
        if isinstance(value, cls):
            return value
        for member in cls:
            if value in (member.fourcc, member.code):
                return member
        raise DepthError(f"unknown stored format {value!r}; expected L008 or L016")
