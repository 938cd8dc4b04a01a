"""Apple's depth XMP (``apdi`` pixel data info + ``depthData``), built and parsed as iPhones write it.

Parsing goes through expat with DTDs and entity declarations refused, so no entity expansion or
external fetch can happen whatever a file holds.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.parsers import expat

from .. import limits
from ..errors import DepthError
from .metadata import CameraCalibration, DepthMetadata, PixelDataInfo, is_depth_type

X = "adobe:ns:meta/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
APDI = "http://ns.apple.com/pixeldatainfo/1.0/"
DEPTH_DATA = "http://ns.apple.com/depthData/1.0/"
PREFIXES = {X: "x", RDF: "rdf", APDI: "apdi", DEPTH_DATA: "depthData"}
#: Deepest element nesting parsed (Apple's packets nest 6 deep), so walking the tree stays linear.
MAX_XML_DEPTH = 64
_LIST_TAGS = frozenset(f"{{{RDF}}}{kind}" for kind in ("Seq", "Bag", "Alt"))


def build_depth_xmp(info: PixelDataInfo, metadata: DepthMetadata) -> bytes:
    """The ``<x:xmpmeta>`` packet Apple stores beside a depth map (no xpacket wrapper); metadata fields
    left unknown are written as the default writer profile says (:meth:`DepthMetadata.for_writing`)."""
    props = [
        (APDI, "AuxiliaryImageType", info.image_type),
        (APDI, "NativeFormat", str(info.native_format)),
        (APDI, "StoredFormat", str(info.stored_format)),
        (APDI, "IntMinValue", str(info.int_min)),
        (APDI, "IntMaxValue", str(info.int_max)),
        (APDI, "FloatMinValue", repr(float(info.float_min))),
        (APDI, "FloatMaxValue", repr(float(info.float_max))),
    ]
    if info.subtype:
        props.append((APDI, "AuxiliaryImageSubType", info.subtype))
    return packet(props + _metadata_properties(metadata.for_writing()))


def build_metadata_xmp(metadata: DepthMetadata) -> bytes:
    """The ``depthData`` properties alone, the known ones: the Metadata of a depth dictionary."""
    return packet(_metadata_properties(metadata))


def parse_depth_xmp(data: bytes) -> tuple[PixelDataInfo | None, DepthMetadata]:
    """Pixel data info and metadata of a depth map's packet.

    The info is None unless the packet describes a depth or disparity map: that is decided first,
    from ``apdi:AuxiliaryImageType`` and ``AuxiliaryImageSubType``, and the map fields of any other
    auxiliary image (mattes, HDR gain maps, types we do not know) are never parsed.
    """
    props = _properties(parse_xml(data))
    return _pixel_data_info(props), _metadata(props)


def parse_metadata_xmp(data: bytes | str) -> DepthMetadata:
    return _metadata(_properties(parse_xml(data)))


def properties(data: bytes | str) -> dict[tuple[str, str], str | list[str]]:
    """Every property of every rdf:Description of a packet, keyed by (namespace, name): text, or the
    items of a Seq/Bag/Alt."""
    return _properties(parse_xml(data))


def parse_xml(data: bytes | str) -> ET.Element:
    """Parse XML refusing DTDs, entity declarations and nesting beyond MAX_XML_DEPTH; errors are one DepthError line.

    XMP is UTF-8, UTF-16 or UTF-32 (told by its first bytes); an encoding declaration is ignored.
    """
    if len(data) > (limit := limits.max_xmp_bytes()):
        raise DepthError(f"XMP packet of {len(data)} bytes exceeds the {limit}-byte limit")
    text = data if isinstance(data, str) else _decode(data)
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(encoding="utf-8", namespace_separator="}")  # overrides any declaration

    def refuse(*_: object) -> None:
        raise DepthError("XMP: DTDs and entity declarations are not allowed")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    depth = 0

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_XML_DEPTH:
            raise DepthError(
                f"XMP: elements nested deeper than {MAX_XML_DEPTH} levels (line {parser.CurrentLineNumber})"
            )
        builder.start(_clark(tag), {_clark(k): v for k, v in attrs.items()})

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(_clark(tag))

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(text.rstrip("\0 \t\r\n").encode("utf-8", "surrogatepass"), True)
        return builder.close()
    except expat.ExpatError as exc:
        raise DepthError(f"XMP: malformed XML ({exc})") from exc


def _decode(data: bytes) -> str:
    """XMP bytes as text, in the Unicode encoding their first bytes show (XML 1.0 appendix F)."""
    head = data[:4].ljust(4, b"-")
    if head[:3] == b"\0\0\0" or head == b"\0\0\xfe\xff":
        encoding = "utf-32-be"
    elif head[1:] == b"\0\0\0" or head == b"\xff\xfe\0\0":
        encoding = "utf-32-le"
    elif head[0] == 0 or head[:2] == b"\xfe\xff":
        encoding = "utf-16-be"
    elif head[1] == 0 or head[:2] == b"\xff\xfe":
        encoding = "utf-16-le"
    else:
        encoding = "utf-8"
    try:
        return data.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise DepthError(f"XMP: not {encoding.upper()} text ({exc.reason} at byte {exc.start})") from None


def _clark(name: str) -> str:
    return "{" + name if "}" in name else name


def _properties(root: ET.Element) -> dict[tuple[str, str], str | list[str]]:
    """Simple and Seq/Bag/Alt-valued properties of every rdf:Description, keyed by (namespace, name)."""
    props: dict[tuple[str, str], str | list[str]] = {}
    for desc in root.iter(f"{{{RDF}}}Description"):
        for key, value in desc.attrib.items():
            if key.startswith("{") and not key.startswith(f"{{{RDF}}}"):
                props[_split(key)] = value
        for child in desc:  # a list value is property > rdf:Seq/Bag/Alt > rdf:li
            items = [li.text or "" for seq in child if seq.tag in _LIST_TAGS for li in seq if li.tag == f"{{{RDF}}}li"]
            props[_split(child.tag)] = items if items else (child.text or "").strip()
    return props


def _split(tag: str) -> tuple[str, str]:
    ns, _, name = tag[1:].partition("}")
    return ns, name


def _pixel_data_info(props: dict) -> PixelDataInfo | None:
    if not is_depth_type(props.get((APDI, "AuxiliaryImageType")), props.get((APDI, "AuxiliaryImageSubType"))):
        return None
    return PixelDataInfo(
        image_type=_text(props, APDI, "AuxiliaryImageType"),
        native_format=_number(props, APDI, "NativeFormat", int),
        stored_format=_number(props, APDI, "StoredFormat", int, 0),
        int_min=_number(props, APDI, "IntMinValue", int, 0),
        int_max=_number(props, APDI, "IntMaxValue", int, 255),
        float_min=_number(props, APDI, "FloatMinValue", float, 0.0),
        float_max=_number(props, APDI, "FloatMaxValue", float, 0.0),
        subtype=_text(props, APDI, "AuxiliaryImageSubType", None),
    )


def _metadata(props: dict) -> DepthMetadata:
    calibration = None
    if (DEPTH_DATA, "IntrinsicMatrix") in props:
        calibration = _calibration(props)
    filtered, high = (_text(props, DEPTH_DATA, name, None) for name in ("Filtered", "PortraitScoreIsHigh"))
    return DepthMetadata(
        accuracy=_text(props, DEPTH_DATA, "Accuracy", None),
        filtered=None if filtered is None else filtered.lower() == "true",
        quality=_text(props, DEPTH_DATA, "Quality", None),
        version=_number(props, DEPTH_DATA, "DepthDataVersion", int, None),
        calibration=calibration,
        portrait_score=_number(props, DEPTH_DATA, "PortraitScore", float, None),
        portrait_score_is_high=None if high is None else high.lower() == "true",
    )


def _calibration(props: dict) -> CameraCalibration:
    intrinsic = _sequence(props, "IntrinsicMatrix", 9)
    extra = {}
    if (DEPTH_DATA, "ExtrinsicMatrix") in props:
        extra["extrinsic_matrix"] = _rows_of(_sequence(props, "ExtrinsicMatrix", 12), rows=3, cols=4)
    if (DEPTH_DATA, "LensDistortionCenterOffsetX") in props:
        extra["lens_distortion_center"] = (
            _number(props, DEPTH_DATA, "LensDistortionCenterOffsetX", float),
            _number(props, DEPTH_DATA, "LensDistortionCenterOffsetY", float),
        )
    if (DEPTH_DATA, "PixelSize") in props:
        extra["pixel_size"] = _number(props, DEPTH_DATA, "PixelSize", float)
    return CameraCalibration(
        intrinsic_matrix=_rows_of(intrinsic, rows=3, cols=3),
        reference_dimensions=(
            _number(props, DEPTH_DATA, "IntrinsicMatrixReferenceWidth", int),
            _number(props, DEPTH_DATA, "IntrinsicMatrixReferenceHeight", int),
        ),
        lens_distortion_coefficients=_optional_sequence(props, "LensDistortionCoefficients"),
        inverse_lens_distortion_coefficients=_optional_sequence(props, "InverseLensDistortionCoefficients"),
        **extra,
    )


def _rows_of(column_major: list[float], rows: int, cols: int) -> tuple:
    """XMP matrices are column-major; CameraCalibration keeps them row-major."""
    return tuple(tuple(column_major[c * rows + r] for c in range(cols)) for r in range(rows))


def _column_major(matrix: tuple) -> list[float]:
    return [float(row[c]) for c in range(len(matrix[0])) for row in matrix]


def _metadata_properties(meta: DepthMetadata) -> list[tuple[str, str, str | list[str]]]:
    fields = [
        ("DepthDataVersion", meta.version, str),
        ("Accuracy", meta.accuracy, str),
        ("Filtered", meta.filtered, _boolean),
        ("Quality", meta.quality, str),
        ("PortraitScore", meta.portrait_score, "{:f}".format),
        ("PortraitScoreIsHigh", meta.portrait_score_is_high, _boolean),
    ]
    props: list[tuple[str, str, str | list[str]]] = [
        (DEPTH_DATA, name, text(value)) for name, value, text in fields if value is not None
    ]
    cal = meta.calibration
    if cal is None:
        return props
    props += [
        (DEPTH_DATA, "IntrinsicMatrix", [repr(v) for v in _column_major(cal.intrinsic_matrix)]),
        (DEPTH_DATA, "IntrinsicMatrixReferenceWidth", str(cal.reference_dimensions[0])),
        (DEPTH_DATA, "IntrinsicMatrixReferenceHeight", str(cal.reference_dimensions[1])),
        (DEPTH_DATA, "ExtrinsicMatrix", [repr(v) for v in _column_major(cal.extrinsic_matrix)]),
    ]
    if cal.lens_distortion_coefficients:
        props.append(
            (DEPTH_DATA, "LensDistortionCoefficients", [repr(float(v)) for v in cal.lens_distortion_coefficients])
        )
    if cal.inverse_lens_distortion_coefficients:
        props.append(
            (
                DEPTH_DATA,
                "InverseLensDistortionCoefficients",
                [repr(float(v)) for v in cal.inverse_lens_distortion_coefficients],
            )
        )
    if cal.lens_distortion_center is not None:
        props += [
            (DEPTH_DATA, "LensDistortionCenterOffsetX", repr(float(cal.lens_distortion_center[0]))),
            (DEPTH_DATA, "LensDistortionCenterOffsetY", repr(float(cal.lens_distortion_center[1]))),
        ]
    if cal.pixel_size is not None:
        props.append((DEPTH_DATA, "PixelSize", f"{cal.pixel_size:f}"))
    return props


def _boolean(value: bool) -> str:
    return "True" if value else "False"


def packet(props: list[tuple[str, str, str | list[str]]], prefixes: dict[str, str] = PREFIXES) -> bytes:
    """Serialise properties in Apple's layout: one rdf:Description, Seqs for lists; ``prefixes`` maps
    each namespace used to its prefix, declared in that order."""
    used = [ns for ns in prefixes if ns not in (X, RDF) and any(p[0] == ns for p in props)]
    xmlns = "".join(f'\n            xmlns:{prefixes[ns]}="{ns}"' for ns in used)
    lines = [
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="gpu_depth">',
        '   <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
        f'      <rdf:Description rdf:about=""{xmlns}>',
    ]
    for ns, name, value in props:
        tag = f"{prefixes[ns]}:{name}"
        if isinstance(value, list):
            items = "".join(f"\n               <rdf:li>{_escape(v)}</rdf:li>" for v in value)
            lines.append(f"         <{tag}>\n            <rdf:Seq>{items}\n            </rdf:Seq>\n         </{tag}>")
        else:
            lines.append(f"         <{tag}>{_escape(value)}</{tag}>")
    lines += ["      </rdf:Description>", "   </rdf:RDF>", "</x:xmpmeta>"]
    return "\n".join(lines).encode("utf-8")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MISSING = object()


def _text(props: dict, ns: str, name: str, default: object = _MISSING):
    """A simple text property; ``default`` when missing or empty, else it is required."""
    value = props.get((ns, name))
    if value in (None, "") and default is not _MISSING:
        return default
    if not isinstance(value, str) or not value:
        raise DepthError(f"XMP: {PREFIXES[ns]}:{name} is missing or not text")
    return value


def _number(props: dict, ns: str, name: str, kind: type, default: object = _MISSING):
    """A decimal integer (``kind`` int) or finite number (float) property; ``default`` when missing."""
    value = props.get((ns, name))
    if value is None and default is not _MISSING:
        return default
    what = f"XMP: {PREFIXES[ns]}:{name}"
    if not isinstance(value, str):
        raise DepthError(f"{what} is missing or not a number")
    return limits.parse_int(value, what) if kind is int else limits.parse_float(value, what)


def _sequence(props: dict, name: str, length: int) -> list[float]:
    values = props.get((DEPTH_DATA, name))
    if not isinstance(values, list) or len(values) != length:
        raise DepthError(f"XMP: depthData:{name} must be a Seq of {length} numbers")
    return [limits.parse_float(v, f"XMP: a value of depthData:{name}") for v in values]


def _optional_sequence(props: dict, name: str) -> tuple[float, ...]:
    values = props.get((DEPTH_DATA, name))
    if values is None:
        return ()
    return tuple(_sequence(props, name, len(values) if isinstance(values, list) else -1))
