"""Lossless JPEG (SOF3): our encoder against libjpeg-turbo (through imagecodecs) as referee, and back."""

from __future__ import annotations

import struct
from pathlib import Path
from unittest import mock

import imagecodecs
import numpy as np
import pytest
from helpers.sanitized import run_sanitized
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gpu_depth import DepthError, limits
from gpu_depth.containers.jpeg import ljpeg
from gpu_depth.containers.jpeg.segments import parse_jpeg


def decode(data: bytes) -> np.ndarray:
    return ljpeg.decode(data, parse_jpeg(data))


def smooth(height: int = 96, width: int = 128, top: int = 65535) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.rint(top * (0.5 + 0.45 * np.sin(x / 17) * np.cos(y / 23))).astype(np.uint16 if top > 255 else np.uint8)


def fibonacci_categories() -> np.ndarray:
    """One line whose differences fall in categories 0-16 with Fibonacci counts: Huffman codes over 16 bits."""
    counts, differences = [1, 1], []
    while len(counts) < ljpeg.CATEGORIES:
        counts.append(counts[-1] + counts[-2])
    for category, count in enumerate(reversed(counts)):
        differences += [0 if category == 0 else 1 << (category - 1)] * count
    return (np.cumsum([1 << 15, *differences[1:]]) & 0xFFFF).astype(np.uint16)[None, :]


CASES = {
    "smooth-16": smooth(),
    "smooth-8": smooth(top=255),
    "noise-16": np.random.default_rng(1).integers(0, 1 << 16, (37, 53)).astype(np.uint16),
    "noise-8": np.random.default_rng(2).integers(0, 256, (20, 31)).astype(np.uint8),
    "difference-32768": np.array([[0, 32768, 0, 65535, 32767, 32768]], np.uint16),
    "constant": np.full((5, 7), 4321, np.uint16),
    "one-pixel": np.array([[65535]], np.uint16),
    "one-column": np.arange(0, 65536, 4099, dtype=np.uint16)[:, None],
    "over-16-bit-codes": fibonacci_categories(),
}


@pytest.fixture(params=["compiled", "numpy"])
def codec(request, monkeypatch):
    """Each test with it runs once by the C encoder and decoder and once by the NumPy ones."""
    if request.param == "numpy":
        monkeypatch.setattr(ljpeg, "_compiled", None)
    return request.param


@pytest.mark.parametrize("name", CASES)
def test_libjpeg_turbo_decodes_what_we_encode(codec, name):
    samples = CASES[name]
    coded = ljpeg.encode(samples)
    np.testing.assert_array_equal(imagecodecs.jpeg8_decode(coded), samples)
    np.testing.assert_array_equal(decode(coded), samples)
    assert decode(coded).dtype == samples.dtype


def test_huffman_codes_stay_within_16_bits():
    coded = ljpeg.encode(fibonacci_categories())
    bits = coded[coded.index(b"\xff\xc4") + 5 :][:16]  # BITS: how many codes of each length 1-16
    assert sum(bits) == ljpeg.CATEGORIES and bits[-1] > 0


@pytest.mark.parametrize("precision", [8, 12, 16])
@pytest.mark.parametrize("predictor", range(1, 8))
def test_we_decode_every_predictor_libjpeg_turbo_writes(codec, precision, predictor):
    dtype = np.uint8 if precision == 8 else np.uint16
    for samples in (smooth(top=(1 << precision) - 1).astype(dtype), CASES["noise-8"].astype(dtype)):
        coded = imagecodecs.jpeg8_encode(samples, lossless=True, predictor=predictor, bitspersample=precision)
        np.testing.assert_array_equal(decode(coded), samples)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(st.sampled_from([np.uint8, np.uint16]), hnp.array_shapes(min_dims=2, max_dims=2, max_side=40)))
def test_any_map_round_trips(samples):
    coded = ljpeg.encode(samples)
    np.testing.assert_array_equal(decode(coded), samples)
    np.testing.assert_array_equal(imagecodecs.jpeg8_decode(coded), samples)
    with mock.patch.object(ljpeg, "_compiled", None):
        np.testing.assert_array_equal(decode(coded), samples)
        assert ljpeg.encode(samples) == coded


