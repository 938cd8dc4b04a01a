"""The ISOBMFF box reader/writer: sizes, item tables in every version, hostile bytes."""

from __future__ import annotations

import re
import struct

import pytest
from helpers import sample
from hypothesis import given, settings
from hypothesis import strategies as st

from gpu_depth.containers.heic import isobmff
from gpu_depth.containers.heic.isobmff import Extent, ItemInfo, Location, Meta, Reference
from gpu_depth.errors import DepthError


def box(kind: str, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind.encode()) + payload


def full(kind: str, version: int, flags: int, payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", version << 24 | flags) + payload)


FTYP = box("ftyp", b"heic\0\0\0\0mif1heic")
HDLR = full("hdlr", 0, 0, b"\0\0\0\0pict" + bytes(12) + b"\0")


def small_meta(properties: int = 2, item_id: int = 1) -> Meta:
    """A meta with one hvc1 item, ``properties`` dummy properties and a mime item with idat data."""
    props = [full("irot", 0, 0, bytes([i % 4])) for i in range(properties)]
    return Meta(
        order=[HDLR, "pitm", "iinf", "iref", "iprp", "iloc", box("idat", b"IDAT-DATA")],
        iprp_order=["ipco", "ipma"],
        primary=item_id,
        items=[ItemInfo(item_id, "hvc1"), ItemInfo(item_id + 1, "mime", 1, content_type="application/rdf+xml")],
        locations={
            item_id: Location(item_id, extents=[Extent(0, 4), Extent(4, 3)]),
            item_id + 1: Location(item_id + 1, method=isobmff.IDAT_OFFSET, extents=[Extent(5, 4)]),
        },
        references=[Reference("cdsc", item_id + 1, [item_id])],
        properties=props,
        associations={item_id: [(index + 1, index % 2 == 0) for index in range(properties)]},
    )


def tables(meta: Meta) -> tuple:
    return (
        meta.primary,
        [(i.item_id, i.item_type, i.flags, i.content_type) for i in meta.items],
        meta.locations,
        meta.references,
        meta.properties,
        meta.associations,
    )


# ----------------------------------------------------------------------------------------------- boxes


def test_box_sizes_32_64_and_to_end():
    large = struct.pack(">I4sQ", 1, b"free", 16 + 3) + b"abc"
    data = box("ftyp", b"mif1") + large + struct.pack(">I4s", 0, b"mdat") + b"rest"
    boxes = isobmff.read_boxes(data, 0, len(data))
    assert [(b.type, b.header, b.end - b.start) for b in boxes] == [("ftyp", 8, 4), ("free", 16, 3), ("mdat", 8, 4)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (box("ftyp", b"mif1") + b"\0\0\0", r"3 trailing bytes at offset 12"),
        (struct.pack(">I4s", 4, b"free"), r"'free' box at offset 0: size 4 is smaller than its header"),
        (struct.pack(">I4s", 100, b"mdat") + b"xx", r"'mdat' box at offset 0: size 100 runs past the end of file"),
        (struct.pack(">I4sQ", 1, b"mdat", 8), r"'mdat' box at offset 0: size 8 is smaller than its header"),
        (struct.pack(">I4s", 1, b"mdat"), r"'mdat' box at offset 0: truncated 64-bit size"),
    ],
)
def test_bad_box_headers(data, message):
    with pytest.raises(DepthError, match=message):
        isobmff.read_boxes(data, 0, len(data))


def test_child_longer_than_parent_is_named():
    iinf = full("iinf", 0, 0, b"\0\1" + struct.pack(">I4s", 200, b"infe"))
    data = FTYP + box("meta", b"\0\0\0\0" + iinf)
    with pytest.raises(DepthError, match=r"'infe' box at offset \d+: size 200 runs past the end of 'iinf' box"):
        isobmff.parse_file(data)


def test_nesting_depth_is_bounded():
    nested = b""
    for _ in range(isobmff.MAX_DEPTH + 2):
        nested = box("ipco", nested + box("free", b""))
    with pytest.raises(DepthError, match="nested deeper"):
        # walk the chain as a reader would
        def walk(data, start, end, depth):
            for child in isobmff.read_boxes(data, start, end, depth):
                if child.type == "ipco":
                    walk(data, child.start, child.end, depth + 1)

        walk(nested, 0, len(nested), 0)


