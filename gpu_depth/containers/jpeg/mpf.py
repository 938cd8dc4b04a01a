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


#: One IFD field: tag, type, count and its value's bytes (big-endian).
Field = tuple[int, int, int, bytes]


def build_index(entries: list[Entry], attributes: list[Field] = ()) -> bytes:
    """A primary's APP2 payload: ``MPF\\0``, big-endian TIFF header, Index IFD (version, count, entries),
    then the MP Attribute IFD of ``attributes`` (a stereo MPO's, kept) when there are any."""
    count = len(entries)
    fields = [(MP_VERSION, 7, 4, VERSION), (NUMBER_OF_IMAGES, 4, 1, struct.pack(">I", count))]
    entry_offset = 8 + 2 + 3 * FIELD_SIZE + 4
    fields.append((MP_ENTRY, 7, count * ENTRY_SIZE, struct.pack(">I", entry_offset)))
    table = b"".join(
        struct.pack(">III", e.attribute, e.size, e.offset) + struct.pack(">HH", *e.dependents) for e in entries
    )
    head = _ifd(fields, next_ifd=entry_offset + len(table) if attributes else 0)
    return MPF_ID + head + table + (_attribute_ifd(attributes, entry_offset + len(table)) if attributes else b"")


def index_size(count: int, attributes: list[Field] = ()) -> int:
    """Bytes of :func:`build_index`'s payload for ``count`` images."""
    return len(build_index([Entry(0, 0, 0)] * count, attributes))


def parse_attributes(tiff: bytes, where: int) -> list[Field]:
    """The fields of the MP Attribute IFD after a primary's Index IFD (none when it has none), big-endian."""
    order, _, next_ifd = _read_ifd(tiff, where)
    if not next_ifd:
        return []
    _, fields, _ = _read_ifd(tiff, where, next_ifd)
    return [
        (tag, kind, len(value) // _TYPE_SIZES.get(kind, 1), _big_endian(kind, value, order))
        for tag, (kind, value) in fields.items()
    ]


def with_number_of_images(tiff: bytes, count: int) -> bytes:
    """The MPF payload (after ``MPF\\0``) with its NumberOfImages set to ``count``, its size kept;
    unchanged when it has no such LONG field."""
    order = _ORDERS.get(bytes(tiff[:4]))
    try:
        _, fields, _ = _read_ifd(tiff, 0)
    except DepthError:
        return tiff
    if fields.get(NUMBER_OF_IMAGES, (0, b""))[0] != 4:
        return tiff
    (first,) = struct.unpack_from(order + "I", tiff, 4)
    (n,) = struct.unpack_from(order + "H", tiff, first)
    for pos in range(first + 2, first + 2 + n * FIELD_SIZE, FIELD_SIZE):
        if struct.unpack_from(order + "H", tiff, pos)[0] == NUMBER_OF_IMAGES:
            return tiff[: pos + 8] + struct.pack(order + "I", count) + tiff[pos + 12 :]
    return tiff


def _big_endian(kind: int, value: bytes, order: str) -> bytes:
    size = {3: 2, 4: 4, 5: 4, 9: 4, 10: 4}.get(kind, 1)
    if order == ">" or size == 1:
        return value
    return b"".join(value[i : i + size][::-1] for i in range(0, len(value), size))


def _attribute_ifd(fields: list[Field], at: int) -> bytes:
    """An IFD of big-endian ``fields`` placed at TIFF offset ``at``, values over 4 bytes after it."""
    data_at = at + 2 + len(fields) * FIELD_SIZE + 4
    entries, data = [], b""
    for tag, kind, count, value in sorted(fields):
        if len(value) <= 4:
            entries.append(struct.pack(">HHI", tag, kind, count) + value.ljust(4, b"\0"))
        else:
            entries.append(struct.pack(">HHII", tag, kind, count, data_at + len(data)))
            data += value + b"\0" * (len(value) & 1)
    return struct.pack(">H", len(fields)) + b"".join(entries) + struct.pack(">I", 0) + data


def build_version(count: int) -> bytes:
    """A secondary image's APP2 payload: ``MPF\\0`` and an IFD with MPFVersion and NumberOfImages only."""
    return MPF_ID + _ifd([(MP_VERSION, 7, 4, VERSION), (NUMBER_OF_IMAGES, 4, 1, struct.pack(">I", count))])


def _count(order: str, fields: dict[int, tuple[int, bytes]], where: int) -> int:
    kind, value = fields.get(NUMBER_OF_IMAGES, (0, b""))
    if kind != 4 or len(value) != 4:
        raise DepthError(f"MPF at offset {where}: NumberOfImages (0xB001) is missing or not one LONG")
    return struct.unpack(order + "I", value)[0]


def _ifd(fields: list[tuple[int, int, int, bytes]], next_ifd: int = 0) -> bytes:
    head = b"MM\0*" + struct.pack(">IH", 8, len(fields))
    body = b"".join(struct.pack(">HHI", tag, kind, count) + value for tag, kind, count, value in fields)
    return head + body + struct.pack(">I", next_ifd)


def _read_ifd(tiff: bytes, where: int, first: int | None = None) -> tuple[str, dict[int, tuple[int, bytes]], int]:
    """Byte order, {tag: (type, value bytes)} and the next IFD offset of the IFD at ``first`` (by default
    the header's first), every offset checked."""
    order = _ORDERS.get(bytes(tiff[:4]))
    if order is None or len(tiff) < 8:
        raise DepthError(f"MPF at offset {where}: no TIFF header (got {bytes(tiff[:8])!r})")
    if first is None:
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
