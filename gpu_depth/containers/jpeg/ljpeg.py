"""Lossless JPEG (ITU-T T.81 Annex H, SOF3) of one-component maps: Huffman-coded prediction differences.

iPhones store a depth map as 16-bit lossless JPEG when it is unfiltered or holds NaN (WWDC 2017; recent
ones do so inside HEIC too, libheif issue #910), and gpu_depth writes its JPEG depth images so by default,
since they read back exactly.  :func:`encode` uses predictor 1 (the left neighbour) and a Huffman table
made for the image (Annex K.2), its codes counted and packed in C (``_ljpeg.c``, built with the package
where a C compiler is at hand) or else in NumPy, into 32-bit words by a bincount: both give the same bytes.
:func:`decode` reads predictors 1-7, a point transform and restart intervals of whole lines, in C or else
in NumPy, which finds where each code starts by following a table of code lengths indexed by bit position:
both give the same samples and refuse corrupt data with the same error.  (libjpeg-turbo, which decodes
SOF3 too, goes on past truncated or corrupt data with made-up samples and a warning nobody sees.)

Predictor 1 is the one every lossless-JPEG reader meets most (DNG writers use it too).  Predictor 4
(Ra + Rb − Rc) would code smooth depth maps 1.2-2.2× smaller (measured with libjpeg-turbo on the
example scene and the benchmark's map), but which predictors Apple's reader takes is unconfirmed.
"""

from __future__ import annotations

import functools
import struct
from array import array
from typing import NamedTuple

import numpy as np

from ... import limits
from ...errors import DepthError
from .segments import SOS, JpegImage, segment

try:
    from . import _ljpeg as _compiled  # the C codec, where the package was built with a C compiler
except ImportError:
    _compiled = None

SOF3, DHT, DRI = 0xC3, 0xC4, 0xDD
#: Difference categories SSSS 0-16; category 16 is the difference 32768 and has no extra bits.
CATEGORIES = 17
MAX_CODE_LENGTH = 16
#: Prediction and differences are computed modulo 2^16 (H.1.2.1).
MASK = 0xFFFF
#: Samples coded or decoded at once: small enough for their temporaries to stay in cache.
_CHUNK_SAMPLES = 1 << 15


def encode(samples: np.ndarray) -> bytes:
    """``samples`` (2-D uint8 or uint16) as a lossless JPEG of their bit depth: SOI, DHT, SOF3, SOS, data, EOI."""
    if (
        samples.ndim != 2
        or samples.dtype not in (np.uint8, np.uint16)
        or not 0 < min(samples.shape) <= max(samples.shape) <= 0xFFFF
    ):
        got = f"{'x'.join(map(str, samples.shape))} {samples.dtype}"
        raise DepthError(f"a lossless JPEG holds a 2-D uint8/uint16 map of at most 65535 a side, not {got}")
    precision = 8 * samples.dtype.itemsize
    height, width = samples.shape
    differences = _differences(samples.astype(np.uint16), precision).ravel()
    counts = _category_counts(differences)
    bits, values, codes, code_lengths = _huffman_table(counts)
    lengths = code_lengths.take(_CATEGORY) + _EXTRA_LENGTH  # take: 3x faster than indexing by uint8
    symbols = ((codes.take(_CATEGORY) << _EXTRA_LENGTH) | _EXTRA).astype(np.uint64)
    total = int(counts @ (code_lengths + _CATEGORY_EXTRA_LENGTH))
    pack = _pack if _compiled is None else _compiled.pack
    entropy = pack(differences, symbols, lengths, total)
    frame = struct.pack(">BHHBBBB", precision, height, width, 1, 1, 0x11, 0)
    scan = bytes([1, 1, 0x00, 1, 0, 0])  # one component, table 0, predictor 1, Se 0, no point transform
    return (
        b"\xff\xd8"
        + segment(DHT, b"\x00" + bytes(bits) + bytes(values))
        + segment(SOF3, frame)
        + segment(SOS, scan)
        + entropy
        + b"\xff\xd9"
    )


