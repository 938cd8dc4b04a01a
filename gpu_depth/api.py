"""File-level API: read depth from a photo, attach depth to a photo (the ImageIO analogues)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from . import containers, limits
from .core.depthdata import DepthData
from .errors import DepthError
from .fileio import PathLike, read_file, write_atomic


def read_depth(path: PathLike, kind: str | None = None) -> DepthData | None:
    """The depth/disparity map a HEIC, JPEG or DNG file carries, or None when it has none.

    ``kind``: None returns the native format (as stored in the file's XMP); ``"disparity"`` or
    ``"depth"`` converts to that quantity at the native precision.
    """
    if kind not in (None, "disparity", "depth"):
        raise DepthError(f"kind must be 'disparity', 'depth' or None, got {kind!r}")
    data = read_file(path)
    module = _container_of(data, path)
    try:
        depth = module.read_depth(data)
    except DepthError as exc:
        raise DepthError(f"{path}: {exc}") from exc
    if depth is None or kind is None or depth.pixel_format.quantity == kind:
        return depth
    return depth.converting(depth.pixel_format.with_quantity(kind == "disparity"))


def attach_depth(
    photo: PathLike,
    depth: DepthData,
    out: PathLike,
    *,
    container: str | None = None,
    replace: bool = False,
    quality: int = 90,
    encoder_preset: str = "medium",
    **attach_options: Any,
) -> Path:
    """Write ``out``: ``photo`` with ``depth`` attached, written atomically.

    ``container``: ``heic``, ``jpeg`` or ``dng``; by default the one ``out``'s suffix names, else the
    photo's own.  A photo already in that container keeps its coded bytes; another is re-encoded
    with ``quality`` (and, for HEIC, the x265 ``encoder_preset``).  ``replace`` allows replacing an
    existing depth map.
    """
    if not isinstance(depth, DepthData):
        raise DepthError(f"depth must be DepthData, got {type(depth).__name__}")
    data = read_file(photo)
    target = containers.plugin(container) if container else _by_suffix(out) or containers.sniff(data)
    if target is None:
        raise DepthError(f"{photo}: unknown photo format; name the output container")
    try:
        data = in_container(data, photo, target, quality, encoder_preset)
        result = target.attach_depth(data, depth, replace=replace, **attach_options)
    except DepthError as exc:
        raise DepthError(f"{photo}: {exc}") from exc
    write_atomic(out, result, protect=(photo,))
    return Path(out)


def in_container(
    data: bytes,
    path: PathLike,
    target: containers.Plugin,
    quality: int,
    encoder_preset: str,
    encoder_threads: int | None = None,
) -> bytes:
    """The photo's bytes in the ``target`` container: as they are, or re-encoded from another format."""
    if containers.sniff(data) is target:
        return data
    image = decode_photo(path, data)
    return target.encode_photo(image, quality=quality, encoder_preset=encoder_preset, encoder_threads=encoder_threads)


def _container_of(data: bytes, path: PathLike):
    module = containers.sniff(data)
    if module is None:
        raise DepthError(f"{path}: not a HEIC, JPEG or DNG file")
    return module


def _by_suffix(path: PathLike):
    suffix = Path(path).suffix.lower()
    try:
        return containers.plugin(suffix[1:]) if suffix else None
    except DepthError:
        return None


def decode_photo(path: PathLike, data: bytes | None = None):
    """Open the photo at ``path`` (whose bytes are ``data`` when already read) of any format Pillow (with
    pillow-heif) reads, for re-encoding.

    Pillow reads from the bytes in memory: its plugins read what a length field says (a PNG IDAT of
    4 GiB), which a file object allocates before reading and a BytesIO bounds by the data.
    """
    from PIL import Image, UnidentifiedImageError
    from pillow_heif import register_heif_opener

    register_heif_opener()
    data = read_file(path) if data is None else data
    try:
        image = Image.open(io.BytesIO(data))
        limits.check_tiles(image, len(data))
        image.load()
    except (
        OSError,
        UnidentifiedImageError,
        ValueError,
        SyntaxError,  # Pillow's PNG plugin: "broken PNG file"
        EOFError,  # pillow-heif: "Decoder plugin generated an error: Unexpected end of file"
        RuntimeError,  # pillow-heif: libheif's security limits
        Image.DecompressionBombError,
    ) as exc:
        raise DepthError(f"{path}: cannot decode the photo: {exc}") from exc
    return image