# ----------------------------------------------------------------------------------------------- meta tables


def round_trip(meta: Meta, offset_size: int = 4) -> Meta:
    raw = isobmff.meta_bytes(meta, offset_size, offset_size)
    parsed = isobmff.parse_meta(raw, isobmff.read_boxes(raw, 0, len(raw))[0])
    assert isobmff.meta_bytes(parsed, offset_size, offset_size) == raw
    return parsed


@pytest.mark.parametrize("offset_size", [4, 8])
def test_meta_round_trip(offset_size):
    meta = small_meta()
    assert tables(round_trip(meta, offset_size)) == tables(meta)


def test_wide_property_indices_above_127():
    meta = small_meta(properties=200)
    raw = isobmff.meta_bytes(meta)
    ipma = raw[raw.index(b"ipma") - 4 :]
    assert struct.unpack_from(">I", ipma, 8)[0] & 0xFFFFFF == 1  # flags: 15-bit indices
    parsed = round_trip(meta)
    assert parsed.associations[1][-1] == (200, False)
    assert parsed.associations[1][128] == (129, True)


def test_32_bit_item_ids():
    meta = small_meta(item_id=70000)
    raw = isobmff.meta_bytes(meta)
    versions = {kind: raw[raw.index(kind.encode()) + 4] for kind in ("pitm", "iloc", "iref", "ipma", "infe")}
    assert versions == {"pitm": 1, "iloc": 2, "iref": 1, "ipma": 1, "infe": 3}
    assert tables(round_trip(meta)) == tables(meta)


def iloc_box(version: int, sizes: tuple[int, int, int, int], entries: bytes, count: int) -> bytes:
    offset_size, length_size, base_size, index_size = sizes
    head = struct.pack(">BB", offset_size << 4 | length_size, base_size << 4 | index_size)
    head += struct.pack(">I" if version == 2 else ">H", count)
    return full("iloc", version, 0, head + entries)


def meta_with(*children: bytes) -> Meta:
    raw = box("meta", b"\0\0\0\0" + HDLR + full("iinf", 0, 0, b"\0\0") + b"".join(children))
    return isobmff.parse_meta(raw, isobmff.read_boxes(raw, 0, len(raw))[0])


def test_iloc_versions_fold_base_offsets():
    v0 = iloc_box(0, (4, 4, 4, 0), struct.pack(">HHIHII", 1, 0, 100, 1, 5, 7), 1)
    assert meta_with(v0).locations[1] == Location(1, 0, 0, [Extent(105, 7)])
    v1 = iloc_box(1, (8, 4, 8, 4), struct.pack(">HHHQHIQI", 2, 1, 0, 10, 1, 3, 6, 9), 1)
    assert meta_with(v1).locations[2] == Location(2, 1, 0, [Extent(16, 9, 3)])
    v2 = iloc_box(2, (4, 8, 0, 0), struct.pack(">IHHHIQ", 1 << 20, 0, 0, 1, 40, 2), 1)
    assert meta_with(v2).locations[1 << 20] == Location(1 << 20, 0, 0, [Extent(40, 2)])


@pytest.mark.parametrize(
    ("child", "message"),
    [
        (iloc_box(1, (4, 4, 0, 0), b"", 0xFFFF), r"'iloc' box .*item_count 65535 needs more than the 0 bytes left"),
        (iloc_box(0, (3, 4, 0, 0), b"", 0), r"'iloc' box .*offset_size 3 is not 0, 4 or 8"),
        (iloc_box(1, (4, 4, 0, 0), struct.pack(">HHHH", 1, 3, 0, 0), 1), r"unknown construction_method 3"),
        (iloc_box(0, (4, 4, 0, 0), struct.pack(">HHH", 1, 0, 0xFFFF), 1), r"'iloc' box .*extent_count 65535"),
        (full("iloc", 3, 0, b""), r"unsupported iloc version 3"),
        (full("ipma", 0, 0, struct.pack(">I", 0xFFFFFFFF)), r"'ipma' box .*entry_count 4294967295"),
        (full("iref", 0, 0, box("dimg", struct.pack(">HH", 1, 500))), r"'dimg' box .*reference_count 500"),
        (full("pitm", 0, 0, b"\0"), r"'pitm' box .*item_ID of 2 bytes runs past the box end"),
    ],
)
def test_hostile_tables_are_named(child, message):
    if child[4:8] == b"ipma":
        child = box("iprp", box("ipco", b"") + child)
    with pytest.raises(DepthError, match=message):
        meta_with(child, iloc_box(0, (4, 4, 0, 0), b"", 0) if b"iloc" not in child else b"")