def _differences(x: np.ndarray, precision: int) -> np.ndarray:
    """Each sample less its predictor-1 prediction, modulo 2^16 (uint16 arithmetic wraps)."""
    predicted = np.empty_like(x)
    predicted[0, 0] = 1 << (precision - 1)
    predicted[0, 1:] = x[0, :-1]
    predicted[1:, 0] = x[:-1, 0]
    predicted[1:, 1:] = x[1:, :-1]
    return x - predicted


def _category_counts(differences: np.ndarray) -> np.ndarray:
    """How many of ``differences`` (uint16) fall in each category: in C where built, else by a histogram of
    their 65536 values (faster in NumPy than looking each one's category up)."""
    if _compiled is None:
        return np.bincount(_CATEGORY, np.bincount(differences, minlength=1 << 16), CATEGORIES).astype(np.int64)
    counts = np.empty(CATEGORIES, np.int64)
    _compiled.categories(differences, _CATEGORY, counts)
    return counts


def _difference_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each difference modulo 2^16: its category SSSS, its extra bits and their number (H.1.2.2)."""
    modular = np.arange(1 << 16, dtype=np.int64)
    signed = np.where(modular > 0x8000, modular - 0x10000, modular)
    category = np.frexp(np.abs(signed).astype(np.float64))[1].astype(np.int64)  # bit length of |difference|
    length = np.where(category == 16, 0, category)
    extra = np.where(signed < 0, signed - 1, signed) & ((1 << length) - 1)
    return category.astype(np.uint8), extra, length


_CATEGORY, _EXTRA, _EXTRA_LENGTH = _difference_tables()
#: The extra bits each category's differences have.
_CATEGORY_EXTRA_LENGTH = np.zeros(CATEGORIES, np.int64)
_CATEGORY_EXTRA_LENGTH[_CATEGORY] = _EXTRA_LENGTH


def _huffman_table(counts: np.ndarray) -> tuple[list[int], list[int], np.ndarray, np.ndarray]:
    """DHT's BITS and HUFFVAL for these category counts (T.81 K.2), and each category's code and length."""
    sizes = _code_sizes([int(count) for count in counts])
    bits = [0] * (max(sizes) + 1)
    for size in sizes:
        bits[size] += 1
    bits[0] = 0
    for i in range(len(bits) - 1, MAX_CODE_LENGTH, -1):  # K.3: no code longer than 16 bits
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    bits = (bits + [0] * MAX_CODE_LENGTH)[1 : MAX_CODE_LENGTH + 1]
    bits[max(i for i, n in enumerate(bits) if n)] -= 1  # drop the reserved all-ones code
    values = sorted((v for v in range(CATEGORIES) if sizes[v]), key=lambda v: (sizes[v], v))
    codes, lengths = np.zeros(CATEGORIES, np.int64), np.zeros(CATEGORIES, np.int64)  # length 0: category absent
    for value, code, length in _canonical_codes(bits, values, "lossless JPEG encoder"):
        codes[value], lengths[value] = code, length
    return bits, values, codes, lengths


def _code_sizes(frequencies: list[int]) -> list[int]:
    """Huffman code size of each symbol (T.81 Figure K.1) and last of a reserved one, so no code is all ones."""
    frequencies = [*frequencies, 1]
    sizes = [0] * len(frequencies)
    others = [-1] * len(frequencies)
    while True:
        live = sorted((v for v, f in enumerate(frequencies) if f), key=lambda v: (frequencies[v], -v))
        if len(live) < 2:
            return sizes
        v1, v2 = live[:2]
        frequencies[v1] += frequencies[v2]
        frequencies[v2] = 0
        v = v1
        sizes[v] += 1
        while others[v] >= 0:
            v = others[v]
            sizes[v] += 1
        others[v] = v2
        v = v2
        sizes[v] += 1
        while others[v] >= 0:
            v = others[v]
            sizes[v] += 1


def _canonical_codes(bits: list[int], values: list[int], where: str) -> list[tuple[int, int, int]]:
    """(category, code, length) of each HUFFVAL entry, codes assigned in order as T.81 Annex C does."""
    assigned, code = [], 0
    for length, count in enumerate(bits, 1):
        for value in values[len(assigned) : len(assigned) + count]:
            if value >= CATEGORIES or code >= 1 << length:
                raise DepthError(f"{where}: code {len(assigned)} ({value}) is not a valid lossless-JPEG Huffman code")
            assigned.append((value, code, length))
            code += 1
        code <<= 1
    return assigned


def _pack(differences: np.ndarray, symbols: np.ndarray, lengths: np.ndarray, total: int) -> bytes:
    """The codes of ``differences`` (``symbols``/``lengths`` of each, ``total`` bits) padded with ones, 0xFF stuffed.

    Codes (at most 31 bits) are placed into 32-bit words a chunk at a time, small enough to stay in cache.
    The fields of a word are disjoint, so their sum (exact in float64, below 2^53) is their bitwise or.
    """
    packed = np.zeros((total >> 5) + 2)
    start = 0
    for first in range(0, len(differences), _CHUNK_SAMPLES):
        chunk = differences[first : first + _CHUNK_SAMPLES]
        length = lengths[chunk]
        ends = np.cumsum(length) + start
        starts = ends - length
        words = starts >> 5
        placed = symbols[chunk] << (64 - (starts & 31) - length).astype(np.uint64)
        base, span = int(words[0]), int(words[-1] - words[0]) + 2
        packed[base : base + span] += np.bincount(words - base, placed >> np.uint64(32), span)
        packed[base : base + span] += np.bincount(words - base + 1, placed & np.uint64(0xFFFFFFFF), span)
        start = int(ends[-1])
    coded = bytearray(packed.astype(">u4").tobytes()[: -(-total // 8)])
    if total % 8:
        coded[-1] |= 0xFF >> (total % 8)
    return bytes(coded).replace(b"\xff", b"\xff\x00")


def compiled() -> bool:
    """Whether :func:`encode` and :func:`decode` run in C (else in NumPy)."""
    return _compiled is not None


def decode(data: bytes, image: JpegImage) -> np.ndarray:
    """The samples of the one-component lossless JPEG ``image`` in ``data``: uint8 to 8 bits, else uint16."""
    where = f"lossless JPEG at offset {image.start}"
    tables: dict[int, _Table] = {}
    frame, restart = None, 0
    for position, seg in enumerate(image.segments):
        payload = seg.payload(data)
        if seg.marker == DHT:
            tables.update(_read_tables(payload, f"{where}: DHT at offset {seg.offset}"))
        elif seg.marker == SOF3:
            frame = _read_frame(payload, f"{where}: SOF3 at offset {seg.offset}")
        elif seg.marker == DRI and len(payload) >= 2:
            (restart,) = struct.unpack_from(">H", payload)
        elif seg.marker == SOS:
            if frame is None:
                raise DepthError(f"{where}: SOS at offset {seg.offset} comes before the SOF3 frame header")
            following = image.segments[position + 1 :]
            if any(s.marker == SOS for s in following):
                raise DepthError(f"{where}: more than one scan (only one-component images are read)")
            end = following[0].offset if following else image.end - 2
            scan = _Scan(payload, frame, tables, restart, f"{where}: SOS at {seg.offset}")
            return scan.checked(scan.decode(data[seg.end : end], len(data)))
    raise DepthError(f"{where}: no SOF3 frame header and scan")


class _Table(NamedTuple):
    """A lossless Huffman table: for every 16-bit window, the length of the code it starts with (0: none) and
    that code's category, apart and packed (``length | category << 8``, for the C decoder)."""

    lengths: np.ndarray
    categories: np.ndarray
    lookup: np.ndarray


