"""Google's GDepth (Lens Blur) depth map in a JPEG's XMP, written and read back as DepthData.

GDepth keeps metric depth (value 0 = Near) as a base64 PNG with ``Format`` RangeLinear or
RangeInverse, ``Near`` and ``Far``.  The small properties go in the main XMP with
``xmpNote:HasExtendedXMP``; ``GDepth:Data`` goes in an Extended XMP packet split over APP1 segments,
each ``http://ns.adobe.com/xmp/extension/\\0`` + GUID (the packet's MD5, 32 upper-case hex digits)
+ full length + offset (u32 big-endian) + chunk, as the XMP specification part 3 requires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import math
import re
import struct
from xml.sax.saxutils import escape

import numpy as np

from ... import limits
from ...core.depthdata import DepthData
from ...core.holes import refuse_holes
from ...core.metadata import DepthMetadata
from ...core.xmp import RDF, properties
from ...errors import DepthError
from .segments import APP1, MAX_SEGMENT_PAYLOAD, XMP_ID, JpegImage, Segment, segment

GDEPTH = "http://ns.google.com/photos/1.0/depthmap/"
XMP_NOTE = "http://ns.adobe.com/xmp/note/"
EXTENSION_ID = b"http://ns.adobe.com/xmp/extension/\0"
GUID_SIZE = 32
#: Full length and offset of the chunk an Extended XMP segment carries.
CHUNK_HEADER = struct.Struct(">II")
MAX_CHUNK = MAX_SEGMENT_PAYLOAD - len(EXTENSION_ID) - GUID_SIZE - CHUNK_HEADER.size
#: The packet wrapper XMP readers expect around a main XMP packet (the extended one goes without).
XPACKET_BEGIN = b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
XPACKET_END = b'<?xpacket end="w"?>'
FORMATS = ("RangeInverse", "RangeLinear")

_GUID = re.compile(r"[0-9A-F]{32}")
_EMPTY_RDF = re.compile(rb"(<rdf:RDF\b[^>]*?)\s*/>")


def encode(depth: DepthData, form: str = "RangeInverse", bits: int = 16) -> dict[str, str]:
    """GDepth properties of ``depth`` (disparity is inverted to metres), Data a ``bits``-bit PNG in base64."""
    from PIL import Image

    if form not in FORMATS:
        raise DepthError(f"GDepth format must be RangeInverse or RangeLinear, got {form!r}")
    if bits not in (8, 16):
        raise DepthError(f"GDepth PNG must have 8 or 16 bits, got {bits!r}")
    refuse_holes(depth.array, "GDepth")
    with np.errstate(divide="ignore", invalid="ignore"):
        metres = depth.array.astype(np.float64)
        metres = 1.0 / metres if depth.pixel_format.is_disparity else metres
        valid = np.isfinite(metres) & (metres > 0)
    if not valid.any():
        raise DepthError(f"{depth.width}x{depth.height} depth map has no positive finite depth for GDepth")
    near, far = float(metres[valid].min()), float(metres[valid].max())
    metres = np.clip(metres, near, far)  # depth 0 is nearest, infinity farthest
    if far == near:
        normal = np.zeros_like(metres)
    elif form == "RangeLinear":
        normal = (metres - near) / (far - near)
    else:
        normal = far * (metres - near) / (metres * (far - near))
    top = (1 << bits) - 1
    codes = np.rint(np.clip(normal, 0.0, 1.0) * top).astype(np.uint8 if bits == 8 else np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(codes).save(buffer, "PNG")
    return {
        "Format": form,
        "Near": repr(near),
        "Far": repr(far),
        "Units": "m",
        "MeasureType": "OpticalAxis",
        "Mime": "image/png",
        "Data": base64.b64encode(buffer.getvalue()).decode("ascii"),
    }


#: GDepth:Units a map may give, in metres; without it (Lens Blur writes none) Near/Far are in unknown units.
UNITS = {"m": 1.0, "mm": 1e-3}


def decode(props: dict[str, str]) -> DepthData:
    """The ``fdep`` map that GDepth properties describe: metres with Accuracy ``absolute`` when
    ``GDepth:Units`` names them, else Near/Far's own (unknown) units with Accuracy None.  GDepth
    holds nothing of AVDepthData's other metadata, which therefore reads as unknown (None)."""
    form = props.get("Format", "RangeInverse")
    if form not in FORMATS:
        raise DepthError(f"GDepth:Format {form!r} is neither RangeInverse nor RangeLinear")
    near, far = (_number(props, name) for name in ("Near", "Far"))
    if not (0 <= near <= far and far > 0 and (near > 0 or form == "RangeLinear")):
        raise DepthError(f"GDepth Near {near} and Far {far} are not a usable range for {form}")
    codes, top = _image(props)
    normal = codes.astype(np.float64) / top
    values = near + normal * (far - near) if form == "RangeLinear" else far * near / (far - normal * (far - near))
    scale = UNITS.get(props.get("Units", ""))
    metadata = DepthMetadata(accuracy=None if scale is None else "absolute")
    return DepthData.from_array(values * (scale or 1.0), "fdep", metadata=metadata)