def test_ipma_index_beyond_ipco():
    ipma = full("ipma", 0, 0, struct.pack(">IHBB", 1, 1, 1, 0x85))
    with pytest.raises(DepthError, match=r"property 5 is beyond the 1 in ipco"):
        meta_with(box("iprp", box("ipco", full("irot", 0, 0, b"\0")) + ipma), iloc_box(0, (4, 4, 0, 0), b"", 0))


# ----------------------------------------------------------------------------------------------- files


def file_with(meta: Meta, payload: bytes) -> bytes:
    return isobmff.new_file(isobmff.FileType("heic", 0, ("mif1", "heic")), meta, payload)


def test_item_data_and_idat():
    heif = isobmff.parse_file(file_with(small_meta(), b"ABCDEFG"))
    assert isobmff.item_data(heif, 1) == b"ABCDEFG"
    assert isobmff.item_data(heif, 2) == b"DATA"


def test_item_extent_past_the_end():
    meta = small_meta()
    meta.locations[1].extents = [Extent(0, 50)]
    data = file_with(meta, b"ABCDEFG")
    with pytest.raises(DepthError, match=r"iloc: item 1 extent \d+\+50 runs past the end of the file"):
        isobmff.item_data(isobmff.parse_file(data), 1)


def test_overlapping_extents_cannot_multiply_an_item():
    """2000 extents over the same bytes made verify/inspect use 2.1 GB for a 1.1 MB HEIC."""
    meta = small_meta()
    meta.locations[1].extents = [Extent(0, 1000)] * 2000
    data = file_with(meta, bytes(1000))
    with pytest.raises(DepthError, match=r"iloc: item 1's extents add up to more than the \d+ bytes of the file"):
        isobmff.item_data(isobmff.parse_file(data), 1)


def test_rebuild_moves_extents_and_sizes_a_final_size_0_box():
    data = file_with(small_meta(), b"ABCDEFG")
    data = data[:-15] + struct.pack(">I", 0) + data[-11:]  # the mdat now says "to the end of file"
    heif = isobmff.parse_file(data)
    meta = heif.meta
    meta.items.append(ItemInfo(3, "Exif", 1))
    meta.locations[3] = Location(3, extents=[Extent(0, 5)])
    meta.order.insert(0, box("free", bytes(1000)))  # the meta grows: existing offsets must move
    out = isobmff.rebuild(heif, meta, b"EXIF!", frozenset({3}))
    again = isobmff.parse_file(out)
    assert [b.type for b in again.boxes] == ["ftyp", "meta", "mdat"]  # the last mdat grew: one mdat, as Apple writes
    assert struct.unpack_from(">I", out, again.boxes[2].offset)[0] == len(out) - again.boxes[2].offset
    assert [isobmff.item_data(again, i) for i in (1, 2, 3)] == [b"ABCDEFG", b"DATA", b"EXIF!"]


def test_rebuild_grows_the_last_mdat_before_a_trailing_box_and_cuts_unused_bytes():
    data = file_with(small_meta(), b"ABCDEFG") + box("free", b"tail")
    heif = isobmff.parse_file(data)
    first = heif.meta.locations[1].extents[0]
    heif.meta.remove_items({1})
    out = isobmff.rebuild(heif, heif.meta, b"NEW", frozenset(), ((first.offset + 2, first.offset + 5),))
    again = isobmff.parse_file(out)
    assert [b.type for b in again.boxes] == ["ftyp", "meta", "mdat", "free"]
    mdat = again.boxes[2]
    assert out[mdat.start : mdat.end] == b"ABFGNEW" and out.endswith(box("free", b"tail"))
    assert isobmff.item_data(again, 2) == b"DATA"


