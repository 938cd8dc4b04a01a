"""Container plugins, one module per format with the same small surface (as Pillow's plugins):

- ``NAME`` (``"heic"``, ``"jpeg"``, ``"dng"``) and ``EXTENSIONS`` (lower-case suffixes);
- ``accept(prefix: bytes) -> bool``: a cheap sniff of the first 64 bytes;
- ``read_depth(data: bytes) -> DepthData | None``: the file's depth/disparity map in its native format;
- ``attach_depth(photo: bytes, depth: DepthData, *, replace: bool = False, **options) -> bytes``:
  the photo (already in this container) with the depth attached, its own coded bytes kept;
- ``encode_photo(image: PIL.Image.Image, *, quality: int, encoder_preset: str) -> bytes``: a photo of
  another container re-encoded into this one (Exif, ICC profile and orientation kept), ready for
  ``attach_depth`` (DNG refuses: a raw cannot be made from a picture);
- ``orientation(data: bytes) -> int``: the Exif-style orientation (1-8) the photo is displayed with,
  so depth maps can be stored in the photo's stored orientation as iPhones do;
- ``displayed_size(data: bytes) -> (width, height)``: the photo's size as shown (the raw image's for DNG).

Everything works on bytes in memory; the public functions in :mod:`gpu_depth.api` do the file I/O.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import DepthError

#: Registered container modules, in sniffing order.
PLUGINS = ("heif", "jpeg", "dng")

SNIFF_BYTES = 64


def plugin(name: str) -> ModuleType:
    """The container module called ``name`` (``heic``/``heif``, ``jpeg``/``jpg``, ``dng``)."""
    for module in _modules():
        if name.lower() == module.NAME or "." + name.lower() in module.EXTENSIONS:
            return module
    raise DepthError(f"unknown container {name!r}; expected heic, jpeg or dng")


def sniff(prefix: bytes) -> ModuleType | None:
    """The container module whose ``accept`` recognises these first bytes, or None."""
    return next((m for m in _modules() if m.accept(prefix[:SNIFF_BYTES])), None)


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in PLUGINS]
