"""A strict JPEG segment parser: every marker looked up, every length checked, entropy-coded data skipped.

The parser walks one image from SOI to EOI (RST markers and 0xFF00 stuffing inside the scans, fill
bytes before markers, progressive files with several scans) and never reads past ``stop``.  Errors
are :class:`DepthError` lines naming the marker and its file offset.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from ...errors import DepthError

SOI, EOI, SOS, TEM = 0xD8, 0xD9, 0xDA, 0x01
APP0, APP1, APP2 = 0xE0, 0xE1, 0xE2
#: Frame headers (SOF0-SOF15 less DHT, JPG and DAC), which hold the image's size, and the lossless ones.
SOF_MARKERS = frozenset(0xC0 + n for n in range(16) if n not in (4, 8, 12))
LOSSLESS_SOF_MARKERS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})
#: Identifiers that open an APP1 XMP and an APP1 Exif payload.
XMP_ID = b"http://ns.adobe.com/xap/1.0/\0"
EXIF_ID = b"Exif\0\0"

#: Every marker JPEG (ITU T.81) defines, by the byte after 0xFF.
MARKERS: dict[int, str] = {
    TEM: "TEM",
    **{marker: f"SOF{marker - 0xC0}" for marker in sorted(SOF_MARKERS)},
    0xC4: "DHT",
    0xC8: "JPG",
    0xCC: "DAC",
    **{0xD0 + n: f"RST{n}" for n in range(8)},
    SOI: "SOI",
    EOI: "EOI",
    SOS: "SOS",
    0xDB: "DQT",
    0xDC: "DNL",
    0xDD: "DRI",
    0xDE: "DHP",
    0xDF: "EXP",
    **{0xE0 + n: f"APP{n}" for n in range(16)},
    **{0xF0 + n: f"JPG{n}" for n in range(14)},
    0xFE: "COM",
}
#: Markers without a length field.
STANDALONE = frozenset({TEM, SOI, EOI, *range(0xD0, 0xD8)})
#: Most payload bytes a segment holds (its 16-bit length counts itself).
MAX_SEGMENT_PAYLOAD = 65533
#: Most markers read in one image (cameras write a few dozen; progressive files a few more scans).
MAX_MARKERS = 1 << 16

#: The end of entropy-coded data: 0xFF followed by anything but stuffing (00), RSTn or a fill byte.
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
#: A marker's 0xFF and the fill bytes (more 0xFF) that may precede it.
_FILL = re.compile(rb"\xff+")


@dataclass(frozen=True)
class Segment:
    """A marker segment: ``offset`` of its 0xFF byte, ``end`` one past its last byte."""

    marker: int
    offset: int
    end: int

    @property
    def name(self) -> str:
        return MARKERS[self.marker]

    def payload(self, data: bytes) -> bytes:
        """The bytes after the length field."""
        return data[self.offset + 4 : self.end]


@dataclass(frozen=True)
class Frame:
    """What a start-of-frame segment says: size, sample precision, components, and which SOF it is."""

    width: int
    height: int
    bits: int
    components: int
    marker: int

    @property
    def lossless(self) -> bool:
        return self.marker in LOSSLESS_SOF_MARKERS


@dataclass(frozen=True)
class JpegImage:
    """One JPEG in a file: SOI at ``start``, EOI ending at ``end``, its marker segments in order."""

    start: int
    end: int
    segments: tuple[Segment, ...]

    @property
    def header(self) -> tuple[Segment, ...]:
        """The segments before the first scan (where APPn metadata lives)."""
        first_scan = next((i for i, s in enumerate(self.segments) if s.marker == SOS), len(self.segments))
        return self.segments[:first_scan]

    def after_leading_apps(self) -> int:
        """Offset after the leading APP0/APP1 run (JFIF, Exif, XMP): where iPhones put the MPF segment."""
        at = self.start + 2
        for seg in self.header:
            if seg.marker not in (APP0, APP1):
                break
            at = seg.end
        return at

    def applications(self, data: bytes, marker: int, identifier: bytes) -> list[Segment]:
        """The header's ``marker`` segments whose payload starts with ``identifier``."""
        return [s for s in self.header if s.marker == marker and data.startswith(identifier, s.offset + 4, s.end)]

    def xmp_packets(self, data: bytes) -> list[bytes]:
        """The packets of the header's APP1 XMP segments, in order."""
        return [s.payload(data)[len(XMP_ID) :] for s in self.applications(data, APP1, XMP_ID)]

    def frame(self, data: bytes) -> Frame | None:
        """The image's first complete start-of-frame segment, or None."""
        for seg in self.header:
            payload = seg.payload(data)
            if seg.marker in SOF_MARKERS and len(payload) >= 6:
                bits, height, width, components = struct.unpack_from(">BHHB", payload)
                return Frame(width, height, bits, components, seg.marker)
        return None


