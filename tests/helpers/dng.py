"""Minimal DNG files the DNG tests build."""

import io

import numpy as np
import tifffile

from gpu_depth import DepthData, DepthMetadata
from gpu_depth.containers.dng import plugin as dng
from gpu_depth.containers.dng.tiff import TiffFile

IDENTITY_MATRIX = (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1)
CAMERA = [
    (50708, "s", 0, "gpu_depth test camera", True),
    (271, "s", 0, "gpu_depth", True),
    (272, "s", 0, "test", True),
    (274, "H", 1, 1, True),
    (50721, "2i", 9, IDENTITY_MATRIX, True),
    (50778, "H", 1, 21, True),
    (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),
]
CFA = [(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True), (50717, "I", 1, 4095, True)]
LINEAR_RAW = [(50717, "I", 1, 4095, True)]


def make_dng(
    layout: str = "cfa-in-subifd",
    byteorder: str = "<",
    tile: tuple[int, int] | None = None,
    version: tuple[int, int, int, int] = (1, 4, 0, 0),
    backward: tuple[int, int, int, int] | None = (1, 1, 0, 0),
) -> bytes:
    """A small valid DNG: CFA raw below an RGB preview IFD0, LinearRaw in IFD0, or CFA + preview SubIFDs."""
    rng = np.random.default_rng(7)
    dng_tags = [(50706, "B", 4, version, True)] + ([(50707, "B", 4, backward, True)] if backward else [])
    preview = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    stream = io.BytesIO()
    with tifffile.TiffWriter(stream, byteorder=byteorder) as tif:
        if layout == "linear-raw-in-ifd0":
            raw = rng.integers(0, 4096, (40, 56, 3), dtype=np.uint16)
            tif.write(raw, photometric=34892, tile=tile, subfiletype=0, extratags=dng_tags + CAMERA + LINEAR_RAW)
            return stream.getvalue()
        raw = rng.integers(0, 4096, (64, 96), dtype=np.uint16)
        subifds = 2 if layout == "cfa-and-preview-subifds" else 1
        tif.write(preview, photometric="rgb", subfiletype=1, subifds=subifds, extratags=dng_tags + CAMERA)
        tif.write(raw, photometric=32803, tile=tile, subfiletype=0, extratags=CFA)
        if subifds == 2:
            tif.write(preview[::2, ::2], photometric="rgb", subfiletype=1)
    return stream.getvalue()


def depth_map(pixel_format: str = "fdep", shape=(48, 64), accuracy: str = "relative") -> DepthData:
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    metres = 0.4 + 3.0 * (x / shape[1]) + 1.5 * (y / shape[0]) ** 2
    values = metres if pixel_format in ("hdep", "fdep") else 1.0 / metres
    return DepthData.from_array(values, pixel_format, metadata=DepthMetadata(accuracy=accuracy))


def depth_ifd(data: bytes):
    tiff = TiffFile(data)
    (found,) = [ifd for ifd in tiff.walk() if 254 in ifd and tiff.integers(ifd, 254) == (dng.DEPTH_MAP,)]
    return tiff, found


def entry_position(ifd, tag: int) -> int:
    return ifd.offset + 2 + 12 * list(ifd.entries).index(tag)