def with_restarts(band: np.ndarray, intervals: int) -> bytes:
    """``band`` ``intervals`` times over as one lossless JPEG, a restart interval each: an interval starts
    afresh, like a new image with the same table."""
    coded = ljpeg.encode(band)
    image = parse_jpeg(coded)
    _, sof, sos = image.segments
    entropy = coded[sos.end : image.end - 2]
    header = bytearray(coded[: sos.end])
    header[sof.offset + 5 : sof.offset + 7] = struct.pack(">H", intervals * len(band))
    dri = b"\xff\xdd\x00\x04" + struct.pack(">H", band.size)
    markers = [b"\xff" + bytes([0xD0 + number % 8]) for number in range(intervals - 1)]
    body = b"".join(entropy + marker for marker in markers) + entropy
    return bytes(header[: sos.offset]) + dri + bytes(header[sos.offset :]) + body + b"\xff\xd9"


def test_restart_intervals_of_whole_lines(codec):
    band = smooth(8, 40)
    spliced = with_restarts(band, 3)
    np.testing.assert_array_equal(decode(spliced), np.vstack([band] * 3))
    with pytest.raises(DepthError, match=r"2 restart intervals, 3 expected"):
        decode(spliced.replace(b"\xff\xd1", b""))


def test_point_transform_shifts_the_samples(codec):
    samples = (30720 + smooth(top=4095)).astype(np.uint16)
    coded = bytearray(ljpeg.encode(samples))
    coded[coded.index(b"\xff\xda") + 9] = 4  # Al: samples were coded >> 4, so the first prediction is 2^11
    np.testing.assert_array_equal(decode(bytes(coded)), (samples - 30720) << 4)


def test_hostile_streams_get_one_line_errors(codec):
    coded = ljpeg.encode(smooth())
    sof = coded.index(b"\xff\xc3")
    with pytest.raises(DepthError, match=r"lossless JPEG at offset 0: .*sample \d+ of 12288 .*runs past the end"):
        decode(coded[:-2000] + b"\xff\xd9")
    with pytest.raises(DepthError, match=r"cannot hold 10000000 samples"):
        decode(coded[: sof + 5] + struct.pack(">HH", 2500, 4000) + coded[sof + 9 :])
    with pytest.raises(DepthError, match=r"a sample exceeds the 12-bit precision"):
        decode(coded[: sof + 4] + b"\x0c" + coded[sof + 5 :])
    with pytest.raises(DepthError, match=r"3 components"):
        decode(coded[: sof + 9] + b"\x03" + coded[sof + 10 :])
    dht = coded.index(b"\xff\xc4")
    with pytest.raises(DepthError, match=r"code 0 \(17\) is not a valid lossless-JPEG Huffman code"):
        decode(coded[: dht + 21] + b"\x11" + coded[dht + 22 :])
    with pytest.raises(DepthError, match=r"sample 0 of 12288 \(bit 0 of \d+\) has no valid Huffman code"):
        sos = coded.index(b"\xff\xda") + 10  # sixteen 1 bits: the code Huffman tables never use
        decode(coded[:sos] + b"\xff\x00\xff\x00" + coded[sos:])
    with pytest.raises(DepthError, match=r"Huffman table 0 is not defined"):
        decode(coded[:dht] + coded[dht + 4 + 17 + sum(coded[dht + 5 : dht + 21]) :])


@pytest.mark.parametrize(
    "samples", [np.zeros((2, 70000), np.uint16), np.zeros((0, 4), np.uint16), np.zeros((4, 4), np.int32), np.zeros(5)]
)
def test_encoder_refuses_what_a_lossless_jpeg_cannot_hold(samples):
    with pytest.raises(DepthError, match=r"a lossless JPEG holds a 2-D uint8/uint16 map of at most 65535 a side"):
        ljpeg.encode(samples)


