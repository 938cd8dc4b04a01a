"""Depth-map files written byte by byte in the encodings datasets and depth models use."""

import io
import struct
import zipfile

import numpy as np


def pfm(values: np.ndarray, little_endian: bool = True) -> bytes:
    """A one-channel PFM as Middlebury and MiDaS write it: rows bottom to top, scale -1 for little-endian."""
    height, width = values.shape
    order = "<f4" if little_endian else ">f4"
    header = f"Pf\n{width} {height}\n{-1.0 if little_endian else 1.0}\n".encode()
    return header + np.ascontiguousarray(values[::-1], order).tobytes()


def dpt(values: np.ndarray) -> bytes:
    """A Sintel .dpt: TAG_FLOAT 202021.25, int32 width and height, float32 depth row by row."""
    height, width = values.shape
    return struct.pack("<fii", 202021.25, width, height) + values.astype("<f4").tobytes()


def npz(**arrays: np.ndarray) -> bytes:
    """``np.savez_compressed(**arrays)`` as bytes (Depth Pro's CLI: ``depth=…``)."""
    stream = io.BytesIO()
    np.savez_compressed(stream, **arrays)
    return stream.getvalue()


def exr(channels: dict[str, np.ndarray]) -> bytes:
    """A scanline OpenEXR file with ``channels`` (float32 arrays), through the exr extra."""
    import OpenEXR

    stream = io.BytesIO()
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, {name: values.astype(np.float32) for name, values in channels.items()}).write(stream)
    return stream.getvalue()


def zip_member(name: str, data: bytes) -> bytes:
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return stream.getvalue()
