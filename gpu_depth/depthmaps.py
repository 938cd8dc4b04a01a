"""Depth-map files in and out: the maps datasets and depth models ship, and DepthData saved for other tools
(float32 .npy, 16-bit .png with its mapping recorded, float .tif).

Maps are read by content, never by suffix alone, and only as these formats:

* PNG, TIFF (one page) and PGM: 8/16-bit gray or 32-bit float gray (through Pillow, restricted to that format);
* NumPy ``.npy``, and ``.npz`` (key ``depth``, else its only array: Apple Depth Pro's CLI writes ``depth``; key
  ``intrinsics`` (fx, fy, cx, cy) or ``K`` (3×3) gives the camera's intrinsics);
* PFM (``Pf``, one channel; Middlebury, MiDaS): float32 rows stored bottom to top, the scale's sign the byte order;
* Sintel ``.dpt``: the tag 202021.25, width and height as int32, float32 depth row by row (little-endian);
* OpenEXR with one float channel, or one of Z, Y, R (extra ``exr``: ``pip install 'gpu_depth[exr]'``).
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zipfile
from pathlib import Path
from tokenize import TokenError

import numpy as np

from . import limits
from .core.auxiliary import Matte
from .core.depthdata import DepthData
from .errors import DepthError
from .fileio import read_file, write_atomic

SUFFIXES = (".png", ".tif", ".tiff", ".pgm", ".npy", ".npz", ".pfm", ".dpt", ".exr")
#: .npy dtypes accepted (native byte order), and the header readers of the format versions np.save writes.
NPY_DTYPES = tuple(np.dtype(name) for name in ("uint8", "uint16", "float16", "float32", "float64"))
NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
#: Sintel's TAG_FLOAT (202021.25 as little-endian float32).
DPT_TAG = b"PIEH"
#: Keys of an .npz that hold the camera's intrinsics rather than a map: fx, fy, cx, cy, or the 3×3 matrix K.
NPZ_INTRINSICS = ("intrinsics", "K")
#: Channels an OpenEXR depth map may keep its depth in, in order of preference.
EXR_CHANNELS = ("Z", "Y", "R")
#: Leading bytes of each format read, and the reader.
SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"P5", "PGM"),
    (b"\x93NUMPY", "NPY"),
    (b"PK\x03\x04", "NPZ"),
    (b"Pf", "PFM"),
    (DPT_TAG, "DPT"),
    (b"v/1\x01", "EXR"),
)
#: Formats a depth map is often mistaken for, to say what a refused file looks like.
LOOKALIKES = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%!PS", "a PostScript/EPS file"),
    (b"\xc5\xd0\xd3\xc6", "an EPS file"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"RIFF", "a RIFF (WebP) file"),
    (b"PF", "a colour PFM (3 channels)"),
    (b"P6", "a colour PPM"),
)
KNOWN = "PNG, TIFF, PGM, NPY, NPZ, PFM, Sintel DPT, OpenEXR"


def load_depth_map(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """A 2-D uint8, uint16 or float array from a depth map file; DepthError on anything else.

    ``max_pixels``: the decompression-bomb limit, by default :func:`gpu_depth.limits.max_pixels`.
    """
    return load_depth_file(path, max_pixels)[0]


def load_depth_file(
    path: str | os.PathLike, max_pixels: int | None = None
) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
    """:func:`load_depth_map`'s array, and the intrinsics (fx, fy, cx, cy) the file gives or None."""
    path = Path(path)
    max_pixels = limits.max_pixels() if max_pixels is None else max_pixels
    data = read_file(path)
    kind = sniff(data)
    if kind is None:
        raise DepthError(f"{path}: {_looks_like(data)}, not a depth map format gpu-depth reads ({KNOWN})")
    try:
        array = READERS[kind](data, max_pixels)
        intrinsics = _npz_intrinsics(data) if kind == "NPZ" else None
    except DepthError as exc:
        raise DepthError(f"{path}: {exc}") from exc
    if array.ndim != 2:
        raise DepthError(f"{path}: depth map must be single-channel grayscale, got shape {array.shape}")
    if array.size > max_pixels:
        raise DepthError(f"{path}: {array.size} pixels exceed the {max_pixels}-pixel limit")
    return array, intrinsics


def sniff(data: bytes) -> str | None:
    """The depth-map format ``data`` is in, by its leading bytes, or None."""
    return next((kind for magic, kind in SIGNATURES if data.startswith(magic)), None)


def _looks_like(data: bytes) -> str:
    name = next((name for magic, name in LOOKALIKES if data.startswith(magic)), None)
    return f"it looks like {name}" if name else f"its first bytes are {data[:8]!r}"


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