def noisy(height: int = 96, width: int = 128) -> np.ndarray:
    rng = np.random.default_rng(3)
    noise = rng.integers(-300, 300, (height, width))
    return (smooth(height, width).astype(np.int64) + noise).clip(0, 65535).astype(np.uint16)


def test_the_compiled_codec_is_built():
    """``pip install .`` builds it where a C compiler is at hand (every machine README's commands run on)."""
    assert ljpeg._compiled is not None, "gpu_depth/containers/jpeg/_ljpeg.c was not built: reinstall with a compiler"


def random_maps(seed: int, count: int):
    """``count`` maps of 1-300 a side, uint8 and uint16 by turns: smooth, smooth with noise, noise, constant,
    and of the extremes 0 and the top value only."""
    rng = np.random.default_rng(seed)
    for number in range(count):
        shape = tuple(int(side) for side in rng.integers(1, 301, 2))
        dtype = np.uint16 if number % 2 else np.uint8
        top, kind = int(np.iinfo(dtype).max), number // 2 % 5
        if kind < 2:
            noise = rng.integers(-top // 50, top // 50 + 1, shape) if kind else 0
            samples = (smooth(*shape, top=top).astype(np.int64) + noise).clip(0, top)
        elif kind == 2:
            samples = rng.integers(0, top + 1, shape)
        elif kind == 3:
            samples = np.full(shape, rng.integers(0, top + 1))
        else:
            samples = rng.choice([0, top], shape)
        yield samples.astype(dtype)


def encoder_maps(seed: int, count: int) -> list[np.ndarray]:
    """The CASES, thin and one-sample maps (codes over 16 bits among them), then ``count`` random ones."""
    thin = [fibonacci_categories().T, np.zeros((1, 1), np.uint8), np.full((1, 300), 255, np.uint8), smooth(300, 1)]
    return [*CASES.values(), *thin, *random_maps(seed, count)]


def mismatches(maps: list[np.ndarray]) -> list[int]:
    """Which of ``maps`` the compiled encoder codes to other bytes than the NumPy encoder."""
    compiled = [ljpeg.encode(samples) for samples in maps]
    with mock.patch.object(ljpeg, "_compiled", None):
        return [k for k, samples in enumerate(maps) if ljpeg.encode(samples) != compiled[k]]


def test_the_compiled_encoder_writes_the_numpy_encoders_bytes():
    """Byte for byte, on every CASE and 300 random maps; libjpeg-turbo decodes them to the samples."""
    maps = encoder_maps(5, 300)
    assert ljpeg.compiled() and mismatches(maps) == []
    for samples in maps:
        np.testing.assert_array_equal(imagecodecs.jpeg8_decode(ljpeg.encode(samples)), samples)


def pack_refusals(compiled) -> list[str]:
    """The errors ``compiled`` (the _ljpeg module) raises for totals, tables and buffers that do not fit."""
    differences, symbols, lengths = np.zeros(10, np.uint16), np.zeros(1 << 16, np.uint64), np.ones(1 << 16, np.int64)
    assert compiled.pack(differences, symbols, lengths, 10) == b"\x00\x3f"  # ten 1-bit zeros, six 1s of padding
    calls = [
        lambda: compiled.pack(differences, symbols, lengths, 9),
        lambda: compiled.pack(differences, symbols, lengths, 11),
        lambda: compiled.pack(differences, symbols, lengths, 1 << 40),
        lambda: compiled.pack(differences, symbols + 2, lengths, 10),
        lambda: compiled.pack(differences, symbols, lengths * 33, 330),
        lambda: compiled.pack(differences, symbols[:100], lengths, 10),
        lambda: compiled.pack(differences.astype(np.int32), symbols, lengths, 10),
        lambda: compiled.pack(np.zeros(20, np.uint16)[::2], symbols, lengths, 10),
        lambda: compiled.pack(differences, symbols, lengths.astype(np.float64), 10),
        lambda: compiled.categories(differences, ljpeg._CATEGORY, np.zeros(0, np.int64)),
        lambda: compiled.categories(differences, ljpeg._CATEGORY.astype(np.int64), np.zeros(17, np.int64)),
    ]
    refusals = []
    for call in calls:
        try:
            call()
        except (TypeError, ValueError) as error:
            refusals.append(str(error))
    return refusals


def test_the_compiled_packer_refuses_what_does_not_fit():
    refusals = pack_refusals(ljpeg._compiled)
    assert len(refusals) == 11, refusals
    assert sum("do not take" in refusal or "cannot be the codes" in refusal for refusal in refusals) == 3
    assert sum("not within its" in refusal for refusal in refusals) == 2
    assert sum("integers expected" in refusal for refusal in refusals) == 3


@pytest.mark.parametrize("predictor", range(1, 8))
def test_both_decoders_read_16_bit_maps_of_every_predictor(codec, predictor):
    for samples in (smooth(), noisy()):
        coded = imagecodecs.jpeg8_encode(samples, lossless=True, predictor=predictor, bitspersample=16)
        np.testing.assert_array_equal(decode(coded), samples)


def truncated_and_bad_code() -> list[bytes]:
    coded = ljpeg.encode(noisy())
    sos = coded.index(b"\xff\xda") + 10  # sixteen ones where the first code starts: no code
    midway = (sos + len(coded)) // 2  # sixteen ones and more from a byte amid the codes: no code within
    return [
        coded[:-2000] + b"\xff\xd9",
        coded[:sos] + b"\xff\x00\xff\x00" + coded[sos:],
        coded[:midway] + b"\xff\x00\xff\x00\xff\x00" + coded[midway:],
    ]


@pytest.mark.parametrize("case", range(3), ids=["truncated", "bad-code", "bad-code-midway"])
def test_corrupt_data_libjpeg_turbo_makes_samples_up_for_is_refused(codec, case):
    corrupt = truncated_and_bad_code()[case]
    made_up = imagecodecs.jpeg8_decode(corrupt)  # no error: it warns and goes on
    assert made_up.shape == (96, 128)
    with pytest.raises(DepthError, match=r"sample \d+ of 12288 \(bit \d+ of \d+\) (runs past the end|has no valid)"):
        decode(corrupt)


def fill_bytes_amid_the_codes() -> list[bytes]:
    """Streams with a 0xFF fill byte before coded 0xFF00s: libjpeg-turbo drops it, we read it as data."""
    coded = ljpeg.encode(noisy())
    start = coded.index(b"\xff\xda") + 10
    streams = []
    for number in range(8):
        at = coded.index(b"\xff\x00", start + number * (len(coded) - start) // 8)
        streams.append(coded[:at] + b"\xff" + coded[at:])
    return streams


def mutations(seed: int, count: int):
    """``count`` lossless JPEGs of small maps, bytes overwritten, cut, flipped or stuffed at random."""
    rng = np.random.default_rng(seed)
    maps = [smooth(12, 20), noisy(9, 14), np.full((5, 6), 777, np.uint16), smooth(8, 9, 255)]
    for number in range(count):
        samples = maps[number % len(maps)]
        if number % 5 == 4:
            coded = bytearray(with_restarts(samples[:3], 4))
        elif number % 3:
            coded = bytearray(ljpeg.encode(samples))
        else:
            bits = 8 * samples.dtype.itemsize
            coded = bytearray(
                imagecodecs.jpeg8_encode(samples, lossless=True, predictor=int(rng.integers(1, 8)), bitspersample=bits)
            )
        for _ in range(rng.integers(0, 4)):
            at, how = int(rng.integers(2, len(coded))), rng.integers(4)
            if how == 0:
                coded[at] = rng.integers(256)
            elif how == 1:
                coded = coded[:at] + coded[-2:]
            elif how == 2:
                coded[at] ^= 1 << rng.integers(8)
            else:
                coded[at:at] = b"\xff\x00"
        yield bytes(coded)


def outcome(data: bytes):
    try:
        parsed = parse_jpeg(data)
    except DepthError:
        return None
    try:
        samples = ljpeg.decode(data, parsed)
    except DepthError as error:
        return str(error)
    return samples.dtype.str, samples.shape, samples.tobytes()


def cut_short() -> list[bytes]:
    """Scans ending early: a first restart interval of 1-40 bytes fewer (its codes must not read on into the
    next interval's, all ones here), and a constant map's codes 1-5 bytes fewer, around as few bytes as
    its samples need (one bit each)."""
    band = smooth(4, 30)
    image = parse_jpeg(two := with_restarts(band, 2))
    sos = image.segments[-1]
    first, second = two[sos.end : image.end - 2].split(b"\xff\xd0")
    ones = b"\xff\x00" * 8
    streams = [two[: sos.end] + first[:-cut] + b"\xff\xd0" + ones + second + b"\xff\xd9" for cut in range(1, 41)]
    constant = ljpeg.encode(np.full((5, 7), 4321, np.uint16))
    return streams + [constant[: -2 - cut] + b"\xff\xd9" for cut in range(1, 6)]


def test_the_compiled_decoder_decodes_and_refuses_as_the_numpy_decoder(monkeypatch):
    """Same samples or the same DepthError, on valid, mutated, cut and fill-byte streams alike."""
    streams = [*mutations(7, 1200), *fill_bytes_amid_the_codes(), *truncated_and_bad_code(), *cut_short()]
    compiled = [outcome(data) for data in streams]
    monkeypatch.setattr(ljpeg, "_compiled", None)
    assert [outcome(data) for data in streams] == compiled
    assert sum(isinstance(result, tuple) for result in compiled) > 150  # samples compared, not only errors
    assert sum(isinstance(result, str) and "Huffman code" in result for result in compiled) > 30
    assert sum(isinstance(result, str) and "runs past the end" in result for result in compiled) > 30


def test_the_numpy_decoder_takes_on_only_what_the_read_budget_allows(monkeypatch):
    """Without the compiled decoder an 8 MB map of one-bit codes took 15 s and 1.3 GiB (budget: 3 s, 1 GiB)."""
    coded = ljpeg.encode(smooth())
    monkeypatch.setattr(limits, "NUMPY_LJPEG_SAMPLES_PER_SECOND", 12287)
    np.testing.assert_array_equal(decode(coded), smooth())  # the compiled decoder's: no limit
    monkeypatch.setattr(ljpeg, "_compiled", None)
    with pytest.raises(DepthError, match=r"a 128x96 map is more than the NumPy decoder reads .*\(12287 samples\)"):
        decode(coded)
    monkeypatch.setattr(limits, "NUMPY_LJPEG_SAMPLES_PER_SECOND", 12288)  # this map's samples in 1 s
    np.testing.assert_array_equal(decode(coded), smooth())


SANITIZED_RUN = """
import test_ljpeg as t
from gpu_depth.containers.jpeg import ljpeg
ljpeg._compiled = compiled
streams = [*t.mutations(11, 1500), *t.fill_bytes_amid_the_codes(), *t.truncated_and_bad_code(), *t.cut_short()]
results = [t.outcome(data) for data in streams]
print("sanitized decoder:", sum(isinstance(r, tuple) for r in results), "decoded,", len(results), "streams")
maps = t.encoder_maps(13, 60)
assert t.mismatches(maps) == [] and len(t.pack_refusals(compiled)) == 11
print("sanitized encoder:", len(maps), "maps coded as by NumPy")
"""


def test_the_compiled_codec_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    """_ljpeg.c built with -fsanitize=address,undefined decodes the corrupt and mutated streams and encodes
    maps of every shape (checked against the NumPy encoder) in a child Python (libasan preloaded): any
    out-of-bounds access or undefined behaviour aborts it."""
    out = run_sanitized(Path(ljpeg.__file__).with_name("_ljpeg.c"), tmp_path, SANITIZED_RUN)
    assert "sanitized decoder:" in out and " 0 decoded" not in out
    assert "sanitized encoder:" in out
