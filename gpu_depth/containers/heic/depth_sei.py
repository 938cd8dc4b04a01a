"""The H.265 depth_representation_info SEI (payload type 177) that HEIF keeps in a depth item's ``auxC``.

Layout of the ``auxC`` subtype, as iPhones write it and libheif reads it: u32 total length, u32 NAL
length, the 2-byte PREFIX_SEI NAL header, payloadType, payloadSize, the payload bits.  Values are
``(−1)^s · 2^(e−31) · (1 + n/2^v)`` with Apple's v = 16 mantissa bits.  The payload is written as raw
RBSP without emulation-prevention bytes, as Apple does and libheif expects.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from ...errors import DepthError

#: depth_representation_type values (H.265 Table F.?; libheif ``heif_depth_representation_type``).
UNIFORM_INVERSE_Z, UNIFORM_DISPARITY, UNIFORM_Z, NONUNIFORM_DISPARITY = 0, 1, 2, 3
PAYLOAD_TYPE = 177
PREFIX_SEI, SUFFIX_SEI = 39, 40
#: PREFIX_SEI NAL header: forbidden 0, type 39, layer 0, temporal id + 1 = 1.
NAL_HEADER = bytes((PREFIX_SEI << 1, 1))
MANTISSA_BITS = 16
EXPONENT_BIAS = 31
MAX_EXPONENT = 126
#: ue(v) codes longer than this are refused (bounds the loop on hostile bytes).
MAX_LEADING_ZEROS = 31


@dataclass(frozen=True)
class DepthRepresentation:
    """The decoded SEI: the representation type and whichever of the four bounds it carries."""

    kind: int
    z_near: float | None = None
    z_far: float | None = None
    d_min: float | None = None
    d_max: float | None = None


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big")
        self.size = 8 * len(data)
        self.pos = 0

    def read(self, count: int) -> int:
        if self.pos + count > self.size:
            raise DepthError(f"auxC depth SEI: truncated payload at bit {self.pos}")
        self.pos += count
        return (self.value >> (self.size - self.pos)) & ((1 << count) - 1)

    def ue(self) -> int:
        zeros = 0
        while not self.read(1):
            zeros += 1
            if zeros > MAX_LEADING_ZEROS:
                raise DepthError(f"auxC depth SEI: Exp-Golomb code too long at bit {self.pos}")
        return (1 << zeros) - 1 + self.read(zeros)

    def element(self) -> float:
        sign, exponent, length = self.read(1), self.read(7), self.read(5) + 1
        mantissa = self.read(length)
        if exponent == 127:
            raise DepthError("auxC depth SEI: element exponent 127 is reserved")
        if exponent == 0:
            value = math.ldexp(mantissa, -(30 + length))
        else:
            value = math.ldexp(1 + mantissa / (1 << length), exponent - EXPONENT_BIAS)
        return -value if sign else value


def parse_aux_subtype(subtype: bytes) -> DepthRepresentation | None:
    """The depth representation in an ``auxC`` subtype; None when it holds no SEI 177."""
    if len(subtype) < 8:
        return None
    total, nal_size = struct.unpack_from(">II", subtype)
    if total > len(subtype) - 4 or nal_size + 4 > total or nal_size < 4:
        raise DepthError(f"auxC depth SEI: lengths {total}/{nal_size} do not fit the {len(subtype)}-byte subtype")
    nal = subtype[8 : 8 + nal_size]
    if (nal[0] >> 1) & 63 not in (PREFIX_SEI, SUFFIX_SEI):
        raise DepthError(f"auxC depth SEI: NAL type {(nal[0] >> 1) & 63} is not an SEI")
    pos, fields = 2, []
    for _ in range(2):  # payloadType, payloadSize: runs of 0xFF then a final byte
        run = len(nal) - pos - len(nal[pos:].lstrip(b"\xff"))  # counted in C: a run may be the whole box
        value, pos = 255 * run, pos + run
        if pos >= len(nal):
            raise DepthError("auxC depth SEI: truncated payload header")
        fields.append(value + nal[pos])
        pos += 1
    payload_type, payload_size = fields
    if payload_type != PAYLOAD_TYPE:
        return None
    if payload_size > len(nal) - pos:
        raise DepthError(f"auxC depth SEI: payloadSize {payload_size} runs past the {len(nal)}-byte NAL")
    return _parse_payload(nal[pos : pos + payload_size])


def _parse_payload(payload: bytes) -> DepthRepresentation:
    bits = _Bits(payload)
    z_near, z_far, d_min, d_max = (bits.read(1) for _ in range(4))
    kind = bits.ue()
    if d_min or d_max:
        bits.ue()  # disparity_ref_view_id
    values = {
        name: bits.element() if flag else None
        for name, flag in zip(("z_near", "z_far", "d_min", "d_max"), (z_near, z_far, d_min, d_max), strict=True)
    }
    return DepthRepresentation(kind, **values)


def build_aux_subtype(representation: DepthRepresentation) -> bytes:
    """The ``auxC`` subtype bytes holding ``representation`` (bounds must be exact 16-bit-mantissa values)."""
    flags = [getattr(representation, name) is not None for name in ("z_near", "z_far", "d_min", "d_max")]
    bits = [(int(flag), 1) for flag in flags]
    bits.append(_ue(representation.kind))
    if flags[2] or flags[3]:
        bits.append(_ue(0))  # disparity_ref_view_id
    for name, flag in zip(("z_near", "z_far", "d_min", "d_max"), flags, strict=True):
        if flag:
            bits += _element(getattr(representation, name), name)
    bits.append((1, 1))  # rbsp stop bit, then zero alignment
    value, count = 0, 0
    for field_value, width in bits:
        value, count = value << width | field_value, count + width
    pad = -count % 8
    payload = (value << pad).to_bytes((count + pad) // 8, "big")
    nal = NAL_HEADER + bytes((PAYLOAD_TYPE, len(payload))) + payload
    return struct.pack(">II", 4 + len(nal), len(nal)) + nal


def _ue(value: int) -> tuple[int, int]:
    code = value + 1
    return code, 2 * code.bit_length() - 1


def _element(value: float, name: str) -> list[tuple[int, int]]:
    sign = int(value < 0)
    magnitude = abs(value)
    if magnitude == 0:
        return [(sign, 1), (0, 7), (MANTISSA_BITS - 1, 5), (0, MANTISSA_BITS)]
    fraction, exponent = math.frexp(magnitude)  # magnitude = fraction · 2^exponent, fraction in [0.5, 1)
    biased = exponent - 1 + EXPONENT_BIAS
    mantissa = (2 * fraction - 1) * (1 << MANTISSA_BITS)
    if not 1 <= biased <= MAX_EXPONENT or mantissa != int(mantissa):
        raise DepthError(f"depth SEI: {name} {value!r} is not representable with a 16-bit mantissa")
    return [(sign, 1), (biased, 7), (MANTISSA_BITS - 1, 5), (int(mantissa), MANTISSA_BITS)]