def _load_npz(data: bytes, max_pixels: int) -> np.ndarray:
    """Key ``depth`` of an .npz archive, else its only array; read with a bound on the inflated size."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        members = {name: info for name, info in members.items() if name not in NPZ_INTRINSICS}
        if "depth" in members:
            info = members["depth"]
        elif len(members) == 1:
            (info,) = members.values()
        else:
            names = ", ".join(sorted(members)) or "no arrays"
            raise DepthError(f"the .npz holds {names}: name the depth array 'depth'")
        bound = max_pixels * 8 + (1 << 16)  # the largest accepted array (float64) and its header
        if info.file_size > bound:
            raise DepthError(f"array {info.filename} of {info.file_size} bytes exceeds the {max_pixels}-pixel limit")
        with archive.open(info) as member:
            inflated = member.read(bound + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError) as exc:
        raise DepthError(f"not a valid .npz archive ({_plain(exc)})") from exc
    if len(inflated) > bound:
        raise DepthError(f"array {info.filename} inflates beyond the {max_pixels}-pixel limit")
    return _load_npy(inflated, max_pixels)


def _npz_intrinsics(data: bytes) -> tuple[float, float, float, float] | None:
    """fx, fy, cx, cy from an .npz's ``intrinsics`` (4 numbers) or ``K`` (3×3) array, or None."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
    key = next((key for key in NPZ_INTRINSICS if key in names), None)
    if key is None:
        return None
    if names[key].file_size > 1 << 12:
        raise DepthError(f"the .npz's {key} array is too large to be intrinsics")
    try:
        with archive.open(names[key]) as member:
            values = _load_array(member.read(1 << 12)).astype(np.float64)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
        raise DepthError(f"not a valid .npz archive ({_plain(exc)})") from exc
    if key == "K" and values.shape == (3, 3):
        numbers = (values[0, 0], values[1, 1], values[0, 2], values[1, 2])
    elif key == "intrinsics" and values.shape == (4,):
        numbers = tuple(values)
    else:
        raise DepthError(f"the .npz's {key} has shape {values.shape}; expected K 3x3 or intrinsics fx, fy, cx, cy")
    if not (np.isfinite(numbers).all() and min(numbers[:2]) > 0):
        raise DepthError(f"the .npz's {key} gives fx, fy, cx, cy = {numbers}: need finite values, fx and fy > 0")
    return tuple(float(n) for n in numbers)


def _load_array(data: bytes) -> np.ndarray:
    """A small numeric .npy array of any shape (no pickled objects)."""
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DepthError(f"not a valid .npy array ({exc})") from exc


def _load_pfm(data: bytes, max_pixels: int) -> np.ndarray:
    """A one-channel PFM: header ``Pf``, ``W H``, scale (negative: little-endian), rows bottom to top."""
    match = re.match(rb"Pf\s+(\d{1,9})\s+(\d{1,9})\s+([-+]?[0-9.eE+-]{1,32})\s", data[:128])
    if match is None:
        raise DepthError("the PFM header is not 'Pf', width, height and scale")
    width, height = int(match[1]), int(match[2])
    try:
        scale = float(match[3])
    except ValueError:
        raise DepthError(f"the PFM scale {match[3].decode()!r} is not a number") from None
    if scale == 0:
        raise DepthError("the PFM scale is 0, which names no byte order")
    limits.check_pixels(width, height, "depth map", max_pixels)
    return _floats(data, match.end(), width, height, "<f4" if scale < 0 else ">f4")[::-1].copy()


def _load_dpt(data: bytes, max_pixels: int) -> np.ndarray:
    """A Sintel .dpt: tag, int32 width and height, float32 depth (metres) row by row, little-endian."""
    if len(data) < 12:
        raise DepthError(f"a .dpt header needs 12 bytes, the file holds {len(data)}")
    width, height = struct.unpack_from("<ii", data, 4)
    limits.check_pixels(width, height, "depth map", max_pixels)
    return _floats(data, 12, width, height, "<f4")


def _floats(data: bytes, offset: int, width: int, height: int, dtype: str) -> np.ndarray:
    needed = width * height * 4
    if len(data) - offset < needed:
        raise DepthError(f"its {width}x{height} floats need {needed} bytes, the file holds {len(data) - offset}")
    return np.frombuffer(data, dtype, width * height, offset).reshape(height, width).astype(np.float32)