def present(data: bytes, primary: JpegImage) -> bool:
    """Whether the primary's main XMP holds GDepth properties (what :func:`read` would return)."""
    main = primary.applications(data, APP1, XMP_ID)
    return bool(main) and any(k != "HasExtendedXMP" for k in _properties(main[0].payload(data)[len(XMP_ID) :]))


def edit(
    photo: bytes, primary: JpegImage, depth: DepthData | None, form: str = "RangeInverse", bits: int = 16
) -> list[tuple[int, int, bytes]]:
    """(start, stop, bytes) edits of the primary that remove any GDepth (its properties from the main
    XMP, ``GDepth:Data`` from the Extended XMP) and, with ``depth``, write its GDepth.

    Other properties stay; so does the Extended XMP when it holds others (Lens Blur's ``GImage:Data``),
    rewritten under its new GUID, and it goes when nothing is left in it.
    """
    main = primary.applications(photo, APP1, XMP_ID)
    packet = main[0].payload(photo)[len(XMP_ID) :] if main else b""
    guid = _properties(packet).get("HasExtendedXMP") if packet else None
    old_chunks = [s for s in primary.applications(photo, APP1, EXTENSION_ID) if guid and _guid_of(photo, s) == guid]
    if depth is not None and len(old_chunks) != len(primary.applications(photo, APP1, EXTENSION_ID)):
        raise DepthError("the photo has Extended XMP its main XMP does not name; GDepth is not added to it")
    extended = _strip(_extended(photo, primary, guid)) if old_chunks else None
    props = encode(depth, form, bits) if depth is not None else {}
    if "Data" in props:
        extended = _inserted(extended or _packet(b""), _description({"Data": props.pop("Data")}))
    if extended is not None and not properties(extended):
        extended = None
    if extended is not None and len(extended) > (limit := limits.max_xmp_bytes()):
        raise DepthError(f"Extended XMP of {len(extended)} bytes exceeds the {limit}-byte XMP limit")
    new_guid = hashlib.md5(extended).hexdigest().upper() if extended is not None else None
    description = _description(props, new_guid) if props or new_guid else b""
    edits = [(seg.offset, seg.end, b"") for seg in old_chunks]
    if main:
        start, stop, packet = main[0].offset, main[0].end, _inserted(_strip(packet), description)
    else:
        start = stop = primary.after_leading_apps()
        packet = XPACKET_BEGIN + _packet(description) + XPACKET_END
    chunks = (
        [
            EXTENSION_ID + new_guid.encode() + CHUNK_HEADER.pack(len(extended), at) + extended[at : at + MAX_CHUNK]
            for at in range(0, len(extended), MAX_CHUNK)
        ]
        if extended is not None
        else []
    )
    if main or description:
        edits.append((start, stop, segment(APP1, XMP_ID + packet) + b"".join(segment(APP1, c) for c in chunks)))
    return edits


def _guid_of(data: bytes, seg: Segment) -> str:
    return seg.payload(data)[len(EXTENSION_ID) : len(EXTENSION_ID) + GUID_SIZE].decode("latin-1")


def _strip(packet: bytes) -> bytes:
    """The packet without GDepth properties (attribute or element form), ``xmpNote:HasExtendedXMP``,
    the namespace declarations left unused and the descriptions left empty."""
    value = rb'\s*=\s*("[^"]*"|\'[^\']*\')'
    for namespace, names in ((GDEPTH, rb"[\w.-]+"), (XMP_NOTE, rb"HasExtendedXMP")):
        for found in re.finditer(rb"xmlns:([\w.-]+)" + value, packet):
            if found[2][1:-1] == namespace.encode():
                declared = found
                break
        else:
            continue
        prefix = re.escape(declared[1])
        packet = re.sub(rb"\s*<" + prefix + rb":" + names + rb"\b[^>]*/>", b"", packet)
        packet = re.sub(rb"\s*<" + prefix + rb":(" + names + rb")\b[^>]*>[^<]*</" + prefix + rb":\1\s*>", b"", packet)
        packet = re.sub(rb"\s+" + prefix + rb":" + names + value, b"", packet)
        if not re.search(rb"[<\s]" + prefix + rb":", packet):
            packet = re.sub(rb"\s+xmlns:" + prefix + value, b"", packet)
    return re.sub(rb'\s*<rdf:Description\s+rdf:about=""\s*(/>|>\s*</rdf:Description>)', b"", packet)


def read(data: bytes, primary: JpegImage) -> DepthData | None:
    """The GDepth map of a JPEG's main (and Extended) XMP, or None when it has none."""
    main = primary.applications(data, APP1, XMP_ID)
    if not main:
        return None
    props = _properties(main[0].payload(data)[len(XMP_ID) :])
    guid = props.pop("HasExtendedXMP", None)
    if not props:
        return None
    if "Data" not in props and guid is not None:
        props.update(_properties(_extended(data, primary, guid)))
    if "Data" not in props:
        raise DepthError(f"GDepth XMP at offset {main[0].offset} has no GDepth:Data")
    return decode(props)


