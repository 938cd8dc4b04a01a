"""Size limits on what gpu_depth decodes from untrusted files, in one place.

Every reader checks an image's declared size against the pixel limit before decoding it (the depth
maps in HEIC, JPEG/MPF, GDepth and DNG files, and the depth-map files :mod:`gpu_depth.loaders`
reads), and every XMP packet against the XMP limit.  Both are looked up at each call: a program sets
``gpu_depth.limits.MAX_PIXELS`` / ``MAX_XMP_BYTES``; the environment variables
``GPU_DEPTH_MAX_PIXELS`` / ``GPU_DEPTH_MAX_XMP_BYTES`` set them for the command line.
"""

from __future__ import annotations

import os
import re

from .errors import DepthError

#: Largest image decoded, in pixels; None: ``GPU_DEPTH_MAX_PIXELS``, else 64 Mpix (256 MiB as float32).
MAX_PIXELS: int | None = None
DEFAULT_MAX_PIXELS = 1 << 26
#: Largest XMP packet parsed (main or Extended XMP), in bytes; None: ``GPU_DEPTH_MAX_XMP_BYTES``, else 4 MiB.
MAX_XMP_BYTES: int | None = None
DEFAULT_MAX_XMP_BYTES = 4 << 20
#: What reading one file may cost, by its size: (files below this many bytes, peak memory in bytes, CPU
#: seconds).  Every reader (read_depth, verify, inspect, attach_depth, the depth-map loader) keeps within
#: them whatever the file holds; bench/fuzz.py checks each case against them.
READ_BUDGETS = ((1 << 20, 512 << 20, 1.0), (16 << 20, 1 << 30, 3.0))
#: Samples a second the NumPy lossless-JPEG decoder (one Python step a code) is taken to decode, with
#: margin for a loaded machine: it takes on no more than its file's CPU budget allows.  A bigger map is
#: read only by the compiled decoder, where the package was built with one.
NUMPY_LJPEG_SAMPLES_PER_SECOND = 3_000_000
#: Most bytes of samples a compressed image may decode to per byte of its coded data, beyond EXPANSION_ALLOWANCE
#: (Deflate alone allows 1032:1): what a small file can make a reader decode stays small, under the pixel limit.
MAX_EXPANSION = 64
EXPANSION_ALLOWANCE = 16 << 20
#: Most digits a decimal integer read from a file or a flag may have (every such count or size fits in 64 bits).
MAX_DIGITS = 18
_INTEGER = re.compile(rf"[+-]?[0-9]{{1,{MAX_DIGITS}}}")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def max_pixels() -> int:
    """The pixel limit in force."""
    return _limit(MAX_PIXELS, "GPU_DEPTH_MAX_PIXELS", DEFAULT_MAX_PIXELS)


def max_xmp_bytes() -> int:
    """The XMP size limit in force."""
    return _limit(MAX_XMP_BYTES, "GPU_DEPTH_MAX_XMP_BYTES", DEFAULT_MAX_XMP_BYTES)


def check_pixels(width: int, height: int, what: str, limit: int | None = None) -> None:
    """Refuse an image of ``width`` x ``height`` above ``limit`` (default: :func:`max_pixels`) or of no pixels."""
    limit = max_pixels() if limit is None else limit
    if width <= 0 or height <= 0:
        raise DepthError(f"{what} has no pixels ({width}x{height})")
    if width * height > limit:
        raise DepthError(f"{what} of {width}x{height} exceeds the {limit}-pixel limit")


def check_tiles(image, size: int) -> None:
    """The strips/tiles a Pillow image will decode must start inside its ``size``-byte file and cover it.

    Pillow takes TIFF StripOffsets of any type as they are (a RATIONAL or ASCII offset raised TypeError
    on load) and leaves the part of an image no strip covers zero.  Plugins that decode by themselves
    (HEIF, WebP) list no tiles and are left to their decoder.
    """
    if not image.tile:
        return
    covered = 0
    for tile in image.tile:
        box, offset = tile[1], tile[2]
        if not isinstance(offset, int) or not 0 <= offset <= size:
            raise DepthError(f"image data offset {offset!r} is outside the {size}-byte file")
        covered += (box[2] - box[0]) * (box[3] - box[1]) if box else 0
    if covered < image.width * image.height:
        raise DepthError(f"the {image.width}x{image.height} image's strips cover only {covered} pixels")


def check_expansion(decoded: int, coded: int, what: str) -> None:
    """Refuse ``decoded`` bytes of samples from ``coded`` bytes of data beyond MAX_EXPANSION (and the allowance)."""
    if decoded > MAX_EXPANSION * coded + EXPANSION_ALLOWANCE:
        raise DepthError(f"{what} of {decoded} bytes from {coded} bytes of data expands more than {MAX_EXPANSION}-fold")


def read_budget(size: int) -> tuple[int, float] | None:
    """(peak memory bytes, CPU seconds) reading a file of ``size`` bytes may cost; None above the budgets."""
    return next(((memory, cpu) for below, memory, cpu in READ_BUDGETS if size < below), None)


def parse_int(text: str, what: str) -> int:
    """A plain decimal integer of at most MAX_DIGITS digits, as XMP and our flags write them; no ``_``, no
    other digits than 0-9 (Python's ``int()`` takes "6_5535" and "١٢")."""
    text = text.strip()
    if not _INTEGER.fullmatch(text):
        raise DepthError(f"{what} is not an integer of at most {MAX_DIGITS} digits: {text[:40]!r}")
    return int(text)


def parse_float(text: str, what: str) -> float:
    """A finite decimal number such as ``1.5e-3`` (no ``_``, ``inf`` or ``nan``, which ``float()`` takes)."""
    text = text.strip()
    value = float(text) if len(text) <= 64 and _DECIMAL.fullmatch(text) else float("nan")
    if value != value or abs(value) == float("inf"):
        raise DepthError(f"{what} is not a finite decimal number: {text[:40]!r}")
    return value


def _limit(value: int | None, variable: str, default: int) -> int:
    if value is None:
        text = os.environ.get(variable)
        if text is None:
            return default
        try:
            value = int(text, 0)
        except ValueError:
            raise DepthError(f"{variable}={text!r} is not an integer") from None
    if value <= 0:
        raise DepthError(f"{variable} must be a positive integer, got {value}")
    return value
