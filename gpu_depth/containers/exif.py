"""A photo's Exif: mark it a Portrait (``CustomRendered`` 8, as iPhones do) without moving a byte of it.

Exif is a TIFF (header, IFD0, the Exif IFD that IFD0's tag 34665 points to); :mod:`.dng.tiff` reads it
strictly and lays out new IFDs.  ``CustomRendered`` is rewritten in place when the Exif IFD holds it as
one SHORT; otherwise a new Exif IFD (its old entries and this one) is appended and IFD0's pointer is
turned to it, so values stored by offset stay where they are.  A photo without an Exif IFD is refused:
a new one would lack the tags Exif requires of it (ExifVersion, ComponentsConfiguration …), which only
the camera knows.
"""

from __future__ import annotations

from ..errors import DepthError
from .dng.tiff import Ifd, TiffFile, make_entry, pack_ifd

EXIF_IFD = 34665
CUSTOM_RENDERED = 41985
#: CustomRendered values iPhones write: 8 Portrait, 7 Portrait HDR (Exif 2.32 leaves 2-8 to makers).
PORTRAIT = 8
#: What exiftool calls each CustomRendered value.
RENDERINGS = {
    0: "Normal",
    1: "Custom",
    2: "HDR",
    3: "HDR",
    4: "Original",
    6: "Panorama",
    7: "Portrait HDR",
    8: "Portrait",
}
SHORT = 3
ENTRY_SIZE, VALUE_AT = 12, 8


def custom_rendered(tiff: bytes) -> int | None:
    """The Exif IFD's CustomRendered, or None when the Exif does not carry it."""
    file = TiffFile(bytes(tiff))
    exif = _exif_ifd(file, file.ifd(file.first_offset, "Exif IFD0"))
    if exif is None or CUSTOM_RENDERED not in exif:
        return None
    return file.integers(exif, CUSTOM_RENDERED, 1)[0]


def with_custom_rendered(tiff: bytes, value: int = PORTRAIT) -> bytes:
    """``tiff`` (an Exif TIFF with an Exif IFD) with the Exif IFD's CustomRendered set to ``value``."""
    if not tiff:
        raise DepthError("the photo has no Exif")
    file = TiffFile(bytes(tiff))
    fmt, out = file.format, bytearray(tiff)
    ifd0 = file.ifd(file.first_offset, "Exif IFD0")
    exif = _exif_ifd(file, ifd0)
    if exif is None:
        raise DepthError("the photo's Exif has no Exif IFD (tag 34665)")
    old = exif.entries.get(CUSTOM_RENDERED)
    if old is not None and old.type == SHORT and old.count == 1:
        at = _value_field(exif, CUSTOM_RENDERED)
        out[at : at + 2] = fmt.pack("H", value)
        return bytes(out)
    entries = [e for tag, e in exif.entries.items() if tag != CUSTOM_RENDERED]
    entries.append(make_entry(fmt, CUSTOM_RENDERED, SHORT, [value]))
    out += b"\0" * (len(out) % 2)
    exif_at = len(out)
    out += pack_ifd(fmt, entries, exif_at, exif.next_offset)
    at = _value_field(ifd0, EXIF_IFD)
    out[at : at + 4] = fmt.pack("I", exif_at)
    return bytes(out)


def _exif_ifd(file: TiffFile, ifd0: Ifd) -> Ifd | None:
    if EXIF_IFD not in ifd0:
        return None
    return file.ifd(file.integers(ifd0, EXIF_IFD, 1)[0], "Exif IFD")


def _value_field(ifd: Ifd, tag: int) -> int:
    """The file offset of an entry's 4-byte value field (entries lie in file order)."""
    return ifd.offset + 2 + list(ifd.entries).index(tag) * ENTRY_SIZE + VALUE_AT