def test_rebuild_adds_an_mdat_after_a_last_meta_and_keeps_trailing_boxes_last():
    """A Samsung Motion Photo HEIC is ftyp, mdat, meta, free, mpvd (the video) and sefd (the SEFT trailer):
    readers find the video from the end of the file (its XMP's Item:Length) and the trailer at the very
    end, so the depth's new mdat goes before them.  It went after the trailer, which broke both."""
    ftyp = isobmff.FileType("heic", 0, ("mif1", "heic")).to_bytes()
    meta = small_meta()
    start = len(ftyp) + 8  # the mdat's payload comes first
    meta.locations[1].extents = [Extent(start, 4), Extent(start + 4, 3)]
    tail = box("free", bytes(16)) + box("mpvd", b"VIDEO") + box("sefd", b"SEFH...SEFT")
    heif = isobmff.parse_file(ftyp + box("mdat", b"ABCDEFG") + isobmff.meta_bytes(meta) + tail)
    heif.meta.items.append(ItemInfo(9, "hvc1"))
    heif.meta.locations[9] = Location(9, extents=[Extent(0, 3)])
    out = isobmff.rebuild(heif, heif.meta, b"NEW", frozenset({9}))
    again = isobmff.parse_file(out)
    assert [b.type for b in again.boxes] == ["ftyp", "mdat", "meta", "mdat", "free", "mpvd", "sefd"]
    assert out.endswith(tail)
    assert (isobmff.item_data(again, 1), isobmff.item_data(again, 9)) == (b"ABCDEFG", b"NEW")


def test_removing_items_drops_the_properties_only_they_used():
    """Replacing a HEIC's depth left its hvcC, ispe, pixi and auxC in ipco, unused: 1.16 → 2.38 MB in 4 replaces."""
    meta = small_meta(3)
    meta.associations[2] = [(3, False)]  # irot 2, shared with item 1
    meta.remove_items({1})
    assert meta.properties == [full("irot", 0, 0, bytes([2]))] and meta.associations == {2: [(1, False)]}


def test_iphone_meta_reserialises_byte_identical():
    data = sample("iphone13pro-pug.heic").read_bytes()
    heif = isobmff.parse_file(data)
    assert isobmff.meta_bytes(heif.meta) == data[heif.meta_box.offset : heif.meta_box.end]
    assert len(heif.meta.items) == 55 and heif.meta.primary == 49
    assert isobmff.rebuild(heif, heif.meta) == data


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_files_raise_only_depth_error(data):
    original = bytearray(file_with(small_meta(3), b"ABCDEFG"))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(8, len(original)))
    try:
        heif = isobmff.parse_file(bytes(original[:cut]))
        for item in heif.meta.items:
            if item.item_id in heif.meta.locations:
                isobmff.item_data(heif, item.item_id)
            heif.meta.item_properties(item.item_id)
        isobmff.rebuild(heif, heif.meta)
    except DepthError:
        pass


def test_zero_byte_extents_are_bounded():
    """iloc with 0-byte offset/length fields: 2000 items x 65535 extents in 12 kB took 131 s and 15 GiB."""
    items = b"".join(struct.pack(">HHH", item_id, 0, 0xFFFF) for item_id in range(1, 2001))
    with pytest.raises(DepthError, match=r"'iloc' box .*extent_count 65535 takes the table past 65536 entries"):
        meta_with(iloc_box(0, (0, 0, 0, 0), items, 2000))
    one = iloc_box(0, (0, 0, 0, 0), struct.pack(">HHH", 1, 0, 3), 1)  # legal: three whole-file extents
    assert meta_with(one).locations[1].extents == [Extent(0, 0)] * 3


def test_box_count_is_bounded():
    """1M empty boxes in ipco took seconds and hundreds of MiB per 8 MB; a parent holds at most 65536."""
    many = box("ipco", box("free", b"") * (isobmff.MAX_ENTRIES + 1))
    with pytest.raises(DepthError, match=r"'ipco' box at offset \d+: more than 65536 boxes"):
        meta_with(box("iprp", many), iloc_box(0, (4, 4, 0, 0), b"", 0))


