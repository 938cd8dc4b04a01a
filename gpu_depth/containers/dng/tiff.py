"""A strict reader and an appending writer of classic TIFF image file directories (IFDs).

Byte order lives in one :class:`TiffFormat` object (as tifffile's ``TiffFormat``), so little- and
big-endian files share one code path.  Nothing read from the file is trusted: every entry's type is
checked against :data:`TYPES`, every value's count and offset against the file size before the
bytes are touched, IFD loops are detected and the number and nesting of IFDs are bounded.  Errors
are :class:`DepthError` naming the IFD, the tag and the file offset.

Writing never moves existing bytes: :func:`pack_ifd` lays out a new IFD (entries sorted by tag,
values word aligned) for a given file offset, and entries read from the file keep their original
value field, so their out-of-line values are reused where they already are.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ...errors import DepthError

#: Header magic numbers of classic TIFF (42) and BigTIFF (43), by byte order.
CLASSIC_MAGIC = {b"II*\0": "<", b"MM\0*": ">"}
BIGTIFF_MAGIC = (b"II+\0", b"MM\0+")
HEADER_SIZE = 8
ENTRY_SIZE = 12
VALUE_FIELD_SIZE = 4
#: Most IFDs read from one file, and deepest SubIFD nesting (IFD0 is depth 0).
MAX_IFDS = 256
MAX_DEPTH = 4
#: Most entries read from all IFDs of a file together (a DNG's IFDs hold a few hundred), and most
#: values decoded from one entry (a strip or tile offset per value: a million is a 64-gigapixel raw).
MAX_ENTRIES = 1 << 16
MAX_VALUES = 1 << 20

SUBIFDS = 330

TAG_NAMES = {
    254: "NewSubFileType",
    256: "ImageWidth",
    257: "ImageLength",
    258: "BitsPerSample",
    259: "Compression",
    262: "PhotometricInterpretation",
    273: "StripOffsets",
    277: "SamplesPerPixel",
    278: "RowsPerStrip",
    279: "StripByteCounts",
    284: "PlanarConfiguration",
    322: "TileWidth",
    323: "TileLength",
    324: "TileOffsets",
    325: "TileByteCounts",
    330: "SubIFDs",
    339: "SampleFormat",
    700: "XMP",
    50706: "DNGVersion",
    50707: "DNGBackwardVersion",
    51177: "DepthFormat",
    51178: "DepthNear",
    51179: "DepthFar",
    51180: "DepthUnits",
    51181: "DepthMeasureType",
    52526: "SemanticName",
    52528: "SemanticInstanceID",
    52536: "MaskSubArea",
}


@dataclass(frozen=True)
class TiffType:
    """A field type: its name, the size of one value and the struct code of one value."""

    name: str
    size: int
    code: str


#: The classic TIFF 6 field types (plus IFD, 13, from the TIFF technical notes).
TYPES = {
    1: TiffType("BYTE", 1, "B"),
    2: TiffType("ASCII", 1, "B"),
    3: TiffType("SHORT", 2, "H"),
    4: TiffType("LONG", 4, "I"),
    5: TiffType("RATIONAL", 8, "2I"),
    6: TiffType("SBYTE", 1, "b"),
    7: TiffType("UNDEFINED", 1, "B"),
    8: TiffType("SSHORT", 2, "h"),
    9: TiffType("SLONG", 4, "i"),
    10: TiffType("SRATIONAL", 8, "2i"),
    11: TiffType("FLOAT", 4, "f"),
    12: TiffType("DOUBLE", 8, "d"),
    13: TiffType("IFD", 4, "I"),
}
BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED = 1, 2, 3, 4, 5, 7
IFD_TYPE = 13
INTEGER_TYPES = (BYTE, SHORT, LONG, IFD_TYPE)


class TiffFormat:
    """Byte order of a classic TIFF file, with the struct helpers that depend on it."""

    __slots__ = ("byteorder", "magic")

    def __init__(self, byteorder: str) -> None:
        self.byteorder = byteorder
        self.magic = b"II*\0" if byteorder == "<" else b"MM\0*"

    def unpack(self, code: str, data: bytes | memoryview, offset: int = 0) -> tuple:
        return struct.unpack_from(self.byteorder + code, data, offset)

    def pack(self, code: str, *values) -> bytes:
        return struct.pack(self.byteorder + code, *values)

    def header(self, first_ifd: int) -> bytes:
        return self.magic + self.pack("I", first_ifd)


@dataclass(frozen=True)
class Entry:
    """One IFD entry.  ``value`` holds the value bytes in the file's byte order; ``field`` is the
    4-byte value/offset field as read from the file (None for a new entry, placed by :func:`pack_ifd`)."""

    tag: int
    type: int
    count: int
    value: bytes | memoryview
    field: bytes | None = None

    @property
    def name(self) -> str:
        return tag_name(self.tag)


@dataclass(frozen=True)
class Ifd:
    """An image file directory: where it is, what it is called, its entries by tag, its next IFD."""

    name: str
    offset: int
    entries: dict[int, Entry]
    next_offset: int

    def __contains__(self, tag: int) -> bool:
        return tag in self.entries


def tag_name(tag: int) -> str:
    return f"{tag} ({TAG_NAMES[tag]})" if tag in TAG_NAMES else str(tag)


class TiffFile:
    """A classic TIFF file in memory, read strictly."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.view = memoryview(data)  # entry values and strips are sliced without copying
        if data[:4] in BIGTIFF_MAGIC:
            raise DepthError("BigTIFF (64-bit offsets) is not supported; only classic TIFF/DNG files")
        if len(data) < HEADER_SIZE or data[:4] not in CLASSIC_MAGIC:
            raise DepthError("not a TIFF file: no 'II*\\0' or 'MM\\0*' header")
        self.format = TiffFormat(CLASSIC_MAGIC[data[:4]])
        (self.first_offset,) = self.format.unpack("I", data, 4)
        self.entries_read = 0

    @property
    def size(self) -> int:
        return len(self.data)

    def ifd(self, offset: int, name: str) -> Ifd:
        """The IFD at ``offset``, every entry's type, count and value offset checked."""
        if offset < HEADER_SIZE or offset + 2 > self.size:
            raise DepthError(f"{name} offset {offset} is outside the {self.size}-byte file")
        (count,) = self.format.unpack("H", self.data, offset)
        end = offset + 2 + count * ENTRY_SIZE + 4
        if count == 0 or end > self.size:
            raise DepthError(f"{name} @{offset}: {count} entries do not fit in the {self.size}-byte file")
        self.entries_read += count
        if self.entries_read > MAX_ENTRIES:
            raise DepthError(f"{name} @{offset}: its {count} entries take the file past {MAX_ENTRIES} entries")
        entries: dict[int, Entry] = {}
        for position in range(offset + 2, end - 4, ENTRY_SIZE):
            entry = self._entry(position, name)
            if entry.tag in entries:
                raise DepthError(f"{name} @{position}: tag {entry.name} appears twice")
            entries[entry.tag] = entry
        (next_offset,) = self.format.unpack("I", self.data, end - 4)
        return Ifd(name, offset, entries, next_offset)

    def _entry(self, position: int, name: str) -> Entry:
        tag, type_, count = self.format.unpack("HHI", self.data, position)
        field = self.data[position + 8 : position + ENTRY_SIZE]
        where = f"{name} tag {tag_name(tag)} @{position}"
        if type_ not in TYPES:
            raise DepthError(f"{where}: unknown field type {type_}")
        size = count * TYPES[type_].size
        if size <= VALUE_FIELD_SIZE:
            return Entry(tag, type_, count, field[:size], field)
        (start,) = self.format.unpack("I", field)
        if start + size > self.size:
            raise DepthError(
                f"{where}: {count} {TYPES[type_].name} values at offset {start} run past the end of the "
                f"{self.size}-byte file"
            )
        return Entry(tag, type_, count, self.view[start : start + size], field)

    def values(self, ifd: Ifd, tag: int, most: int = MAX_VALUES) -> tuple:
        """The decoded values of an entry (rationals as (numerator, denominator) pairs), at most ``most``."""
        entry = ifd.entries[tag]
        if entry.count > most:
            raise DepthError(f"{ifd.name} tag {entry.name}: {entry.count} values, more than the {most} allowed")
        return decode(self.format, entry)

    def integers(self, ifd: Ifd, tag: int, most: int = MAX_VALUES) -> tuple[int, ...]:
        """The values of an entry that must hold unsigned integers (BYTE, SHORT, LONG or IFD), at most ``most``."""
        entry = ifd.entries[tag]
        if entry.type not in INTEGER_TYPES:
            raise DepthError(f"{ifd.name} tag {entry.name}: type {TYPES[entry.type].name} is not an integer type")
        return self.values(ifd, tag, most)

    def walk(self) -> list[Ifd]:
        """Every IFD once: the IFD0 chain and the SubIFDs trees (and their chains) below it.

        Names: ``IFD0``, ``IFD1`` … along the main chain, ``IFD0.SubIFD1`` for IFD0's second SubIFD and
        ``IFD0.SubIFD1+1`` for the IFD that one chains to.  An IFD reached twice by different routes
        (tifffile chains sibling SubIFDs) is listed once; one that leads back to itself is a loop.
        """
        return list(self._chain(self.first_offset, "IFD", frozenset(), set()))

    def _chain(self, offset: int, base: str, above: frozenset[int], seen: set[int]) -> Iterator[Ifd]:
        path, index = set(above), 0
        while offset:
            name = base + (f"+{index}" if index else "") if above else f"{base}{index}"
            if offset in path:
                raise DepthError(f"{name} at offset {offset} leads back to itself: the IFDs form a loop")
            if offset in seen:
                return
            if len(seen) >= MAX_IFDS:
                raise DepthError(f"more than {MAX_IFDS} IFDs; refusing {name}")
            seen.add(offset)
            path.add(offset)
            ifd = self.ifd(offset, name)
            yield ifd
            if SUBIFDS in ifd:
                if len(above) >= MAX_DEPTH:
                    raise DepthError(f"{name}: SubIFDs nested deeper than {MAX_DEPTH} levels")
                for number, child in enumerate(self.integers(ifd, SUBIFDS, MAX_IFDS)):
                    yield from self._chain(child, f"{name}.SubIFD{number}", frozenset(path), seen)
            offset, index = ifd.next_offset, index + 1


