"""A lossless monochrome 8-bit HEVC intra coder for mattes and depth maps: the item's ``hvcC`` and coded bytes,
without x265.

A matte is mostly flat 0 or 255; x265 searches 35 intra modes for each of its CUs all the same, and that search is
most of a HEIC matte attach's cost (and its encode most of a depth attach's).  This coder (its slice data in C,
``_hevc_lossless.c``) codes every CU with ``cu_transquant_bypass``: a planar, DC or angular prediction and the
exact residual, so a flat CU costs a few bits and every picture decodes to exactly its samples.  The parameter
sets: Format Range Extensions profile (4:0:0 8-bit, as iPhones code their mattes and maps), 32x32 CTBs, CUs 8-32
without transform splits, no SAO, PCM, deblocking or scaling lists, full-range samples in the VUI as the iPhone's;
the size rounded up to 8 and cropped back by the SPS conformance window.

Where the package was built without a C compiler there is no ``_hevc_lossless``: :data:`AVAILABLE` is False and
maps and mattes go to x265 (plugin.py), which is also lossless.
"""

from __future__ import annotations

import re

import numpy as np

from . import isobmff

try:
    from . import _hevc_lossless as _compiled
except ImportError:  # pragma: no cover - a build without a C compiler
    _compiled = None

#: Whether this build has the C coder.
AVAILABLE = _compiled is not None

_VPS, _SPS, _PPS, _IDR_N_LP = 32, 33, 34, 20
#: general_profile_space 0, tier 0, profile_idc 4 (Format Range Extensions), as x265 and iPhones write mattes.
_PROFILE_IDC = 4
#: general_profile_compatibility_flags: that profile's alone.
_COMPATIBILITY = 1 << (31 - _PROFILE_IDC)
#: progressive, non-packed, frame-only; max 12/10/8 bit, 4:2:2, 4:2:0 and monochrome, lower bit rate: the
#: Monochrome profile's constraint flags (H.265 A.3.5), as the iPhone 14 writes its mattes' and map's.
_CONSTRAINTS = 0xBFC8_0000_0000
#: (level_idc, MaxLumaPs) of H.265 Table A.8, the smallest first.
_LEVELS = (
    (30, 36864),
    (60, 122880),
    (63, 245760),
    (90, 552960),
    (93, 983040),
    (120, 2228224),
    (150, 8912896),
    (180, 35651584),
)


