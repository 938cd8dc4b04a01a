"""The strict TIFF IFD reader and the IFD writer: real files from tifffile, hostile ones built inline."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpu_depth.containers.dng.tiff import (
    ASCII,
    BYTE,
    LONG,
    MAX_IFDS,
    RATIONAL,
    SHORT,
    SUBIFDS,
    TiffFile,
    TiffFormat,
    make_entry,
    pack_ifd,
)
from gpu_depth.errors import DepthError


def tifffile_bytes(byteorder: str, **options) -> bytes:
    """Two pages, the first with one SubIFD, written by tifffile."""
    stream = io.BytesIO()
    with tifffile.TiffWriter(stream, byteorder=byteorder) as tif:
        tif.write(np.arange(12 * 8, dtype=np.uint16).reshape(12, 8), subifds=1, **options)
        tif.write(np.ones((6, 4), np.uint8), **options)
        tif.write(np.zeros((3, 5), np.uint8), **options)
    return stream.getvalue()


def tiny_tiff(byteorder: str, ifds: list[tuple[list[tuple[int, int, int, bytes]], int]]) -> bytes:
    """A header and IFDs laid out one after another from offset 8: [(entries, next offset)]."""
    out = bytearray(TiffFormat(byteorder).header(8))
    for entries, next_offset in ifds:
        out += struct.pack(byteorder + "H", len(entries))
        for tag, type_, count, field in entries:
            out += struct.pack(byteorder + "HHI", tag, type_, count) + field.ljust(4, b"\0")
        out += struct.pack(byteorder + "I", next_offset)
    return bytes(out)


def one_ifd(byteorder: str = "<", *entries: tuple[int, int, int, bytes], next_offset: int = 0) -> bytes:
    return tiny_tiff(byteorder, [([(256, SHORT, 1, struct.pack(byteorder + "H", 7)), *entries], next_offset)])


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("tile", [None, (16, 16)])
def test_walk_reads_the_chain_and_the_subifds_of_tifffile_output(byteorder, tile):
    tiff = TiffFile(tifffile_bytes(byteorder, tile=tile))
    ifds = tiff.walk()
    assert [ifd.name for ifd in ifds] == ["IFD0", "IFD0.SubIFD0", "IFD1"]
    assert tiff.integers(ifds[0], 256) == (8,) and tiff.integers(ifds[0], 257) == (12,)
    assert tiff.integers(ifds[2], 256) == (5,) and tiff.integers(ifds[2], 257) == (3,)
    assert tiff.format.byteorder == byteorder
    assert SUBIFDS in ifds[0] and SUBIFDS not in ifds[2]


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_pack_ifd_round_trips_through_our_reader_and_tifffile(byteorder):
    fmt = TiffFormat(byteorder)
    pixels = np.arange(6, dtype=byteorder + "u2").reshape(2, 3)
    data_offset = 8
    entries = [
        make_entry(fmt, 305, ASCII, b"gpu_depth\0"),
        make_entry(fmt, 256, LONG, [3]),
        make_entry(fmt, 257, LONG, [2]),
        make_entry(fmt, 258, SHORT, [16]),
        make_entry(fmt, 262, SHORT, [1]),
        make_entry(fmt, 273, LONG, [data_offset]),
        make_entry(fmt, 278, LONG, [2]),
        make_entry(fmt, 279, LONG, [pixels.nbytes]),
        make_entry(fmt, 282, RATIONAL, [(72, 1)]),
        make_entry(fmt, 283, RATIONAL, [(300, 4)]),
    ]
    at = data_offset + pixels.nbytes
    data = fmt.header(at) + pixels.tobytes() + pack_ifd(fmt, entries, at)

    tiff = TiffFile(data)
    (ifd,) = tiff.walk()
    assert list(ifd.entries) == sorted(entry.tag for entry in entries)
    assert tiff.values(ifd, 283) == ((300, 4),)
    assert bytes(ifd.entries[305].value) == b"gpu_depth\0"
    assert np.array_equal(tifffile.imread(io.BytesIO(data)), pixels)


def test_pack_ifd_keeps_the_value_field_of_entries_read_from_the_file():
    tiff = TiffFile(tifffile_bytes("<"))
    ifd0 = tiff.walk()[0]
    moved = pack_ifd(tiff.format, ifd0.entries.values(), 4096, ifd0.next_offset)
    for index, entry in enumerate(sorted(ifd0.entries.values(), key=lambda e: e.tag)):
        assert moved[2 + 12 * index + 8 : 2 + 12 * index + 12] == entry.field
    assert len(moved) == 2 + 12 * len(ifd0.entries) + 4  # nothing new to place


def test_make_entry_refuses_values_its_type_cannot_hold():
    with pytest.raises(DepthError, match="cannot store"):
        make_entry(TiffFormat("<"), 256, SHORT, [70000])


def test_pack_ifd_refuses_an_odd_offset():
    with pytest.raises(DepthError, match="even offset"):
        pack_ifd(TiffFormat("<"), [make_entry(TiffFormat("<"), 256, SHORT, [1])], 9)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"II*", "not a TIFF"),
        (b"GIF89a\0\0\0\0", "not a TIFF"),
        (b"II+\0\x08\0\0\0" + bytes(16), "BigTIFF"),
        (b"MM\0+\0\x08\0\0" + bytes(16), "BigTIFF"),
        (b"II*\0\xff\xff\0\0", "IFD0 offset 65535 is outside"),
        (b"II*\0\x04\0\0\0", "IFD0 offset 4 is outside"),
        (b"II*\0\x08\0\0\0\x05\0" + bytes(20), "5 entries do not fit"),
        (b"II*\0\x08\0\0\0\0\0\0\0\0\0", "0 entries"),
    ],
)
def test_broken_headers_and_ifds_are_refused(data, message):
    with pytest.raises(DepthError, match=message):
        TiffFile(data).walk()


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_a_value_past_the_end_of_the_file_names_ifd_tag_and_offset(byteorder):
    data = one_ifd(byteorder, (305, ASCII, 40, struct.pack(byteorder + "I", 10_000)))
    with pytest.raises(DepthError, match=r"IFD0 tag 305 @\d+: 40 ASCII values at offset 10000 run past the end"):
        TiffFile(data).walk()


def test_a_huge_count_is_refused_before_any_allocation():
    data = one_ifd("<", (273, LONG, 0xFFFFFFFF, struct.pack("<I", 8)))
    with pytest.raises(DepthError, match=r"IFD0 tag 273 \(StripOffsets\) @\d+: 4294967295 LONG values"):
        TiffFile(data).walk()


@pytest.mark.parametrize("bad_type", [0, 14, 16, 99])
def test_unknown_field_types_are_refused(bad_type):
    with pytest.raises(DepthError, match=f"IFD0 tag 305 @22: unknown field type {bad_type}"):
        TiffFile(one_ifd("<", (305, bad_type, 1, b"x"))).walk()


def test_a_repeated_tag_is_refused():
    with pytest.raises(DepthError, match=r"tag 256 .* appears twice"):
        TiffFile(one_ifd("<", (256, SHORT, 1, b"\x01\0"))).walk()


def test_an_ifd_chain_looping_to_itself_is_refused():
    with pytest.raises(DepthError, match="IFD1 at offset 8 leads back to itself: the IFDs form a loop"):
        TiffFile(one_ifd("<", next_offset=8)).walk()


def test_a_subifd_pointing_back_to_ifd0_is_refused():
    data = one_ifd(">", (SUBIFDS, LONG, 1, struct.pack(">I", 8)))
    with pytest.raises(DepthError, match=r"IFD0\.SubIFD0 at offset 8 leads back to itself"):
        TiffFile(data).walk()


def test_subifds_must_hold_integer_offsets():
    data = one_ifd("<", (SUBIFDS, ASCII, 2, b"a\0"))
    with pytest.raises(DepthError, match=r"SubIFDs.*not an integer type"):
        TiffFile(data).walk()


def test_a_long_chain_is_bounded():
    count = MAX_IFDS + 1
    size = 2 + 12 + 4
    ifds = [([(256, SHORT, 1, b"\x01\0")], 8 + (i + 1) * size if i + 1 < count else 0) for i in range(count)]
    with pytest.raises(DepthError, match=f"more than {MAX_IFDS} IFDs"):
        TiffFile(tiny_tiff("<", ifds)).walk()


def test_deeply_nested_subifds_are_bounded():
    size = 2 + 2 * 12 + 4
    ifds = [
        ([(256, SHORT, 1, b"\x01\0"), (SUBIFDS, LONG, 1, struct.pack("<I", 8 + (i + 1) * size))], 0) for i in range(8)
    ]
    with pytest.raises(DepthError, match="nested deeper"):
        TiffFile(tiny_tiff("<", ifds)).walk()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_files_raise_only_depth_error(data):
    original = bytearray(tifffile_bytes(data.draw(st.sampled_from("<>"))))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(original)))
    try:
        tiff = TiffFile(bytes(original[: cut or len(original)]))
        for ifd in tiff.walk():
            for tag in ifd.entries:
                tiff.values(ifd, tag)
    except DepthError:
        pass


def test_the_entries_of_all_ifds_together_are_bounded():
    """256 IFDs of 65535 entries (200 MB) would take about a minute to list; a file may hold 65536 entries."""
    entries = [(tag, SHORT, 1, b"\x01\0") for tag in range(400, 40_400)]
    size = 2 + 12 * len(entries) + 4
    data = tiny_tiff("<", [(entries, 8 + size), (entries, 0)])
    with pytest.raises(DepthError, match="IFD1 @480014: its 40000 entries take the file past 65536 entries"):
        TiffFile(data).walk()


def test_values_are_counted_before_they_are_decoded():
    """2M BYTE values in one entry became a 2M-element tuple before any size check."""
    data = one_ifd("<", (300, BYTE, 2_000_000, struct.pack("<I", 8)))
    data += bytes(2_000_000)
    tiff = TiffFile(data)
    (ifd,) = tiff.walk()
    with pytest.raises(DepthError, match=r"IFD0 tag 300: 2000000 values, more than the 1048576 allowed"):
        tiff.integers(ifd, 300)
    assert len(tiff.integers(ifd, 256)) == 1


def test_more_subifds_than_ifds_are_refused_before_decoding():
    data = one_ifd("<", (SUBIFDS, LONG, MAX_IFDS + 1, struct.pack("<I", 8)))
    data += bytes(4 * (MAX_IFDS + 1))
    with pytest.raises(DepthError, match=rf"tag 330 \(SubIFDs\): {MAX_IFDS + 1} values, more than the {MAX_IFDS}"):
        TiffFile(data).walk()