def parse_jpeg(data: bytes, start: int = 0, stop: int | None = None) -> JpegImage:
    """The JPEG image starting at ``start`` (its SOI), read no further than ``stop``."""
    stop = len(data) if stop is None else min(stop, len(data))
    if data[start : start + 2] != b"\xff\xd8" or start + 2 > stop:
        raise DepthError(f"no JPEG SOI marker at offset {start}")
    segments = []
    pos = start + 2
    for _ in range(MAX_MARKERS):
        pos, marker = _next_marker(data, pos, stop)
        name = MARKERS.get(marker)
        if name is None:
            raise DepthError(f"JPEG: unknown marker 0xFF{marker:02X} at offset {pos}")
        if marker == EOI:
            return JpegImage(start, pos + 2, tuple(segments))
        if marker == TEM:
            pos += 2
            continue
        if marker in STANDALONE:
            raise DepthError(f"JPEG: unexpected {name} marker at offset {pos}")
        segment = _segment_at(data, pos, stop, marker)
        segments.append(segment)
        pos = _scan_end(data, segment, stop) if marker == SOS else segment.end
    raise DepthError(f"JPEG at offset {start}: more than {MAX_MARKERS} markers before offset {pos}")


def segment(marker: int, payload: bytes) -> bytes:
    """The bytes of a marker segment holding ``payload``."""
    if len(payload) > MAX_SEGMENT_PAYLOAD:
        raise DepthError(f"{MARKERS[marker]} payload of {len(payload)} bytes exceeds {MAX_SEGMENT_PAYLOAD}")
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _next_marker(data: bytes, pos: int, stop: int) -> tuple[int, int]:
    """Offset and code of the marker at ``pos``, skipping 0xFF fill bytes."""
    if pos >= stop:
        raise DepthError(f"JPEG: data ends at offset {stop} before the EOI marker")
    fill = _FILL.match(data, pos, stop)
    if fill is None:
        raise DepthError(f"JPEG: expected a marker at offset {pos}, found byte 0x{data[pos]:02X}")
    pos = fill.end() - 1
    if pos + 1 >= stop:
        raise DepthError(f"JPEG: data ends at offset {stop} inside a marker")
    return pos, data[pos + 1]


def _segment_at(data: bytes, pos: int, stop: int, marker: int) -> Segment:
    name = MARKERS[marker]
    if pos + 4 > stop:
        raise DepthError(f"JPEG: {name} segment at offset {pos} is truncated before its length field")
    (length,) = struct.unpack_from(">H", data, pos + 2)
    if length < 2:
        raise DepthError(f"JPEG: {name} segment at offset {pos} has length {length} (less than 2)")
    if pos + 2 + length > stop:
        raise DepthError(
            f"JPEG: {name} segment at offset {pos} of length {length} runs past the end of the data at offset {stop}"
        )
    return Segment(marker, pos, pos + 2 + length)


def _scan_end(data: bytes, sos: Segment, stop: int) -> int:
    """Offset of the first marker after the entropy-coded data that follows ``sos``."""
    match = _SCAN_END.search(data, sos.end, stop)
    if match is None:
        raise DepthError(f"JPEG: entropy-coded data after the SOS at offset {sos.offset} runs to offset {stop}")
    return match.start()