def decode(fmt: TiffFormat, entry: Entry) -> tuple:
    """The numbers an entry holds (rationals as (numerator, denominator) pairs)."""
    kind = TYPES[entry.type]
    parts = len(kind.code)
    values = fmt.unpack(f"{entry.count * parts}{kind.code[-1]}", entry.value)
    return tuple(zip(values[::2], values[1::2], strict=True)) if parts == 2 else values


def make_entry(fmt: TiffFormat, tag: int, type_: int, values: Iterable) -> Entry:
    """A new entry holding ``values`` (rationals as (numerator, denominator) pairs)."""
    values = list(values)
    kind = TYPES[type_]
    flat = [part for value in values for part in value] if len(kind.code) == 2 else values
    try:
        value = fmt.pack(f"{len(flat)}{kind.code[-1]}", *flat)
    except struct.error as exc:
        raise DepthError(f"tag {tag_name(tag)}: cannot store {values!r} as {kind.name}: {exc}") from exc
    return Entry(tag, type_, len(values), value)


def pack_ifd(fmt: TiffFormat, entries: Iterable[Entry], at: int, next_offset: int = 0) -> bytes:
    """The bytes of an IFD placed at file offset ``at`` (even), followed by its new out-of-line values.

    Entries read from the file keep their value field verbatim; new ones are stored inline when
    they fit in 4 bytes, otherwise after the IFD at word-aligned offsets.
    """
    if at % 2:
        raise DepthError(f"an IFD must start at an even offset, not {at}")
    ordered = sorted(entries, key=lambda entry: entry.tag)
    table = [fmt.pack("H", len(ordered))]
    values: list[bytes] = []
    cursor = at + 2 + len(ordered) * ENTRY_SIZE + 4
    for entry in ordered:
        field = entry.field
        if field is None and len(entry.value) <= VALUE_FIELD_SIZE:
            field = entry.value.ljust(VALUE_FIELD_SIZE, b"\0")
        elif field is None:
            field = fmt.pack("I", cursor)
            padded = entry.value + b"\0" * (len(entry.value) % 2)
            values.append(padded)
            cursor += len(padded)
        table.append(fmt.pack("HHI", entry.tag, entry.type, entry.count) + field)
    table.append(fmt.pack("I", next_offset))
    return b"".join(table + values)
