"""Container plugins: one package per format (``heic``, ``jpeg``, ``dng``), each holding its byte-level
parser and writer, its ``plugin`` module (the surface below, as Pillow's plugins) and its ``rules``
module (what ``gpu-depth verify`` checks, read through the same parser).

Everything works on bytes in memory; :mod:`gpu_depth.api` does the file I/O.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import DepthError

if TYPE_CHECKING:
    from PIL import Image

    from ..core.depthdata import DepthData
    from ..core.quantize import Storage, StoredDepth
    from .rules import Findings

#: Registered container packages, in sniffing order.
PLUGINS = ("heic", "jpeg", "dng")

SNIFF_BYTES = 64


class Plugin(Protocol):
    """What every ``containers/<format>/plugin.py`` module provides."""

    #: ``"heic"``, ``"jpeg"`` or ``"dng"``, and the lower-case suffixes of its files.
    NAME: str
    EXTENSIONS: tuple[str, ...]
    #: Keyword arguments of :func:`attach_depth` beyond ``replace`` that a caller may pass.
    ATTACH_OPTIONS: frozenset[str]

    def accept(self, prefix: bytes) -> bool:
        """A cheap sniff of the first :data:`SNIFF_BYTES` bytes."""

    def parse(self, data: bytes) -> Any:
        """The photo's parsed structure, which the functions below take as ``parsed`` (else they parse ``data``)."""

    def read_depth(self, data: bytes) -> DepthData | None:
        """The file's depth/disparity map in its native format, or None."""

    def storage(self, **options: Any) -> Storage:
        """What :func:`attach_depth` stores of a map with these ``ATTACH_OPTIONS`` (others are ignored): one
        statement for its own attach and for the pipeline's conversion stage, which stores the maps ahead."""

    def attach_depth(
        self,
        photo: bytes,
        depth: DepthData | StoredDepth,
        *,
        replace: bool = False,
        parsed: Any = None,
        **options: Any,
    ) -> bytes:
        """The photo (already in this container) with ``depth`` attached, its own coded bytes kept: a float map,
        quantised as :func:`storage` says, or a map stored so ahead."""

    def encode_photo(self, image: Image.Image, *, quality: int, encoder_preset: str) -> bytes:
        """A decoded photo re-encoded into this container (Exif, ICC profile and orientation kept)."""

    def orientation(self, data: bytes, parsed: Any = None) -> int:
        """The Exif-style orientation (1-8) the photo is displayed with."""

    def displayed_size(self, data: bytes, parsed: Any = None) -> tuple[int, int]:
        """The photo's (width, height) as shown."""


def plugin(name: str) -> Plugin:
    """The container plugin called ``name`` (``heic``/``heif``, ``jpeg``/``jpg``, ``dng``)."""
    for module in _modules():
        if name.lower() == module.NAME or "." + name.lower() in module.EXTENSIONS:
            return module
    raise DepthError(f"unknown container {name!r}; expected heic, jpeg or dng")


def sniff(prefix: bytes) -> Plugin | None:
    """The container plugin whose ``accept`` recognises these first bytes, or None."""
    return next((m for m in _modules() if m.accept(prefix[:SNIFF_BYTES])), None)


def check(module: Plugin, data: bytes, findings: Findings) -> None:
    """Run the verify rules of ``module``'s format on ``data``."""
    importlib.import_module(f"{__name__}.{module.NAME}.rules").check(data, findings)


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}.plugin") for name in PLUGINS]