def _read_tables(payload: bytes, where: str) -> dict[int, _Table]:
    """The DC/lossless Huffman tables of a DHT payload, by number."""
    tables, pos = {}, 0
    while pos < len(payload):
        if pos + 17 > len(payload):
            raise DepthError(f"{where}: table header truncated at byte {pos} of {len(payload)}")
        kind, bits = payload[pos], list(payload[pos + 1 : pos + 17])
        values = list(payload[pos + 17 : pos + 17 + sum(bits)])
        if len(values) < sum(bits):
            raise DepthError(f"{where}: table lists {sum(bits)} codes but {len(values)} values remain")
        if kind >> 4 == 0:
            tables[kind & 15] = _table_of(tuple(_canonical_codes(bits, values, where)))
        pos += 17 + len(values)
    return tables


@functools.lru_cache(maxsize=16)  # files of one writer share their tables
def _table_of(codes: tuple[tuple[int, int, int], ...]) -> _Table:
    """The lookup table of canonical ``codes``."""
    lengths, categories = np.zeros(1 << 16, np.int32), np.zeros(1 << 16, np.int32)
    for value, code, length in codes:
        span = slice(code << (16 - length), (code + 1) << (16 - length))
        lengths[span], categories[span] = length, value
    lookup = (lengths | categories << 8).astype(np.uint16)
    for table in (lengths, categories, lookup):
        table.flags.writeable = False  # shared by every file of these tables
    return _Table(lengths, categories, lookup)


