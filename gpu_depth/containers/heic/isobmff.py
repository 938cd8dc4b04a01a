"""A small strict ISOBMFF/HEIF box reader and writer: ``ftyp`` and the ``meta`` item tables.

Every size, count and offset is checked against the bytes that hold it before use, nesting is
bounded, and every error is a :class:`DepthError` naming the box and its file offset.  Boxes this
module does not model are kept verbatim, as are item-info entries and item properties, so a
parsed :class:`Meta` serialises back to the same tables with only the changes made to it.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import accumulate

from ...errors import DepthError

#: Deepest box nesting followed (file → meta → iprp → ipco → property is 4).
MAX_DEPTH = 8
#: Most entries of one kind a file may list: boxes in one parent, and the items, extents, property
#: associations and references of the item tables (an iPhone HEIC has about 50 items).  Entries can
#: take no bytes at all (iloc extents with 0-byte fields), so box sizes alone do not bound them.
MAX_ENTRIES = 1 << 16
#: Box header sizes: 32-bit size + type, and with the 64-bit ``largesize``.
HEADER = 8
LARGE_HEADER = 16
#: The largest value each 16/32-bit field holds; beyond them tables switch to their wide versions.
U16_MAX = 0xFFFF
U32_MAX = 0xFFFFFFFF
#: ipma property indices: 7 bits (flags 0) or 15 bits (flags 1).
SHORT_INDEX_MAX = 0x7F
LONG_INDEX_MAX = 0x7FFF
#: iloc construction methods: file offset, offset in ``idat``, offset in another item.
FILE_OFFSET, IDAT_OFFSET, ITEM_OFFSET = 0, 1, 2


@dataclass(frozen=True)
class Box:
    """Where one box lies in the file: type, start, header length and end (absolute offsets)."""

    type: str
    offset: int
    header: int
    end: int

    @property
    def start(self) -> int:
        """First payload byte."""
        return self.offset + self.header

    def __str__(self) -> str:
        return f"{self.type!r} box at offset {self.offset}"


class Reader:
    """A cursor over one box payload; reads past its end raise DepthError naming the box."""

    def __init__(self, data: bytes | memoryview, box: Box, start: int | None = None) -> None:
        self.data = data
        self.box = box
        self.pos = box.start if start is None else start
        self.end = box.end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def fail(self, what: str) -> DepthError:
        return DepthError(f"{self.box}: {what} (at offset {self.pos})")

    def skip(self, size: int, what: str = "field") -> int:
        """Move past ``size`` bytes of the box; where they start."""
        start = self.pos
        if size < 0 or size > self.end - start:
            raise self.fail(f"{what} of {size} bytes runs past the box end")
        self.pos = start + size
        return start

    def take(self, size: int, what: str = "field") -> bytes:
        start = self.skip(size, what)
        return bytes(self.data[start : self.pos])

    def uint(self, size: int, what: str = "field") -> int:
        start = self.skip(size, what)  # read in place: the item tables' hot path
        return int.from_bytes(self.data[start : self.pos], "big")

    def full_box(self) -> tuple[int, int]:
        """FullBox version and flags."""
        word = self.uint(4, "version/flags")
        return word >> 24, word & 0xFFFFFF

    def fourcc(self, what: str = "type") -> str:
        return self.take(4, what).decode("latin-1")

    def cstring(self, what: str = "string") -> str:
        """A NUL-terminated UTF-8 string; a missing NUL at the box end is tolerated (as libheif does)."""
        stop = bytes(self.data[self.pos : self.end]).find(b"\0")
        raw = self.take(self.remaining if stop < 0 else stop, what)
        self.pos += 0 if stop < 0 else 1
        return raw.decode("utf-8", "replace")

    def count(self, size: int, entry_bytes: int, what: str, budget: list[int] | None = None) -> int:
        """An entry count, refused when its entries cannot fit in what is left of the box, or when
        it takes ``budget`` (a one-element running total of a table's entries) past MAX_ENTRIES."""
        value = self.uint(size, what)
        if value * entry_bytes > self.remaining:
            raise self.fail(f"{what} {value} needs more than the {self.remaining} bytes left")
        if budget is not None:
            budget[0] += value
            if budget[0] > MAX_ENTRIES:
                raise self.fail(f"{what} {value} takes the table past {MAX_ENTRIES} entries")
        return value

    def children(self, depth: int) -> list[Box]:
        return read_boxes(self.data, self.pos, self.end, depth, str(self.box))


def read_boxes(data: bytes | memoryview, start: int, end: int, depth: int = 0, parent: str = "file") -> list[Box]:
    """The boxes that tile ``data[start:end]``; each must fit inside its parent."""
    if depth > MAX_DEPTH:
        raise DepthError(f"{parent}: boxes nested deeper than {MAX_DEPTH} levels")
    boxes: list[Box] = []
    pos = start
    while pos < end:
        boxes.append(_box(data[pos : pos + LARGE_HEADER], pos, end, parent, len(boxes)))
        pos = boxes[-1].end
    return boxes


def _box(raw: bytes | memoryview, pos: int, end: int, parent: str, before: int) -> Box:
    """The box at ``pos`` from ``raw``, its first bytes (up to 16), in ``parent`` ending at ``end``, after
    ``before`` boxes of it; it must fit inside its parent."""
    if end - pos < HEADER:
        raise DepthError(f"{parent}: {end - pos} trailing bytes at offset {pos} are too short for a box header")
    size, kind = struct.unpack_from(">I4s", raw)
    kind = kind.decode("latin-1")
    header = HEADER
    if size == 1:
        if end - pos < LARGE_HEADER:
            raise DepthError(f"{kind!r} box at offset {pos}: truncated 64-bit size in {parent}")
        size = struct.unpack_from(">Q", raw, HEADER)[0]
        header = LARGE_HEADER
    elif size == 0:
        size = end - pos
    if size < header:
        raise DepthError(f"{kind!r} box at offset {pos}: size {size} is smaller than its header")
    if size > end - pos:
        raise DepthError(f"{kind!r} box at offset {pos}: size {size} runs past the end of {parent} at {end}")
    if before == MAX_ENTRIES:
        raise DepthError(f"{parent}: more than {MAX_ENTRIES} boxes")
    return Box(kind, pos, header, pos + size)


def box_bytes(kind: str, payload: bytes) -> bytes:
    """A box: 32-bit size when it fits, else ``largesize``."""
    return box_header(kind, len(payload)) + payload


def box_header(kind: str, length: int) -> bytes:
    """The header of a box of ``length`` payload bytes."""
    size = HEADER + length
    if size <= U32_MAX:
        return struct.pack(">I4s", size, kind.encode("latin-1"))
    return struct.pack(">I4sQ", 1, kind.encode("latin-1"), size + LARGE_HEADER - HEADER)


def full_box_bytes(kind: str, version: int, flags: int, payload: bytes) -> bytes:
    return box_bytes(kind, struct.pack(">I", version << 24 | flags) + payload)


def uint_bytes(value: int, size: int, what: str) -> bytes:
    if value < 0 or value >= 1 << (8 * size):
        raise OverflowError(f"{what} {value} does not fit in {size} bytes")
    return value.to_bytes(size, "big") if size else b""


# ----------------------------------------------------------------------------------------------- ftyp


@dataclass(frozen=True)
class FileType:
    major: str
    minor: int
    compatible: tuple[str, ...]

    def to_bytes(self) -> bytes:
        brands = "".join((self.major, *self.compatible)).encode("latin-1")
        return box_bytes("ftyp", brands[:4] + struct.pack(">I", self.minor) + brands[4:])


def parse_ftyp(data: bytes | memoryview, box: Box) -> FileType:
    reader = Reader(data, box)
    major = reader.fourcc("major brand")
    minor = reader.uint(4, "minor version")
    if reader.remaining % 4:
        raise reader.fail("compatible brands are not a multiple of 4 bytes")
    return FileType(major, minor, tuple(reader.fourcc("brand") for _ in range(reader.remaining // 4)))


# ----------------------------------------------------------------------------------------------- meta


@dataclass
class ItemInfo:
    """One ``infe`` entry; ``raw`` is its original box, written back unchanged when set."""

    item_id: int
    item_type: str
    flags: int = 0
    name: str = ""
    content_type: str = ""
    raw: bytes | None = None

    @property
    def hidden(self) -> bool:
        return bool(self.flags & 1)

    def to_bytes(self) -> bytes:
        if self.raw is not None:
            return self.raw
        wide = self.item_id > U16_MAX
        body = uint_bytes(self.item_id, 4 if wide else 2, "item_ID") + struct.pack(">H", 0)
        body += self.item_type.encode("latin-1") + self.name.encode() + b"\0"
        if self.item_type == "mime":
            body += self.content_type.encode() + b"\0"
        return full_box_bytes("infe", 3 if wide else 2, self.flags, body)


@dataclass
class Extent:
    offset: int
    length: int  # 0: to the end of the data source
    index: int = 0


@dataclass
class Location:
    """One ``iloc`` entry, with the base offset folded into the extent offsets."""

    item_id: int
    method: int = FILE_OFFSET
    data_reference: int = 0
    extents: list[Extent] = field(default_factory=list)


@dataclass
class Reference:
    kind: str
    from_id: int
    to_ids: list[int]


@dataclass
class Meta:
    """The ``meta`` box: item tables parsed, everything else kept verbatim in its original order.

    ``order`` lists the children: a type name for the modelled boxes (``pitm iinf iloc iref iprp``),
    raw bytes for the rest (``hdlr``, ``idat``, ``dinf`` …); ``iprp_order`` does the same for
    ``iprp`` (``ipco`` and ``ipma`` modelled).  Property indices in ``associations`` are 1-based.
    """

    version_flags: int = 0
    order: list[str | bytes] = field(default_factory=list)
    iprp_order: list[str | bytes] = field(default_factory=list)
    primary: int | None = None
    items: list[ItemInfo] = field(default_factory=list)
    locations: dict[int, Location] = field(default_factory=dict)
    iloc_index_size: int = 0
    references: list[Reference] = field(default_factory=list)
    properties: list[bytes] = field(default_factory=list)
    associations: dict[int, list[tuple[int, bool]]] = field(default_factory=dict)
    idat: bytes | None = None

    def item(self, item_id: int) -> ItemInfo | None:
        return next((item for item in self.items if item.item_id == item_id), None)

    def copy(self) -> Meta:
        """A copy whose tables can change without changing this one's (the entries, never changed in place,
        are shared)."""
        return replace(
            self,
            order=list(self.order),
            iprp_order=list(self.iprp_order),
            items=list(self.items),
            locations=dict(self.locations),
            references=list(self.references),
            properties=list(self.properties),
            associations={item_id: list(entries) for item_id, entries in self.associations.items()},
        )

    def property_type(self, index: int) -> str:
        return self.properties[index - 1][4:8].decode("latin-1")

    def item_properties(self, item_id: int) -> list[tuple[str, bytes, bool]]:
        """(type, box bytes, essential) of each property associated with the item, in order."""
        return [
            (self.property_type(index), self.properties[index - 1], essential)
            for index, essential in self.associations.get(item_id, [])
        ]

    def first_property(self, item_id: int, kind: str) -> tuple[int, bytes] | None:
        """(1-based ipco index, box bytes) of the item's first property of type ``kind``, or None."""
        for index, _ in self.associations.get(item_id, []):
            if self.property_type(index) == kind:
                return index, self.properties[index - 1]
        return None

    def referenced(self, kind: str, from_id: int) -> list[int]:
        return [i for ref in self.references if ref.kind == kind and ref.from_id == from_id for i in ref.to_ids]

    def referencing(self, kind: str, to_id: int) -> list[int]:
        return [ref.from_id for ref in self.references if ref.kind == kind and to_id in ref.to_ids]

    def add_property(self, box: bytes) -> int:
        self.properties.append(box)
        return len(self.properties)

    def remove_items(self, ids: set[int]) -> None:
        """Drop items from every table, and the properties no remaining item uses any more (the
        other properties keep their order; their indices are renumbered)."""
        released = {index for item_id in ids for index, _ in self.associations.get(item_id, [])}
        self.items = [item for item in self.items if item.item_id not in ids]
        for item_id in ids:
            self.locations.pop(item_id, None)
            self.associations.pop(item_id, None)
        references = []
        for ref in self.references:
            targets = [i for i in ref.to_ids if i not in ids]
            if ref.from_id not in ids and targets:
                references.append(Reference(ref.kind, ref.from_id, targets))
        self.references = references
        self._drop_properties(released - {index for entries in self.associations.values() for index, _ in entries})

    def _drop_properties(self, gone: set[int]) -> None:
        renumbered, kept = {}, []
        for index, raw in enumerate(self.properties, 1):
            if index not in gone:
                kept.append(raw)
                renumbered[index] = len(kept)
        self.properties = kept
        self.associations = {
            item_id: [(renumbered[index], essential) for index, essential in entries]
            for item_id, entries in self.associations.items()
        }

    def closure(self, item_id: int, kinds: tuple[str, ...] | None = None) -> set[int]:
        """The item and every item it references, directly or through others (by irefs of ``kinds``; all when None)."""
        found, todo = set(), [item_id]
        while todo:
            current = todo.pop()
            if current not in found:
                found.add(current)
                todo += [
                    i
                    for ref in self.references
                    if ref.from_id == current and (kinds is None or ref.kind in kinds)
                    for i in ref.to_ids
                ]
        return found

    def new_item_ids(self, count: int) -> list[int]:
        """``count`` IDs above every one the tables mention, so no stale reference, location or association
        of the file (to an item it lacks) can attach itself to a new item; where they would pass the largest
        ID (2^32 - 1), the lowest IDs none of them mentions."""
        used = {item.item_id for item in self.items} | set(self.locations) | set(self.associations)
        used |= {i for ref in self.references for i in (ref.from_id, *ref.to_ids)} | {self.primary or 0}
        used |= self.group_ids()
        if max(used) + count <= U32_MAX:
            return list(range(max(used) + 1, max(used) + 1 + count))
        return [i for i in range(1, len(used) + count + 1) if i not in used][:count]

    def group_ids(self) -> set[int]:
        """The group IDs and entity IDs of ``grpl``'s entity groups, which share the item ID space."""
        ids: set[int] = set()
        for child in self.order:
            if isinstance(child, bytes) and child[4:8] == b"grpl":
                grpl = read_boxes(child, 0, len(child), parent="meta")[0]
                for group in read_boxes(child, grpl.start, grpl.end, 2, str(grpl)):
                    reader = Reader(child, group)
                    reader.full_box()
                    ids.add(reader.uint(4, "group_id"))
                    count = reader.count(4, 4, "num_entities_in_group")
                    ids.update(reader.uint(4, "entity_id") for _ in range(count))
        return ids


def parse_meta(data: bytes | memoryview, box: Box, depth: int = 1) -> Meta:
    """Parse a ``meta`` box; unmodelled children are kept as raw bytes."""
    reader = Reader(data, box)
    version, flags = reader.full_box()
    if version != 0:
        raise reader.fail(f"unsupported meta version {version}")
    meta = Meta(version_flags=flags)
    for child in reader.children(depth + 1):
        parser = _META_PARSERS.get(child.type)
        if parser is None:
            meta.order.append(_explicit(data, child))
            if child.type == "idat":
                if meta.idat is not None:
                    raise DepthError(f"{child}: second idat in meta")
                meta.idat = bytes(data[child.start : child.end])
            continue
        if child.type in meta.order:
            raise DepthError(f"{child}: second {child.type} in meta")
        meta.order.append(child.type)
        parser(meta, Reader(data, child), depth + 1)
    if "iinf" not in meta.order or "iloc" not in meta.order:
        raise DepthError(f"{box}: meta lacks iinf or iloc")
    return meta


def _parse_pitm(meta: Meta, reader: Reader, depth: int) -> None:
    version, _ = reader.full_box()
    meta.primary = reader.uint(2 if version == 0 else 4, "item_ID")


def _parse_iinf(meta: Meta, reader: Reader, depth: int) -> None:
    version, _ = reader.full_box()
    count = reader.uint(2 if version == 0 else 4, "entry_count")
    children = reader.children(depth + 1)
    entries = [box for box in children if box.type == "infe"]
    if len(entries) != count:
        raise reader.fail(f"entry_count {count} but {len(entries)} infe boxes")
    meta.items = [_parse_infe(Reader(reader.data, box)) for box in entries]
    if len({item.item_id for item in meta.items}) != len(meta.items):
        raise reader.fail("duplicate item_ID in iinf")


def _parse_infe(reader: Reader) -> ItemInfo:
    version, flags = reader.full_box()
    raw = _explicit(reader.data, reader.box)
    if version < 2:
        item_id = reader.uint(2, "item_ID")
        return ItemInfo(item_id, "", flags, raw=raw)
    item_id = reader.uint(2 if version == 2 else 4, "item_ID")
    reader.uint(2, "item_protection_index")
    item_type = reader.fourcc("item_type")
    name = reader.cstring("item_name")
    content_type = reader.cstring("content_type") if item_type == "mime" and reader.remaining else ""
    return ItemInfo(item_id, item_type, flags, name, content_type, raw)


def _parse_iloc(meta: Meta, reader: Reader, depth: int) -> None:
    version, _ = reader.full_box()
    if version > 2:
        raise reader.fail(f"unsupported iloc version {version}")
    sizes = reader.uint(2, "field sizes")
    offset_size, length_size, base_size, index_size = sizes >> 12, sizes >> 8 & 15, sizes >> 4 & 15, sizes & 15
    if version == 0:
        index_size = 0
    for name, size in (("offset", offset_size), ("length", length_size), ("base_offset", base_size)):
        if size not in (0, 4, 8):
            raise reader.fail(f"iloc {name}_size {size} is not 0, 4 or 8")
    if index_size not in (0, 4, 8):
        raise reader.fail(f"iloc index_size {index_size} is not 0, 4 or 8")
    meta.iloc_index_size = index_size
    id_size = 4 if version == 2 else 2
    entry_min = id_size + (2 if version else 0) + 2 + base_size + 2
    count = reader.count(2 if version < 2 else 4, entry_min, "iloc item_count", [0])
    extent_bytes = index_size + offset_size + length_size
    extents_seen = [0]
    for _ in range(count):
        item_id = reader.uint(id_size, "item_ID")
        method = reader.uint(2, "construction_method") & 15 if version else FILE_OFFSET
        if method > ITEM_OFFSET:
            raise reader.fail(f"iloc item {item_id}: unknown construction_method {method}")
        data_reference = reader.uint(2, "data_reference_index")
        base = reader.uint(base_size, "base_offset")
        extents = []
        for _ in range(reader.count(2, extent_bytes, "extent_count", extents_seen)):
            index = reader.uint(index_size, "extent_index")
            offset = base + reader.uint(offset_size, "extent_offset")
            extents.append(Extent(offset, reader.uint(length_size, "extent_length"), index))
        if item_id in meta.locations:
            raise reader.fail(f"duplicate iloc entry for item {item_id}")
        meta.locations[item_id] = Location(item_id, method, data_reference, extents)


def _parse_iref(meta: Meta, reader: Reader, depth: int) -> None:
    version, _ = reader.full_box()
    id_size = 2 if version == 0 else 4
    references = [0]
    for box in reader.children(depth + 1):
        ref = Reader(reader.data, box)
        from_id = ref.uint(id_size, "from_item_ID")
        count = ref.count(2, id_size, "reference_count", references)
        meta.references.append(Reference(box.type, from_id, [ref.uint(id_size, "to_item_ID") for _ in range(count)]))
        if ref.remaining:
            raise ref.fail(f"{ref.remaining} unexpected bytes after the references")


def _parse_iprp(meta: Meta, reader: Reader, depth: int) -> None:
    for box in reader.children(depth + 1):
        if box.type == "ipco" and "ipco" not in meta.iprp_order:
            meta.iprp_order.append("ipco")
            sub = Reader(reader.data, box)
            meta.properties = [_explicit(reader.data, p) for p in sub.children(depth + 2)]
        elif box.type == "ipma":
            if "ipma" not in meta.iprp_order:
                meta.iprp_order.append("ipma")
            _parse_ipma(meta, Reader(reader.data, box))
        elif box.type == "ipco":
            raise DepthError(f"{box}: second ipco in iprp")
        else:
            meta.iprp_order.append(_explicit(reader.data, box))
    if "ipco" not in meta.iprp_order:
        raise reader.fail("iprp lacks ipco")
    for item_id, entries in meta.associations.items():
        for index, _ in entries:
            if index > len(meta.properties):
                raise reader.fail(f"ipma: item {item_id} property {index} is beyond the {len(meta.properties)} in ipco")


def _parse_ipma(meta: Meta, reader: Reader) -> None:
    version, flags = reader.full_box()
    id_size = 2 if version == 0 else 4
    wide = flags & 1
    count = reader.count(4, id_size + 1, "ipma entry_count", [0])
    associations = [0]
    for _ in range(count):
        item_id = reader.uint(id_size, "item_ID")
        entries = []
        for _ in range(reader.count(1, 1 + wide, "association_count", associations)):
            value = reader.uint(1 + wide, "property index")
            top = 0x8000 if wide else 0x80
            if value & (top - 1):
                entries.append((value & (top - 1), bool(value & top)))
        if item_id in meta.associations:
            raise reader.fail(f"item {item_id} has a second ipma entry")
        meta.associations[item_id] = entries


_META_PARSERS = {
    "pitm": _parse_pitm,
    "iinf": _parse_iinf,
    "iloc": _parse_iloc,
    "iref": _parse_iref,
    "iprp": _parse_iprp,
}


# ----------------------------------------------------------------------------------------------- writing


def meta_bytes(meta: Meta, offset_size: int = 4, length_size: int = 4) -> bytes:
    """Serialise ``meta``; the modelled tables are rebuilt, other boxes written back verbatim."""
    writers = {
        "pitm": _pitm_bytes,
        "iinf": _iinf_bytes,
        "iloc": lambda m: _iloc_bytes(m, offset_size, length_size),
        "iref": _iref_bytes,
        "iprp": _iprp_bytes,
    }
    children = b"".join(writers[child](meta) if isinstance(child, str) else child for child in meta.order)
    return full_box_bytes("meta", 0, meta.version_flags, children)


def _pitm_bytes(meta: Meta) -> bytes:
    if meta.primary is None:
        return b""
    wide = meta.primary > U16_MAX
    return full_box_bytes("pitm", int(wide), 0, uint_bytes(meta.primary, 4 if wide else 2, "item_ID"))


def _iinf_bytes(meta: Meta) -> bytes:
    wide = len(meta.items) > U16_MAX
    head = uint_bytes(len(meta.items), 4 if wide else 2, "entry_count")
    return full_box_bytes("iinf", int(wide), 0, head + b"".join(item.to_bytes() for item in meta.items))


def _iloc_bytes(meta: Meta, offset_size: int, length_size: int) -> bytes:
    locations = list(meta.locations.values())
    wide_ids = any(loc.item_id > U16_MAX for loc in locations)
    version = 2 if wide_ids else 1 if meta.iloc_index_size or any(loc.method for loc in locations) else 0
    index_size = meta.iloc_index_size if version else 0
    id_size = 4 if version == 2 else 2
    sizes = offset_size << 12 | length_size << 8 | index_size
    body = [struct.pack(">H", sizes), uint_bytes(len(locations), 4 if version == 2 else 2, "item_count")]
    for loc in locations:
        body.append(uint_bytes(loc.item_id, id_size, "item_ID"))
        if version:
            body.append(struct.pack(">H", loc.method))
        body.append(struct.pack(">HH", loc.data_reference, len(loc.extents)))
        for extent in loc.extents:
            body.append(uint_bytes(extent.index, index_size, "extent_index"))
            body.append(uint_bytes(extent.offset, offset_size, "extent_offset"))
            body.append(uint_bytes(extent.length, length_size, "extent_length"))
    return full_box_bytes("iloc", version, 0, b"".join(body))


def _iref_bytes(meta: Meta) -> bytes:
    if not meta.references:
        return b""
    wide = any(max(ref.from_id, *ref.to_ids) > U16_MAX for ref in meta.references)
    size = 4 if wide else 2
    refs = b"".join(
        box_bytes(
            ref.kind,
            uint_bytes(ref.from_id, size, "from_item_ID")
            + uint_bytes(len(ref.to_ids), 2, "reference_count")
            + b"".join(uint_bytes(i, size, "to_item_ID") for i in ref.to_ids),
        )
        for ref in meta.references
    )
    return full_box_bytes("iref", int(wide), 0, refs)


def _iprp_bytes(meta: Meta) -> bytes:
    order = [*(["ipco"] if "ipco" not in meta.iprp_order else []), *meta.iprp_order]
    order += [] if "ipma" in order else ["ipma"]
    parts = {"ipco": box_bytes("ipco", b"".join(meta.properties)), "ipma": _ipma_bytes(meta)}
    return box_bytes("iprp", b"".join(parts[c] if isinstance(c, str) else c for c in order))


def _ipma_bytes(meta: Meta) -> bytes:
    wide_ids = any(item_id > U16_MAX for item_id in meta.associations)
    if len(meta.properties) > LONG_INDEX_MAX:
        raise DepthError(f"ipco: {len(meta.properties)} properties exceed ipma's 15-bit indices")
    wide = len(meta.properties) > SHORT_INDEX_MAX
    top = 0x8000 if wide else 0x80
    body = [struct.pack(">I", len(meta.associations))]
    for item_id, entries in meta.associations.items():
        if len(entries) > 0xFF:
            raise DepthError(f"ipma: item {item_id} has {len(entries)} properties, more than 255")
        body.append(uint_bytes(item_id, 4 if wide_ids else 2, "item_ID") + struct.pack(">B", len(entries)))
        body += [
            uint_bytes(index | (top if essential else 0), 2 if wide else 1, "index") for index, essential in entries
        ]
    return full_box_bytes("ipma", int(wide_ids), int(wide), b"".join(body))


# ----------------------------------------------------------------------------------------------- properties


@dataclass(frozen=True)
class HevcConfig:
    """What ``hvcC`` (HEVCDecoderConfigurationRecord, ISO/IEC 14496-15) says of the coded picture."""

    chroma_format: int  # 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4
    bit_depth: int
    length_size: int  # bytes of each NAL unit's length prefix


def property_reader(raw: bytes, where: str) -> Reader:
    """A reader over the payload of one item property's box bytes."""
    return Reader(raw, read_boxes(raw, 0, len(raw), parent=where)[0])


def parse_auxc(raw: bytes, where: str) -> tuple[str, bytes]:
    """(aux_type URN, aux_subtype bytes) of an ``auxC`` property."""
    reader = property_reader(raw, where)
    reader.full_box()
    return reader.cstring("aux_type"), reader.take(reader.remaining, "aux_subtype")


def parse_ispe(raw: bytes, where: str) -> tuple[int, int]:
    """(width, height) of an ``ispe`` property."""
    reader = property_reader(raw, where)
    reader.full_box()
    return reader.uint(4, "image_width"), reader.uint(4, "image_height")


def ispe_bytes(width: int, height: int) -> bytes:
    """An ``ispe`` property (what :func:`parse_ispe` reads)."""
    return full_box_bytes("ispe", 0, 0, struct.pack(">II", width, height))


def pixi_bytes(*bits: int) -> bytes:
    """A ``pixi`` property: the bits of each channel."""
    return full_box_bytes("pixi", 0, 0, bytes([len(bits), *bits]))


def parse_clap(raw: bytes, where: str) -> tuple[int, int] | None:
    """The clean aperture's (width, height), rounded; None where a denominator is 0."""
    reader = property_reader(raw, where)
    num_w, den_w, num_h, den_h = (reader.uint(4, name) for name in ("widthN", "widthD", "heightN", "heightD"))
    return (round(num_w / den_w), round(num_h / den_h)) if den_w and den_h else None


def parse_hvcc(raw: bytes, where: str) -> HevcConfig:
    """The fields of an ``hvcC`` property that say how the picture is coded."""
    reader = property_reader(raw, where)
    reader.take(16, "profile, tier, level and segmentation fields")
    chroma = reader.uint(1, "chromaFormat") & 3
    bit_depth = (reader.uint(1, "bitDepthLumaMinus8") & 7) + 8
    reader.take(3, "bitDepthChroma and avgFrameRate")
    length_size = (reader.uint(1, "lengthSizeMinusOne") & 3) + 1
    reader.uint(1, "numOfArrays")
    return HevcConfig(chroma, bit_depth, length_size)


def parse_transform(kind: str, raw: bytes, where: str) -> int:
    """An ``irot``'s quarter turns anticlockwise or an ``imir``'s axis (0: left-right, 1: top-bottom)."""
    value = property_reader(raw, where).uint(1, "angle" if kind == "irot" else "axis")
    return value & (3 if kind == "irot" else 1)


# ----------------------------------------------------------------------------------------------- files


@dataclass
class HeifFile:
    """A parsed HEIF file: its top-level boxes, ``ftyp`` and the item tables of its ``meta``."""

    data: bytes | memoryview
    boxes: list[Box]
    file_type: FileType
    meta_box: Box
    meta: Meta


def parse_file(data: bytes | memoryview) -> HeifFile:
    """Parse the top-level boxes, ``ftyp`` (first) and the one ``meta`` box."""
    boxes = read_boxes(data, 0, len(data))
    meta = _ftyp_and_meta(boxes)[1]
    return HeifFile(data, boxes, parse_ftyp(data, boxes[0]), meta, parse_meta(data, meta))


def read_head(read: Callable[[int, int], bytes], size: int) -> bytes:
    """A file's ``ftyp`` and ``meta`` boxes, which :func:`parse_file` reads as the whole file's item tables (not
    its items' data), from a file of ``size`` bytes that ``read(offset, length)`` reads: every top-level box
    header is checked as in the whole file, and only those two boxes are read (a photo's meta is KBs of its MBs)."""
    boxes: list[Box] = []
    while (pos := boxes[-1].end if boxes else 0) < size:
        boxes.append(_box(read(pos, min(LARGE_HEADER, size - pos)), pos, size, "file", len(boxes)))
    return b"".join(read(box.offset, box.end - box.offset) for box in _ftyp_and_meta(boxes))


def _ftyp_and_meta(boxes: list[Box]) -> tuple[Box, Box]:
    """The first top-level box, an ``ftyp``, and the one ``meta`` box."""
    if not boxes or boxes[0].type != "ftyp":
        raise DepthError("not an ISOBMFF file: it does not start with an ftyp box")
    metas = [box for box in boxes if box.type == "meta"]
    if len(metas) != 1:
        raise DepthError(f"expected one top-level meta box, found {len(metas)}")
    return boxes[0], metas[0]


def item_data(heif: HeifFile, item_id: int, limit: int = 1 << 30) -> bytes:
    """The bytes of an item stored in this file (construction methods 0 and 1), bounds-checked: at most
    ``limit`` bytes, and no more than the file or idat holds (overlapping extents cannot multiply it)."""
    loc = heif.meta.locations.get(item_id)
    if loc is None:
        raise DepthError(f"iloc: item {item_id} has no location")
    if loc.data_reference:
        raise DepthError(f"iloc: item {item_id} lies in another file (data_reference_index {loc.data_reference})")
    if loc.method == ITEM_OFFSET:
        raise DepthError(f"iloc: item {item_id} uses construction_method 2, which is not supported")
    source = heif.data if loc.method == FILE_OFFSET else heif.meta.idat
    where = "the file" if loc.method == FILE_OFFSET else "idat"
    if source is None:
        raise DepthError(f"iloc: item {item_id} points into idat but meta has none")
    chunks, total = [], 0
    for extent in loc.extents:
        length = extent.length or len(source) - extent.offset
        if extent.offset > len(source) or length > len(source) - extent.offset or length < 0:
            raise DepthError(
                f"iloc: item {item_id} extent {extent.offset}+{extent.length} runs past the end of {where} "
                f"({len(source)} bytes)"
            )
        total += length
        if total > limit:
            raise DepthError(f"iloc: item {item_id} is larger than {limit} bytes")
        if total > len(source):
            raise DepthError(f"iloc: item {item_id}'s extents add up to more than the {len(source)} bytes of {where}")
        chunks.append(bytes(source[extent.offset : extent.offset + length]))
    return b"".join(chunks)


def rebuild(
    heif: HeifFile,
    meta: Meta,
    appended: bytes = b"",
    new_items: frozenset[int] = frozenset(),
    cuts: tuple[tuple[int, int], ...] = (),
) -> bytes:
    """The file with ``meta`` in place of its meta box, the byte ranges ``cuts`` (file offsets, inside
    top-level boxes other than meta, used by no item left) taken out, and ``appended`` added.

    ``appended`` goes where the image file ends: at the end of the last ``mdat`` or ``meta`` box, in
    that mdat (grown, 64-bit size where needed: one mdat, as Apple writes) or a new one after the meta.
    Boxes after it (a Motion Photo's ``mpvd`` video, Samsung's ``sefd`` trailer) stay last, at their
    distance from the end of the file, where their readers look.  Every other byte keeps its value (a
    size-0 last box gets an explicit size); file-offset extents move with their bytes.  Extents of
    ``new_items`` are offsets into ``appended``.
    """
    fixed = _headers_in_items(heif, meta, new_items)  # boxes whose header bytes an item holds keep them
    offsets = [box.offset for box in heif.boxes]
    cuts = tuple(c for c in cuts if offsets[max(0, bisect_right(offsets, c[0]) - 1)] not in fixed)
    end = [box for box in heif.boxes if box.type in ("mdat", "meta")][-1]
    grown = end if appended and end.type == "mdat" and end.offset not in fixed else None
    for offset_size in (4, 8):
        try:
            meta_size = len(meta_bytes(meta, offset_size, offset_size))  # the size depends on field sizes only
            layout = _Layout(heif, meta_size, sorted(cuts), len(appended), grown, end)
            raw = meta_bytes(layout.moved(meta, new_items), offset_size, offset_size)
            break
        except OverflowError:
            if offset_size == 8:
                raise DepthError("iloc: an offset exceeds 64 bits") from None
    out: list[bytes | memoryview] = []  # views of the photo's bytes, copied once by the join
    for box in heif.boxes:
        out += [raw] if box is heif.meta_box else layout.box_pieces(box, appended if box is grown else b"")
        if box is layout.new_mdat_after:
            out += [box_header("mdat", len(appended)), appended]
    return b"".join(out)


def new_file(file_type: FileType, meta: Meta, payload: bytes) -> bytes:
    """A new file: ``ftyp``, ``meta`` and one ``mdat`` holding ``payload``, which every extent points into."""
    head = file_type.to_bytes()
    data = head + full_box_bytes("meta", 0, 0, b"")
    boxes = [Box("ftyp", 0, HEADER, len(head)), Box("meta", len(head), HEADER, len(data))]
    stub = HeifFile(data, boxes, file_type, boxes[1], meta)
    return rebuild(stub, meta, payload, frozenset(meta.locations))


def _explicit(data: bytes | memoryview, box: Box) -> bytes:
    """A box's bytes, with an explicit size where it had size 0 ("to the end of the parent"), so that
    boxes written after it, in the file or in its parent, stay boxes of their own."""
    if struct.unpack_from(">I", data, box.offset)[0] != 0:
        return bytes(data[box.offset : box.end])
    return box_bytes(box.type, bytes(data[box.start : box.end]))


def _headers_in_items(heif: HeifFile, meta: Meta, new_items: frozenset[int]) -> set[int]:
    """Offsets of the top-level boxes whose header bytes some item's file extent covers."""
    offsets, starts = [box.offset for box in heif.boxes], [box.start for box in heif.boxes]
    marks = [0] * (len(heif.boxes) + 1)  # +1 at the first box an extent's range of headers holds, -1 after the last
    for item_id, loc in meta.locations.items():
        if item_id in new_items or loc.method != FILE_OFFSET or loc.data_reference:
            continue
        for e in loc.extents:
            lo, hi = e.offset, e.offset + (e.length or len(heif.data) - e.offset)
            first, stop = bisect_right(starts, lo), bisect_left(offsets, hi)
            if first < stop:
                marks[first] += 1
                marks[stop] -= 1
    return {box.offset for box, covered in zip(heif.boxes, accumulate(marks), strict=False) if covered}


class _Layout:
    """Where each top-level box's payload lands in the rebuilt file, its cuts taken out.

    ``cuts`` are sorted, disjoint (start, end) file ranges, each inside one box's payload."""

    def __init__(
        self, heif: HeifFile, meta_size: int, cuts: list[tuple[int, int]], appended: int, grown: Box | None, end: Box
    ):
        """``appended`` bytes go at the end of the ``grown`` box, or into a new mdat right after ``end``."""
        self.heif = heif
        self.offsets = [box.offset for box in heif.boxes]
        self.los, self.his = [lo for lo, _ in cuts], [hi for _, hi in cuts]
        self.prefix = [0, *accumulate(hi - lo for lo, hi in cuts)]
        for lo, hi in cuts:
            box = self._box_at(lo)
            if box is None or box is heif.meta_box or not (box.start <= lo < hi <= box.end):
                raise DepthError(f"cut {lo}..{hi} does not lie inside the payload of a top-level box other than meta")
        self.starts: dict[int, int] = {}  # box offset -> new payload start
        self.grown = grown
        self.new_mdat_after = end if appended and grown is None else None
        position = self.appended_start = 0
        for box in heif.boxes:
            if box is heif.meta_box:
                position += meta_size
            else:
                length = box.end - box.start - self._cut(box, box.end) + (appended if box is grown else 0)
                header = self._header(box, length)
                self.starts[box.offset] = position + header
                position += header + length
            if box is grown:  # after the box's old payload
                self.appended_start = position - appended
            elif box is self.new_mdat_after:  # after the header of a new mdat
                self.appended_start = position + (HEADER if HEADER + appended <= U32_MAX else LARGE_HEADER)
                position = self.appended_start + appended

    def _box_at(self, offset: int) -> Box | None:
        index = bisect_right(self.offsets, offset) - 1
        return self.heif.boxes[index] if index >= 0 and offset < self.heif.boxes[index].end else None

    def _cuts_in(self, box: Box, before: int) -> range:
        """Indices of the cuts in ``box`` that end by file offset ``before``."""
        return range(bisect_left(self.los, box.start), bisect_right(self.his, min(before, box.end)))

    def _cut(self, box: Box, before: int) -> int:
        """Bytes cut from ``box`` before file offset ``before``."""
        found = self._cuts_in(box, before)
        return self.prefix[found.stop] - self.prefix[found.start] if found else 0

    def _changed(self, box: Box) -> bool:
        return box is self.grown or self._cut(box, box.end) > 0

    def _header(self, box: Box, length: int) -> int:
        if not self._changed(box):
            return _header_size(self.heif.data, box)
        return HEADER if HEADER + length <= U32_MAX else LARGE_HEADER

    def box_pieces(self, box: Box, appended: bytes) -> list[bytes | memoryview]:
        """The box as written, in pieces: its header and views of the kept bytes, then ``appended``."""
        view = memoryview(self.heif.data)
        if not self._changed(box):
            if struct.unpack_from(">I", view, box.offset)[0] != 0:
                return [view[box.offset : box.end]]
            return [box_header(box.type, box.end - box.start), view[box.start : box.end]]  # as _explicit does
        pieces, pos = [], box.start
        for index in self._cuts_in(box, box.end):
            pieces.append(view[pos : self.los[index]])
            pos = self.his[index]
        pieces += [view[pos : box.end], appended]
        return [box_header(box.type, sum(map(len, pieces))), *pieces]

    def moved(self, meta: Meta, new_items: frozenset[int]) -> Meta:
        """A copy of ``meta`` whose file-offset extents are absolute offsets in the rebuilt file."""
        locations = {}
        for item_id, loc in meta.locations.items():
            extents = loc.extents
            if loc.method == FILE_OFFSET and not loc.data_reference:
                if item_id in new_items:
                    extents = [Extent(e.offset + self.appended_start, e.length, e.index) for e in extents]
                else:
                    extents = [self._shifted(e, item_id) for e in extents]
            locations[item_id] = Location(item_id, loc.method, loc.data_reference, extents)
        return replace(meta, locations=locations)

    def _shifted(self, extent: Extent, item_id: int) -> Extent:
        """The extent moved with the top-level box that holds it; it must lie inside one (not meta)."""
        size = len(self.heif.data)
        length = extent.length or size - extent.offset
        start, end = extent.offset, extent.offset + length
        box = self._box_at(start)
        if box is None or box is self.heif.meta_box or end > box.end:
            raise DepthError(
                f"iloc: item {item_id} extent {start}+{length} does not lie inside one top-level box "
                f"other than meta (file of {size} bytes)"
            )
        after = bisect_right(self.his, start)  # the first cut ending after the extent starts
        if after < len(self.los) and self.los[after] < end:
            raise DepthError(f"iloc: item {item_id} extent {start}+{length} overlaps removed data")
        return Extent(self.starts[box.offset] + start - box.start - self._cut(box, start), length, extent.index)


def _header_size(data: bytes | memoryview, box: Box) -> int:
    """Header length of the box as :func:`_explicit` writes it."""
    if struct.unpack_from(">I", data, box.offset)[0] != 0:
        return box.header
    return HEADER if HEADER + box.end - box.start <= U32_MAX else LARGE_HEADER
