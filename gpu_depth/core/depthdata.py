"""DepthData: the AVDepthData analogue (pixel rows in a Core Video depth format, plus metadata)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DepthError
from .formats import PixelFormat
from .mapping import round_to_format
from .metadata import DepthMetadata
from .xmp import build_metadata_xmp, parse_metadata_xmp


@dataclass(frozen=True, eq=False)
class DepthData:
    """A depth or disparity map laid out in rows of ``bytes_per_row`` bytes, as Core Video does.

    ``data`` is the raw bytes (rows, padding included), ``array`` a read-only (height, width) view
    without the padding.  Build one with :func:`gpu_depth.convert` or :meth:`from_array`.
    """

    pixel_format: PixelFormat
    width: int
    height: int
    bytes_per_row: int
    data: bytes | memoryview = field(repr=False)
    metadata: DepthMetadata = field(default_factory=DepthMetadata)

    def __post_init__(self) -> None:
        fmt = PixelFormat.parse(self.pixel_format)
        object.__setattr__(self, "pixel_format", fmt)
        _check_layout(fmt, self.width, self.height, self.bytes_per_row, len(memoryview(self.data).cast("B")))

    @classmethod
    def from_array(
        cls,
        array: np.ndarray,
        pixel_format: PixelFormat | str,
        *,
        row_alignment: int = 1,
        metadata: DepthMetadata | None = None,
    ) -> DepthData:
        """Pack a (height, width) float array into rows padded to a multiple of ``row_alignment`` bytes.

        Values are rounded once to the format (round to nearest even); NaN stays NaN.
        """
        array = np.asarray(array)
        if array.ndim != 2 or array.dtype.kind != "f":
            raise DepthError(f"expected a 2-D float array, got {array.ndim}-D {array.dtype}")
        fmt = PixelFormat.parse(pixel_format)
        height, width = array.shape
        rows = empty_rows(fmt, width, height, row_alignment)
        rows[:, :width] = round_to_format(array.astype(np.float64), fmt)
        return cls.from_rows(rows, fmt, width, metadata)

    @classmethod
    def from_rows(
        cls, rows: np.ndarray, pixel_format: PixelFormat, width: int, metadata: DepthMetadata | None = None
    ) -> DepthData:
        """Wrap a (height, row elements) array made by :func:`empty_rows` without copying."""
        buffer = rows.view(np.uint8).reshape(-1)
        buffer.flags.writeable = False
        return cls(
            pixel_format,
            width,
            rows.shape[0],
            rows.shape[1] * rows.itemsize,
            memoryview(buffer),
            metadata or DepthMetadata(),
        )

    @property
    def array(self) -> np.ndarray:
        """Read-only (height, width) view of the samples, without row padding."""
        fmt = self.pixel_format
        view = np.ndarray(
            (self.height, self.width), fmt.dtype, buffer=self.data, strides=(self.bytes_per_row, fmt.bytes_per_pixel)
        )
        view.flags.writeable = False
        return view

    def converting(self, pixel_format: PixelFormat | str) -> DepthData:
        """The same map in another format: depth ↔ disparity (1/x in float64), half ↔ float.

        NaN stays NaN.  Tight rows stay tight; padded rows keep their power-of-two alignment (≤ 64).
        """
        fmt = PixelFormat.parse(pixel_format)
        values = self.array.astype(np.float64)
        if fmt.is_disparity != self.pixel_format.is_disparity:
            with np.errstate(divide="ignore"):
                values = 1.0 / values
        alignment = math.gcd(self.bytes_per_row, 64) if self.bytes_per_row > self._tight_row else 1
        return DepthData.from_array(values, fmt, row_alignment=alignment, metadata=self.metadata)

    @property
    def _tight_row(self) -> int:
        return self.width * self.pixel_format.bytes_per_pixel

    def dictionary_representation(self) -> dict[str, Any]:
        """The ``CGImageSourceCopyAuxiliaryDataInfoAtIndex`` dictionary: Data, DataDescription, Metadata."""
        return {
            "Data": bytes(self.data),
            "DataDescription": {
                "PixelFormat": self.pixel_format.code,
                "Width": self.width,
                "Height": self.height,
                "BytesPerRow": self.bytes_per_row,
            },
            "Metadata": build_metadata_xmp(self.metadata),
        }

    @classmethod
    def from_dictionary_representation(cls, info: Mapping[str, Any]) -> DepthData:
        """Validate and read a dictionary made by :meth:`dictionary_representation` (or ImageIO)."""
        if not isinstance(info, Mapping):
            raise DepthError(f"depth dictionary must be a mapping, got {type(info).__name__}")
        data = _field(info, "Data", (bytes, bytearray, memoryview), "")
        desc = _field(info, "DataDescription", Mapping, "")
        fmt = PixelFormat.parse(_field(desc, "PixelFormat", int, "DataDescription."))
        width, height, bytes_per_row = (
            _field(desc, key, int, "DataDescription.") for key in ("Width", "Height", "BytesPerRow")
        )
        metadata = info.get("Metadata")
        meta = parse_metadata_xmp(metadata) if metadata is not None else DepthMetadata()
        return cls(fmt, width, height, bytes_per_row, bytes(data), meta)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DepthData):
            return NotImplemented
        return (self.pixel_format, self.width, self.height, self.bytes_per_row, self.metadata) == (
            other.pixel_format,
            other.width,
            other.height,
            other.bytes_per_row,
            other.metadata,
        ) and bytes(self.data) == bytes(other.data)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        return (
            DepthData,
            (self.pixel_format, self.width, self.height, self.bytes_per_row, bytes(self.data), self.metadata),
        )


def row_bytes(pixel_format: PixelFormat, width: int, row_alignment: int = 1) -> int:
    """BytesPerRow of a row of ``width`` samples padded to a multiple of ``row_alignment`` bytes."""
    if row_alignment != 1 and (row_alignment < 1 or row_alignment % pixel_format.bytes_per_pixel):
        raise DepthError(
            f"row alignment must be 1 or a multiple of {pixel_format.bytes_per_pixel}, got {row_alignment}"
        )
    tight = width * pixel_format.bytes_per_pixel
    return -(-tight // row_alignment) * row_alignment


def empty_rows(pixel_format: PixelFormat, width: int, height: int, row_alignment: int = 1) -> np.ndarray:
    """A zeroed (height, BytesPerRow / bytes per pixel) array of the format's dtype."""
    per_row = row_bytes(pixel_format, width, row_alignment) // pixel_format.bytes_per_pixel
    return np.zeros((height, per_row), pixel_format.dtype)