def _read_frame(payload: bytes, where: str) -> tuple[int, int, int]:
    """(precision, height, width) of a one-component SOF3 frame header."""
    if len(payload) < 9:
        raise DepthError(f"{where}: frame header of {len(payload)} bytes, 9 needed")
    precision, height, width, components = struct.unpack_from(">BHHB", payload)
    if components != 1:
        raise DepthError(f"{where}: {components} components; only one-component maps are read")
    if not 2 <= precision <= 16:
        raise DepthError(f"{where}: sample precision {precision} is outside 2..16")
    limits.check_pixels(width, height, where)
    return precision, height, width


class _Scan:
    """A one-component scan's parameters, checked: its Huffman table, predictor, point transform and
    lines per restart interval; it splits its data into intervals and decodes them."""

    def __init__(self, header: bytes, frame: tuple[int, int, int], tables: dict[int, _Table], restart: int, where):
        self.precision, self.height, self.width = frame
        self.where = where
        if len(header) < 6 or header[0] != 1:
            raise DepthError(f"{where}: scan header must name one component")
        table, self.predictor, self.transform = header[2] >> 4, header[3], header[5] & 15
        if table not in tables:
            raise DepthError(f"{where}: Huffman table {table} is not defined")
        if not 1 <= self.predictor <= 7 or self.transform >= self.precision:
            raise DepthError(f"{where}: predictor {self.predictor} / point transform {self.transform} is not valid")
        if restart % self.width:
            raise DepthError(f"{where}: restart interval of {restart} samples is not whole lines of {self.width}")
        self.table = tables[table]
        self.lines = restart // self.width or self.height
        self.initial = 1 << (self.precision - self.transform - 1)
        self.dtype = np.dtype(np.uint8 if self.precision <= 8 else np.uint16)

    def count(self, interval: int) -> int:
        """How many samples restart interval ``interval`` holds."""
        return min(self.lines, self.height - interval * self.lines) * self.width

    def intervals(self, entropy: bytes) -> list[bytes]:
        """The unstuffed entropy-coded data of each restart interval, each checked to hold enough bits: every
        0xFF is data but for stuffing (0xFF00, its zero dropped) and restart markers (dropped)."""
        data = np.frombuffer(entropy, np.uint8)
        marks = np.flatnonzero(data[:-1] == 0xFF)
        following = data[marks + 1]
        restarts = marks[(following & 0xF8) == 0xD0]  # RST0-7
        stuffed = marks[following == 0] + 1  # the zero byte after a coded 0xFF
        expected = -(-self.height // self.lines)
        if len(restarts) + 1 != expected:
            raise _refusal(self.where, INTERVAL_COUNT, len(restarts) + 1, expected)
        kept = np.delete(data, np.concatenate([stuffed, restarts, restarts + 1]))
        cuts = restarts - np.searchsorted(stuffed, restarts) - 2 * np.arange(len(restarts))
        unstuffed = [part.tobytes() for part in np.split(kept, cuts)]
        for number, coded in enumerate(unstuffed):
            if self.count(number) > 8 * len(coded):  # every code takes at least one bit
                raise _refusal(self.where, TOO_FEW_BYTES, len(coded), self.count(number))
        return unstuffed

    def decode(self, entropy: bytes, file_size: int) -> np.ndarray:
        """The samples the scan's ``entropy``-coded data codes (before the precision check): by the compiled
        decoder where built, else by NumPy if a file of ``file_size`` bytes may take that long."""
        if _compiled is None:
            return self._decode_numpy(self.intervals(entropy), file_size)
        samples = np.empty((self.height, self.width), np.uint16)
        refused = _compiled.decode_scan(
            entropy, self.table.lookup, self.width, self.height, self.lines, self.predictor, self.initial, samples
        )
        if refused:
            raise _refusal(self.where, *refused)
        return samples.astype(np.uint32) << self.transform if self.transform else samples

    def _decode_numpy(self, intervals: list[bytes], file_size: int) -> np.ndarray:
        """:meth:`decode` by NumPy (int64), within :data:`limits.NUMPY_LJPEG_SAMPLES_PER_SECOND`."""
        _, seconds = limits.read_budget(file_size) or limits.READ_BUDGETS[-1][1:]
        most = int(seconds * limits.NUMPY_LJPEG_SAMPLES_PER_SECOND)
        if self.width * self.height > most:
            raise DepthError(
                f"{self.where}: a {self.width}x{self.height} map is more than the NumPy decoder reads within "
                f"the read budget ({most} samples); the compiled decoder reads it where the package was built "
                "with a C compiler"
            )
        rows = []
        for number, coded in enumerate(intervals):
            differences = _read_differences(coded, self.table, self.count(number), self.where)
            rows.append(_undo_prediction(differences.reshape(-1, self.width), self.predictor, self.initial))
        return np.concatenate(rows) << self.transform

    def checked(self, samples: np.ndarray) -> np.ndarray:
        """``samples`` in their dtype, refused if one exceeds the precision."""
        if int(samples.max()) >> self.precision:
            raise DepthError(f"{self.where}: a sample exceeds the {self.precision}-bit precision")
        return samples.astype(self.dtype, copy=False)


#: What a scan's data is refused for, numbered as ``_ljpeg.decode_scan`` returns it.
INTERVAL_COUNT, TOO_FEW_BYTES, BROKEN_CODE = range(3)


def _refusal(where: str, reason: int, *values) -> DepthError:
    """The error of a scan refused for ``reason``: (intervals, expected); (bytes, samples) of an interval;
    (sample, samples, bit, bits, no code) of an interval where a sample's code is none or runs past its end."""
    if reason == INTERVAL_COUNT:
        return DepthError(f"{where}: {values[0]} restart intervals, {values[1]} expected")
    if reason == TOO_FEW_BYTES:
        return DepthError(f"{where}: {values[0]} bytes of coded data cannot hold {values[1]} samples")
    sample, count, bit, bits, no_code = values
    problem = "has no valid Huffman code" if no_code else "runs past the end of the coded data"
    return DepthError(f"{where}: sample {sample} of {count} (bit {bit} of {bits}) {problem}")


def _read_differences(coded: bytes, table: _Table, count: int, where: str) -> np.ndarray:
    """The first ``count`` differences of an unstuffed entropy-coded interval (of at least ``count`` bits)."""
    code_lengths, categories = table.lengths, table.categories
    extra_lengths = np.where(categories == 16, 0, categories) * (code_lengths > 0)
    symbol_lengths = (code_lengths + extra_lengths).astype(np.uint8)
    bits = 8 * len(coded)
    words = _words32(coded)
    step = np.zeros((len(coded) + 5, 8), np.uint8)  # bit 8i+r; 0 past the end, where a chain that runs off stops
    for r in range(8):
        step[: len(coded), r] = symbol_lengths[(words[: len(coded)] >> (16 - r)) & 0xFFFF]
    starts = _follow(step.tobytes(), count)
    differences = np.empty(count, np.int32)
    for first in range(0, count, _CHUNK_SAMPLES):
        at = starts[first : first + _CHUNK_SAMPLES]
        window = _window(words, at)
        length, category, extra = code_lengths[window], categories[window], extra_lengths[window]
        broken = np.flatnonzero((length == 0) | (at + length + extra > bits))
        if len(broken):
            k = int(broken[0])
            raise _refusal(where, BROKEN_CODE, first + k, count, int(at[k]), bits, not length[k])
        value = _window(words, at + length) >> (16 - extra)
        signed = np.where(value < (1 << category) >> 1, value + 1 - (1 << category), value)
        differences[first : first + len(at)] = np.where(category == 16, 0x8000, signed)
    return differences


def _words32(coded: bytes) -> np.ndarray:
    """The 32 bits starting at each byte and at four bytes past the end (zeros there), from four big-endian
    views of the data."""
    count = len(coded) // 4 + 2
    padded = coded + bytes(4 * count + 4 - len(coded))
    words = np.empty((count, 4), np.uint32)
    for byte in range(4):
        words[:, byte] = np.frombuffer(padded, ">u4", count, byte)
    return words.ravel()


def _window(words: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The 16 bits starting at each bit position."""
    return ((words[positions >> 3] >> (16 - (positions & 7)).astype(np.uint32)) & 0xFFFF).astype(np.int32)


def _follow(step: bytes, count: int) -> np.ndarray:
    """The bit positions of ``count`` codes, each starting where the one before ends."""
    starts = array("q", bytes(8 * count))  # 8 bytes a code, not a Python int each
    position = 0
    for k in range(count):
        starts[k] = position
        position += step[position]
    return np.frombuffer(starts, np.int64)


def _undo_prediction(d: np.ndarray, predictor: int, initial: int) -> np.ndarray:
    """Samples from differences (H.1.2.1): the first line predicted from the left, the first column from above."""
    x = np.empty(d.shape, np.int64)
    x[0] = (initial + np.cumsum(d[0])) & MASK
    x[:, 0] = (initial + np.cumsum(d[:, 0])) & MASK
    for i in range(1, len(d)):
        x[i, 1:] = _predicted_line(x[i - 1], int(x[i, 0]), d[i, 1:], predictor) & MASK
    return x


def _predicted_line(above_row: np.ndarray, first: int, d: np.ndarray, predictor: int) -> np.ndarray:
    """Samples 1.. of a line from their differences, the line above and the line's first sample."""
    above, corner = above_row[1:], above_row[:-1]  # Rb and Rc; Ra is the sample to the left
    if predictor == 1:
        return first + np.cumsum(d)
    if predictor == 2:
        return above + d
    if predictor == 3:
        return corner + d
    if predictor == 4:
        return first + np.cumsum(d + above - corner)
    if predictor == 5:
        return first + np.cumsum(d + ((above - corner) >> 1))
    line, left = [], first  # predictors 6 and 7 depend on Ra non-linearly: one sample at a time
    for b, c, difference in zip(above.tolist(), corner.tolist(), d.tolist(), strict=True):
        left = ((b + ((left - c) >> 1) if predictor == 6 else (left + b) >> 1) + difference) & MASK
        line.append(left)
    return np.array(line, np.int64)