def _load_exr(data: bytes, max_pixels: int) -> np.ndarray:
    """One float channel of a single-part OpenEXR file (the only one, or Z, Y or R), its size checked first."""
    try:
        import OpenEXR
    except ImportError:
        raise DepthError("reading OpenEXR needs the exr extra: pip install 'gpu_depth[exr]'") from None
    try:
        header = OpenEXR.File(io.BytesIO(data), header_only=True).header()
        low, high = (np.asarray(corner, np.int64) for corner in header["dataWindow"])
        limits.check_pixels(int(high[0] - low[0] + 1), int(high[1] - low[1] + 1), "depth map", max_pixels)
        channels = OpenEXR.File(io.BytesIO(data), separate_channels=True).channels()
    except DepthError:
        raise
    except Exception as exc:  # the binding raises RuntimeError, ValueError, KeyError … for broken files
        raise DepthError(f"OpenEXR cannot read it ({_plain(exc)})") from exc
    names = list(channels)
    name = names[0] if len(names) == 1 else next((n for n in EXR_CHANNELS if n in channels), None)
    if name is None:
        raise DepthError(f"the OpenEXR channels {', '.join(names)} include none of {', '.join(EXR_CHANNELS)}")
    pixels = np.asarray(channels[name].pixels)
    if pixels.dtype.kind != "f":
        raise DepthError(f"channel {name} holds {pixels.dtype} samples, not floats")
    return pixels.astype(pixels.dtype.newbyteorder("="))


def _load_image(data: bytes, max_pixels: int, kind: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    formats = {"PNG": ["PNG"], "TIFF": ["TIFF"], "PGM": ["PPM"]}[kind]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=formats)
            limits.check_pixels(image.width, image.height, "depth map", max_pixels)
            limits.check_tiles(image, len(data))
            frames = _frames(image, kind)
            if frames > 1:
                raise DepthError(f"the {kind} holds {frames} pages or frames; a depth map is one")
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
        raise DepthError(f"cannot decode the depth map as {kind} ({_plain(exc)})") from exc
    if image.mode not in ("L", "I;16", "I;16B", "I;16L", "I", "F"):
        raise DepthError(f"depth map must be grayscale, got mode {image.mode}")
    array = np.asarray(image)
    if image.mode == "I":  # 16-bit PNGs open as 32-bit integers
        if array.min() < 0 or array.max() > 65535:
            raise DepthError("32-bit integer depth maps are not supported; use 16-bit")
        array = array.astype(np.uint16)
    return array.astype(array.dtype.newbyteorder("="))


def _frames(image, kind: str) -> int:
    """How many pages or frames the image holds; Pillow parses every TIFF IFD to count them."""
    try:
        return getattr(image, "n_frames", 1)
    except (TypeError, KeyError, ValueError, OSError, SyntaxError, EOFError, struct.error) as exc:
        raise DepthError(f"cannot read the pages of the {kind} ({_plain(exc)})") from exc


def _plain(exc: Exception) -> str:
    """An exception's text without Python object reprs (``<_io.BytesIO object at 0x…>``)."""
    return re.sub(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>", "", str(exc)) or type(exc).__name__


READERS = {
    "PNG": lambda data, limit: _load_image(data, limit, "PNG"),
    "TIFF": lambda data, limit: _load_image(data, limit, "TIFF"),
    "PGM": lambda data, limit: _load_image(data, limit, "PGM"),
    "NPY": _load_npy,
    "NPZ": _load_npz,
    "PFM": _load_pfm,
    "DPT": _load_dpt,
    "EXR": _load_exr,
}


def save_depth(depth: DepthData, path: Path) -> None:
    """Write ``depth`` as the format ``path``'s suffix names, atomically."""
    writers = {".npy": _npy, ".png": _png, ".tif": _tiff, ".tiff": _tiff}
    suffix = path.suffix.lower()
    if suffix not in writers:
        raise DepthError(f"{path}: choose a .npy, .png or .tif output")
    write_atomic(path, writers[suffix](depth))


def load_matte(path: str | os.PathLike) -> np.ndarray:
    """A matte file (any depth-map format, one channel) as 8-bit codes: uint8 as it is, uint16
    rounded to 8 bits, floats as 0..1 (clipped) × 255 rounded; NaN is background (0)."""
    values = load_depth_map(path)
    if values.dtype == np.uint8:
        return values
    if values.dtype == np.uint16:
        return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    scaled = np.rint(np.clip(np.nan_to_num(values.astype(np.float64), nan=0.0), 0.0, 1.0) * 255)
    return scaled.astype(np.uint8)


def save_matte(matte: Matte, path: Path) -> None:
    """Write a matte's 8-bit codes as a gray ``.png`` or a uint8 ``.npy``, atomically."""
    suffix = path.suffix.lower()
    stream = io.BytesIO()
    if suffix == ".npy":
        np.save(stream, matte.pixels)
    elif suffix == ".png":
        from PIL import Image

        Image.fromarray(matte.pixels, "L").save(stream, "PNG")
    else:
        raise DepthError(f"{path}: choose a .png or .npy output for a matte")
    write_atomic(path, stream.getvalue())


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