def _check_layout(fmt: PixelFormat, width: Any, height: Any, bytes_per_row: Any, size: int) -> None:
    for name, value in (("Width", width), ("Height", height), ("BytesPerRow", bytes_per_row)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise DepthError(f"DataDescription.{name} must be a positive integer, got {value!r}")
    if bytes_per_row < width * fmt.bytes_per_pixel:
        raise DepthError(
            f"DataDescription.BytesPerRow {bytes_per_row} is less than Width {width} × "
            f"{fmt.bytes_per_pixel} bytes per {fmt} pixel"
        )
    if bytes_per_row % fmt.bytes_per_pixel:
        raise DepthError(
            f"DataDescription.BytesPerRow {bytes_per_row} is not a multiple of "
            f"{fmt.bytes_per_pixel} bytes per {fmt} pixel"
        )
    if size < bytes_per_row * height:
        raise DepthError(
            f"Data holds {size} bytes, less than BytesPerRow {bytes_per_row} × "
            f"Height {height} = {bytes_per_row * height}"
        )


def _field(info: Mapping[str, Any], key: str, kind: Any, prefix: str) -> Any:
    if key not in info:
        raise DepthError(f"depth dictionary lacks {prefix}{key}")
    value = info[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DepthError(f"depth dictionary field {prefix}{key} has the wrong type {type(value).__name__}")
    return value
