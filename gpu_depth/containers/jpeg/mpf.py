"""Multi-Picture Format (CIPA DC-007) index: the TIFF-structured payload of a JPEG's APP2 ``MPF`` segment.

Offsets inside an MP index and the MP entries' image offsets are relative to the TIFF header, the
first byte after ``MPF\\0``.  We write big-endian (``MM``) as Apple does, and read either order.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ...errors import DepthError

#: Identifier that opens an MPF APP2 payload.
MPF_ID = b"MPF\0"
#: Index IFD tags.
MP_VERSION, NUMBER_OF_IMAGES, MP_ENTRY = 0xB000, 0xB001, 0xB002
VERSION = b"0100"
#: Bytes of one MP entry: attribute, size, offset (u32 each), two dependent entry numbers (u16 each).
ENTRY_SIZE = 16
#: Bytes of one IFD field: tag, type (u16), count, value or offset (u32).
FIELD_SIZE = 12
#: MP type of a baseline primary image (Apple writes it without flags) and of Apple's depth image.
PRIMARY_TYPE = 0x030000
UNDEFINED_TYPE = 0x000000
#: MP entry attribute bits 24-26: image data format (0 = JPEG).
FORMAT_BITS = 7 << 24
#: Most images an index may list (the entries of bigger counts could not fit one APP2 segment anyway).
MAX_IMAGES = 4000

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}
_ORDERS = {b"MM\0*": ">", b"II*\0": "<"}


@dataclass(frozen=True)
class Entry:
    """One MP entry; ``offset`` is relative to the TIFF header (0 for the primary image)."""

    attribute: int
    size: int
    offset: int
    dependents: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Index:
    """What a primary's MP index lists; ``extra_ifd`` tells whether an MP Attribute IFD follows it."""

    entries: tuple[Entry, ...]
    extra_ifd: bool


def tiff_start(segment_offset: int) -> int:
    """File offset of the TIFF header in the APP2 MPF segment at ``segment_offset``: index offsets count from it."""
    return segment_offset + 4 + len(MPF_ID)


def number_of_images(tiff: bytes, where: int) -> int:
    """NumberOfImages of an MPF payload (after ``MPF\\0``) whose TIFF header is at file offset ``where``."""
    order, fields, _ = _read_ifd(tiff, where)
    return _count(order, fields, where)


def parse_index(tiff: bytes, where: int) -> Index:
    """The MP entries of an MPF payload (after ``MPF\\0``) whose TIFF header is at file offset ``where``."""
    order, fields, next_ifd = _read_ifd(tiff, where)
    count = _count(order, fields, where)
    if not 1 <= count <= MAX_IMAGES:
        raise DepthError(f"MPF at offset {where}: NumberOfImages {count} is outside 1..{MAX_IMAGES}")
    table = fields.get(MP_ENTRY, (0, b""))[1]
    if len(table) != count * ENTRY_SIZE:
        raise DepthError(
            f"MPF at offset {where}: MPEntry holds {len(table)} bytes; "
            f"NumberOfImages {count} needs {count * ENTRY_SIZE}"
        )
    entries = tuple(
        Entry(attr, size, offset, (dep1, dep2))
        for attr, size, offset, dep1, dep2 in struct.iter_unpack(order + "IIIHH", table)
    )
    return Index(entries, next_ifd != 0)


def build_index(entries: list[Entry]) -> bytes:
    """A primary's APP2 payload: ``MPF\\0``, big-endian TIFF header, Index IFD (version, count, entries)."""
    count = len(entries)
    fields = [(MP_VERSION, 7, 4, VERSION), (NUMBER_OF_IMAGES, 4, 1, struct.pack(">I", count))]
    entry_offset = 8 + 2 + 3 * FIELD_SIZE + 4
    fields.append((MP_ENTRY, 7, count * ENTRY_SIZE, struct.pack(">I", entry_offset)))
    table = b"".join(
        struct.pack(">III", e.attribute, e.size, e.offset) + struct.pack(">HH", *e.dependents) for e in entries
    )
    return MPF_ID + _ifd(fields) + table


def build_version(count: int) -> bytes:
    """A secondary image's APP2 payload: ``MPF\\0`` and an IFD with MPFVersion and NumberOfImages only."""
    return MPF_ID + _ifd([(MP_VERSION, 7, 4, VERSION), (NUMBER_OF_IMAGES, 4, 1, struct.pack(">I", count))])


def index_size(count: int) -> int:
    """Bytes of :func:`build_index`'s payload for ``count`` images."""
    return len(MPF_ID) + 8 + 2 + 3 * FIELD_SIZE + 4 + count * ENTRY_SIZE


def _count(order: str, fields: dict[int, tuple[int, bytes]], where: int) -> int:
    kind, value = fields.get(NUMBER_OF_IMAGES, (0, b""))
    if kind != 4 or len(value) != 4:
        raise DepthError(f"MPF at offset {where}: NumberOfImages (0xB001) is missing or not one LONG")
    return struct.unpack(order + "I", value)[0]


def _ifd(fields: list[tuple[int, int, int, bytes]]) -> bytes:
    head = b"MM\0*" + struct.pack(">IH", 8, len(fields))
    body = b"".join(struct.pack(">HHI", tag, kind, count) + value for tag, kind, count, value in fields)
    return head + body + struct.pack(">I", 0)


def _read_ifd(tiff: bytes, where: int) -> tuple[str, dict[int, tuple[int, bytes]], int]:
    """Byte order, {tag: (type, value bytes)} and the next IFD offset, every offset checked."""
    order = _ORDERS.get(bytes(tiff[:4]))
    if order is None or len(tiff) < 8:
        raise DepthError(f"MPF at offset {where}: no TIFF header (got {bytes(tiff[:8])!r})")
    (first,) = struct.unpack_from(order + "I", tiff, 4)
    if first < 8 or first + 2 > len(tiff):
        raise DepthError(f"MPF at offset {where}: Index IFD offset {first} is outside the {len(tiff)}-byte segment")
    (count,) = struct.unpack_from(order + "H", tiff, first)
    end = first + 2 + count * FIELD_SIZE
    if end + 4 > len(tiff):
        raise DepthError(f"MPF at offset {where}: Index IFD of {count} fields at {first} runs past the segment end")
    fields = {}
    for pos in range(first + 2, end, FIELD_SIZE):
        tag, kind, n, value = struct.unpack_from(order + "HHII", tiff, pos)
        length = n * _TYPE_SIZES.get(kind, 1)
        start = pos + 8 if length <= 4 else value
        if start + length > len(tiff):
            raise DepthError(
                f"MPF at offset {where}: field 0x{tag:04X} at offset {where + pos} points {length} bytes at {start}, "
                f"past the {len(tiff)}-byte segment"
            )
        fields[tag] = (kind, bytes(tiff[start : start + length]))
    (next_ifd,) = struct.unpack_from(order + "I", tiff, end)
    return order, fields, next_ifd