def test_ipma_associations_are_bounded():
    entries = b"".join(struct.pack(">HB", item_id, 255) + bytes(255) for item_id in range(1, 260))
    ipma = full("ipma", 0, 0, struct.pack(">I", 259) + entries)
    with pytest.raises(DepthError, match=r"'ipma' box .*association_count 255 takes the table past 65536"):
        meta_with(box("iprp", box("ipco", b"") + ipma), iloc_box(0, (4, 4, 0, 0), b"", 0))


# ----------------------------------------------------------------------------------------------- head


def _reader(data: bytes, reads: list[tuple[int, int]]):
    def read(offset: int, length: int) -> bytes:
        assert 0 <= offset and 0 <= length <= len(data) - offset  # never past the file
        reads.append((offset, length))
        return data[offset : offset + length]

    return read


def _photo_with_mdat(meta_first: bool) -> bytes:
    meta = isobmff.meta_bytes(small_meta())
    mdat = box("mdat", bytes(100_000))
    return FTYP + (meta + mdat if meta_first else mdat + meta) + box("free", b"")


@pytest.mark.parametrize("meta_first", [True, False])
def test_the_head_of_a_file_holds_its_item_tables_and_its_media_data_is_not_read(meta_first):
    """The pipeline's driver read each 5 MB photo whole to learn its size from a few KB of meta."""
    data, reads = _photo_with_mdat(meta_first), []
    head = isobmff.read_head(_reader(data, reads), len(data))
    assert tables(isobmff.parse_file(head).meta) == tables(isobmff.parse_file(data).meta)
    assert sum(length for _, length in reads) <= len(FTYP) + len(isobmff.meta_bytes(small_meta())) + 4 * 16


def test_the_head_of_an_iphone_heic_gives_its_size_and_orientation():
    from gpu_depth.containers.heic import plugin as heic

    data = sample("iphone13pro-pug.heic").read_bytes()
    head, reads = isobmff.read_head(_reader(data, reads := []), len(data)), reads
    assert (heic.displayed_size(head), heic.orientation(head)) == (heic.displayed_size(data), heic.orientation(data))
    assert sum(length for _, length in reads) < len(data) // 20


@pytest.mark.parametrize(
    "data",
    [
        _photo_with_mdat(True)[:-3],  # 5 trailing bytes
        _photo_with_mdat(True)[:-20],  # the mdat runs past the end
        box("free", b"") + _photo_with_mdat(True),  # no ftyp first
        FTYP + box("mdat", b"x"),  # no meta
        _photo_with_mdat(True) + isobmff.full_box_bytes("meta", 0, 0, b""),  # two
        FTYP + struct.pack(">I4sQ", 1, b"mdat", 2**40),  # a 64-bit size beyond the file
    ],
)
def test_the_head_of_a_broken_file_fails_as_the_whole_file_does(data):
    with pytest.raises(DepthError) as whole:
        isobmff.parse_file(data)
    with pytest.raises(DepthError, match=f"^{re.escape(str(whole.value))}$"):
        isobmff.read_head(_reader(data, []), len(data))


def _outcome(parse, data):
    try:
        return tables(parse(data).meta)
    except DepthError as exc:
        return str(exc)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_head_of_any_mutated_file_parses_as_the_whole_file_does(data):
    """Mutations of the top-level box headers and of meta: same item tables or the same error, offsets included."""
    photo = bytearray(_photo_with_mdat(True))
    end = len(FTYP) + len(isobmff.meta_bytes(small_meta())) + 16  # ftyp, meta and the mdat's header
    for _ in range(data.draw(st.integers(1, 4))):
        photo[data.draw(st.integers(0, end - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del photo[data.draw(st.integers(0, len(photo))) :]
    photo = bytes(photo)
    head = lambda raw: isobmff.parse_file(isobmff.read_head(_reader(raw, []), len(raw)))  # noqa: E731
    assert _outcome(head, photo) == _outcome(isobmff.parse_file, photo)