class _Bits:
    """An RBSP written MSB first: fixed-width fields and Exp-Golomb codes (H.265 7.2, 9.2)."""

    def __init__(self) -> None:
        self.value, self.count = 0, 0

    def u(self, value: int, bits: int) -> _Bits:
        self.value, self.count = self.value << bits | value, self.count + bits
        return self

    def ue(self, value: int) -> _Bits:
        length = (value + 1).bit_length()
        return self.u(value + 1, 2 * length - 1)

    def trailing(self) -> bytes:
        """rbsp_trailing_bits (a one, zeros to the byte) and the bytes."""
        self.u(1, 1).u(0, -self.count % 8)
        return self.value.to_bytes(self.count // 8, "big")


def _nal(kind: int, rbsp: bytes) -> bytes:
    """A NAL unit: its two-byte header (layer 0, temporal ID 0) and the RBSP with emulation prevention."""
    return bytes([kind << 1, 1]) + re.sub(rb"\x00\x00(?=[\x00-\x03])", b"\x00\x00\x03", rbsp)


def _level(width: int, height: int) -> int:
    for level, most in _LEVELS:
        if width * height <= most and max(width, height) ** 2 <= 8 * most:
            return level
    raise ValueError(f"a {width}x{height} picture is beyond every HEVC level")


def _profile_tier_level(bits: _Bits, level: int) -> _Bits:
    bits.u(0, 2).u(0, 1).u(_PROFILE_IDC, 5).u(_COMPATIBILITY, 32).u(_CONSTRAINTS, 48)
    return bits.u(level, 8)


def _vps(level: int) -> bytes:
    bits = _Bits().u(0, 4).u(1, 1).u(1, 1).u(0, 6).u(0, 3).u(1, 1).u(0xFFFF, 16)
    _profile_tier_level(bits, level)
    bits.u(1, 1).ue(0).ue(0).ue(0)  # sub-layer ordering: one picture buffer, no reordering
    bits.u(0, 6).ue(0).u(0, 1).u(0, 1)  # max layer ID, one layer set, no timing, no extension
    return _nal(_VPS, bits.trailing())


def _sps(width: int, height: int, coded_width: int, coded_height: int, level: int) -> bytes:
    bits = _Bits().u(0, 4).u(0, 3).u(1, 1)
    _profile_tier_level(bits, level)
    bits.ue(0).ue(0)  # SPS 0, chroma_format_idc 0 (4:0:0)
    bits.ue(coded_width).ue(coded_height)
    cropped = (coded_width, coded_height) != (width, height)
    bits.u(cropped, 1)
    if cropped:  # conformance window, in luma samples for 4:0:0
        bits.ue(0).ue(coded_width - width).ue(0).ue(coded_height - height)
    bits.ue(0).ue(0).ue(0)  # 8-bit luma and chroma; log2_max_pic_order_cnt_lsb 4
    bits.u(1, 1).ue(0).ue(0).ue(0)  # sub-layer ordering
    bits.ue(0).ue(2)  # CBs 8 to 32
    bits.ue(0).ue(3)  # TBs 4 to 32
    bits.ue(0).ue(0)  # no transform hierarchy, inter or intra
    # no scaling list, AMP, SAO, PCM, short-term RPS, long-term refs, temporal MVP or strong smoothing
    bits.u(0, 1).u(0, 1).u(0, 1).u(0, 1).ue(0).u(0, 1).u(0, 1).u(0, 1)
    _vui(bits.u(1, 1))  # vui_parameters_present_flag
    bits.u(0, 1)  # no SPS extension
    return _nal(_SPS, bits.trailing())


def _vui(bits: _Bits) -> None:
    """VUI as the iPhone's aux images carry it: full-range samples (``video_full_range_flag``, without which a
    reader may take 16-235 for black to white), video format and colour unspecified (5; 2, 2, 2); nothing else."""
    bits.u(0, 1).u(0, 1)  # no aspect ratio or overscan information
    bits.u(1, 1).u(5, 3).u(1, 1).u(1, 1).u(2, 8).u(2, 8).u(2, 8)  # video signal type, colour description
    # no chroma location, neutral chroma, field/frame information, display window, timing or restrictions
    bits.u(0, 1).u(0, 1).u(0, 1).u(0, 1).u(0, 1).u(0, 1).u(0, 1)


def _pps() -> bytes:
    bits = _Bits().ue(0).ue(0).u(0, 1).u(0, 1).u(0, 3).u(0, 1).u(0, 1)  # IDs, no extra header bits or sign hiding
    bits.ue(0).ue(0).ue(0)  # reference indices; init_qp_minus26 0 (se(0) is ue(0))
    bits.u(0, 1).u(0, 1).u(0, 1)  # no constrained intra, transform skip or CU QP deltas
    bits.ue(0).ue(0).u(0, 1).u(0, 1).u(0, 1)  # chroma QP offsets 0, none in slices; no weighted prediction
    bits.u(1, 1)  # transquant_bypass_enabled_flag
    bits.u(0, 1).u(0, 1).u(0, 1)  # no tiles, no wavefronts, no filtering across slices
    bits.u(1, 1).u(0, 1).u(1, 1)  # deblocking control: no override, disabled
    bits.u(0, 1).u(0, 1).ue(0).u(0, 1).u(0, 1)  # no scaling lists, list modification, header extension, extension
    return _nal(_PPS, bits.trailing())


def _slice(slice_data: bytes) -> bytes:
    """The picture's one IDR I slice: its header (slice QP 26, byte-aligned) and the C coder's slice data."""
    bits = _Bits().u(1, 1).u(0, 1).ue(0).ue(2).ue(0)  # first slice, keep prior pictures, PPS 0, I slice, QP delta 0
    header = bits.trailing()  # byte_alignment() is rbsp_trailing_bits' pattern
    return _nal(_IDR_N_LP, header + slice_data)


def _hvcc(level: int, parameter_sets: list[tuple[int, bytes]]) -> bytes:
    """The ``hvcC`` property (ISO/IEC 14496-15 8.3.3): the profile, 4:0:0 8-bit, 4-byte lengths, the sets."""
    record = bytes([1, _PROFILE_IDC]) + _COMPATIBILITY.to_bytes(4, "big")
    record += _CONSTRAINTS.to_bytes(6, "big") + bytes([level]) + bytes.fromhex("f000fcfcf8f8") + b"\0\0"
    record += bytes([0x0F, len(parameter_sets)])  # one temporal layer, nested; lengthSizeMinusOne 3
    for kind, nal in parameter_sets:
        record += bytes([0x80 | kind]) + (1).to_bytes(2, "big") + len(nal).to_bytes(2, "big") + nal
    return isobmff.box_bytes("hvcC", record)


def encode(pixels: np.ndarray) -> tuple[list[tuple[str, bytes]], bytes]:
    """The 2-D uint8 ``pixels`` as a lossless HEVC item: its ``hvcC``/``ispe``/``pixi`` and coded bytes (one
    length-prefixed slice NAL unit)."""
    if _compiled is None:
        raise RuntimeError("gpu_depth was built without its C lossless HEVC coder")
    if pixels.ndim != 2 or pixels.dtype != np.uint8 or not pixels.size:
        raise ValueError(f"a lossless HEVC picture is a non-empty 2-D uint8 array, not {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape
    coded_width, coded_height = -(-width // 8) * 8, -(-height // 8) * 8
    padded = np.pad(pixels, ((0, coded_height - height), (0, coded_width - width)), mode="edge")
    level = _level(coded_width, coded_height)
    slice_nal = _slice(_compiled.encode(padded, coded_width, coded_height))
    sets = [(_VPS, _vps(level)), (_SPS, _sps(width, height, coded_width, coded_height, level)), (_PPS, _pps())]
    hvcc, ispe, pixi = _hvcc(level, sets), isobmff.ispe_bytes(width, height), isobmff.pixi_bytes(8)
    return [("hvcC", hvcc), ("ispe", ispe), ("pixi", pixi)], len(slice_nal).to_bytes(4, "big") + slice_nal