def _inserted(packet: bytes, description: bytes) -> bytes:
    """The packet with one more rdf:Description (none when ``description`` is empty)."""
    if not description:
        return packet
    close = packet.rfind(b"</rdf:RDF>")
    if close >= 0:
        return packet[:close] + description + packet[close:]
    empty = _EMPTY_RDF.search(packet)
    if empty is None:
        raise DepthError("the photo's XMP has no rdf:RDF element to add GDepth to")
    return packet[: empty.start()] + empty[1] + b">" + description + b"</rdf:RDF>" + packet[empty.end() :]


def _description(props: dict[str, str], guid: str | None = None) -> bytes:
    note = f'\n  xmlns:xmpNote="{XMP_NOTE}"\n  xmpNote:HasExtendedXMP="{guid}"' if guid else ""
    fields = "".join(f'\n  GDepth:{name}="{escape(value, {chr(34): "&quot;"})}"' for name, value in props.items())
    return f'<rdf:Description rdf:about=""\n  xmlns:GDepth="{GDEPTH}"{note}{fields}/>'.encode()


def _packet(description: bytes) -> bytes:
    return (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="'
        + RDF.encode()
        + b'">'
        + description
        + b"</rdf:RDF></x:xmpmeta>"
    )


def _properties(packet: bytes) -> dict[str, str]:
    """GDepth properties (attributes or elements of any rdf:Description) and xmpNote:HasExtendedXMP."""
    found = properties(packet)
    props = {name: value for (ns, name), value in found.items() if ns == GDEPTH and isinstance(value, str)}
    if isinstance(note := found.get((XMP_NOTE, "HasExtendedXMP")), str):
        props["HasExtendedXMP"] = note
    return props


def _extended(data: bytes, primary: JpegImage, guid: str) -> bytes:
    """The Extended XMP packet ``guid`` names, its chunks checked to tile it exactly."""
    if not _GUID.fullmatch(guid):
        raise DepthError(f"xmpNote:HasExtendedXMP {guid[:40]!r} is not 32 upper-case hex digits")
    head = len(EXTENSION_ID) + GUID_SIZE + CHUNK_HEADER.size
    chunks = []
    for seg in primary.applications(data, APP1, EXTENSION_ID):
        payload = seg.payload(data)
        if len(payload) < head:
            raise DepthError(f"Extended XMP segment at offset {seg.offset} is shorter than its {head}-byte header")
        if payload[len(EXTENSION_ID) : len(EXTENSION_ID) + GUID_SIZE] == guid.encode():
            total, at = CHUNK_HEADER.unpack_from(payload, len(EXTENSION_ID) + GUID_SIZE)
            chunks.append((at, total, seg.offset, payload[head:]))
    if not chunks:
        raise DepthError(f"the XMP names Extended XMP {guid}, but no APP1 segment carries it")
    total = chunks[0][1]
    if total > (limit := limits.max_xmp_bytes()):
        raise DepthError(f"Extended XMP of {total} bytes exceeds the {limit}-byte limit")
    pieces, pos = [], 0
    for at, length, where, chunk in sorted(chunks):
        if length != total or at != pos:
            raise DepthError(
                f"Extended XMP segment at offset {where}: chunk at {at} of {length} bytes does not continue at {pos}"
            )
        pieces.append(chunk)
        pos += len(chunk)
    if pos != total:
        raise DepthError(f"Extended XMP {guid}: chunks hold {pos} of its {total} bytes")
    return b"".join(pieces)


def _number(props: dict[str, str], name: str) -> float:
    try:
        value = float(props[name])
    except (KeyError, ValueError):
        raise DepthError(f"GDepth:{name} is missing or not a number: {props.get(name)!r}") from None
    if not math.isfinite(value):
        raise DepthError(f"GDepth:{name} is not finite: {value}")
    return value


def _image(props: dict[str, str]) -> tuple[np.ndarray, int]:
    """The decoded GDepth image as integer codes, and its largest code."""
    from PIL import Image, UnidentifiedImageError

    mime = props.get("Mime", "image/jpeg")
    if mime not in ("image/png", "image/jpeg"):
        raise DepthError(f"GDepth:Mime {mime!r} is neither image/png nor image/jpeg")
    try:
        blob = base64.b64decode("".join(props["Data"].split()), validate=True)  # writers wrap lines
        image = Image.open(io.BytesIO(blob), formats=["PNG", "JPEG"])
        limits.check_pixels(image.width, image.height, "GDepth image")
        limits.check_expansion(image.width * image.height * 2, len(blob), "GDepth image")
        image.load()
    except DepthError:
        raise
    except (
        binascii.Error,
        OSError,
        SyntaxError,
        UnidentifiedImageError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        raise DepthError(f"GDepth:Data is not a readable {mime} image: {exc}") from exc
    if image.mode.startswith("I"):
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16), 65535
    return np.asarray(image.convert("L")), 255
