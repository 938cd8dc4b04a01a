"""Portrait mattes: the auxiliary images beside depth that iPhones store (docs/mattes.md has the bytes).

A matte is a one-component 8-bit image (0 = background … 255 = subject) at its own size, in the
photo's stored orientation.  Its kind is named by an ``auxC`` URN in HEIC; in a JPEG's MP image by
the XMP (``apdi:AuxiliaryImageType`` ``depth`` + SubType ``portraiteffectsmatte``, or the URN).
Each kind has one XMP namespace with one version property; HDR gain maps are not mattes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DepthError
from .formats import StoredFormat
from .xmp import APDI, PREFIXES, packet, properties

#: Apple's HDR gain map: an auxiliary image that is no matte.
GAIN_MAP_URN = "urn:com:apple:photo:2020:aux:hdrgainmap"


@dataclass(frozen=True)
class MatteKind:
    """One kind of matte: CLI/API name, URN, XMP namespace + prefix, version property and the version
    iPhones write, and the ``apdi:AuxiliaryImageSubType`` the portrait matte's XMP carries."""

    name: str
    urn: str
    namespace: str
    prefix: str
    version_property: str
    version: int
    subtype: str | None = None


_SEMANTIC_NS = "http://ns.apple.com/semanticSegmentationMatte/1.0/"


def _semantic(name: str, year: int) -> MatteKind:
    urn = f"urn:com:apple:photo:{year}:aux:semantic{name}matte"
    return MatteKind(name, urn, _SEMANTIC_NS, "semanticSegmentationMatte", "SemanticSegmentationMatteVersion", 65536)


#: Every kind, by name; ``portrait-effects`` first (the default).  Sky's URN is not in a sample.
KINDS: dict[str, MatteKind] = {
    kind.name: kind
    for kind in (
        MatteKind(
            "portrait-effects",
            "urn:com:apple:photo:2018:aux:portraiteffectsmatte",
            "http://ns.apple.com/portraitEffectsMatte/1.0/",
            "portraitEffectsMatte",
            "PortraitEffectsMatteVersion",
            65537,
            "portraiteffectsmatte",
        ),
        _semantic("hair", 2019),
        _semantic("skin", 2019),
        _semantic("teeth", 2019),
        _semantic("glasses", 2020),
        _semantic("sky", 2020),
    )
}
BY_URN = {kind.urn: kind for kind in KINDS.values()}
DEFAULT_KIND = "portrait-effects"


def kind_of(name: str | MatteKind) -> MatteKind:
    """The kind called ``name`` (its name or URN); an unknown one is a DepthError listing the names."""
    if isinstance(name, MatteKind):
        return name
    found = KINDS.get(name) or BY_URN.get(name)
    if found is None:
        raise DepthError(f"unknown matte kind {name!r}; expected one of {', '.join(KINDS)}")
    return found


@dataclass(frozen=True)
class Matte:
    """A matte: its kind, its 8-bit pixels (rows × columns) and the version its XMP says (None: not said)."""

    kind: MatteKind
    pixels: np.ndarray = field(repr=False)
    version: int | None = None

    def __post_init__(self) -> None:
        pixels = np.asarray(self.pixels)
        if pixels.ndim != 2 or pixels.dtype != np.uint8 or 0 in pixels.shape:
            raise DepthError(
                f"a {self.kind.name} matte must be a non-empty 2-D uint8 array, got {pixels.dtype} {pixels.shape}"
            )
        object.__setattr__(self, "pixels", pixels)

    @classmethod
    def of(cls, kind: str | MatteKind, pixels: np.ndarray | Matte) -> Matte:
        """A matte to write: ``pixels`` (or a matte read, whose version it keeps) as ``kind``."""
        if isinstance(pixels, Matte):
            return cls(kind_of(kind), pixels.pixels, pixels.version)
        return cls(kind_of(kind), pixels)

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    def xmp(self, typed: bool) -> bytes:
        """The matte's XMP packet, as iPhones write it (:func:`build_matte_xmp`)."""
        return build_matte_xmp(self.kind, self.version, typed)

    def dictionary_representation(self) -> dict:
        """ImageIO's auxiliary data dictionary: Data, DataDescription, Metadata (the XMP packet)."""
        description = {
            "Width": self.width,
            "Height": self.height,
            "BytesPerRow": self.width,
            "PixelFormat": StoredFormat.L008.code,
        }
        return {"Data": self.pixels.tobytes(), "DataDescription": description, "Metadata": self.xmp(True)}


def build_matte_xmp(kind: MatteKind, version: int | None, typed: bool) -> bytes:
    """The matte's packet: its version property (the kind's iPhone value where ``version`` is None),
    after the ``apdi`` type properties when ``typed`` (always for the portrait matte, whose XMP says
    ``depth`` + its subtype; for semantic mattes only in JPEG, where the URN is the type)."""
    props: list[tuple[str, str, str]] = []
    if kind.subtype:
        code = str(StoredFormat.L008.code)
        props = [(APDI, "AuxiliaryImageSubType", kind.subtype), (APDI, "NativeFormat", code)]
        props += [(APDI, "AuxiliaryImageType", "depth"), (APDI, "StoredFormat", code)]
    elif typed:
        code = str(StoredFormat.L008.code)
        props = [(APDI, "AuxiliaryImageType", kind.urn), (APDI, "StoredFormat", code), (APDI, "NativeFormat", code)]
    props.append((kind.namespace, kind.version_property, str(kind.version if version is None else version)))
    return packet(props, {**PREFIXES, kind.namespace: kind.prefix})


def _type_properties(kind: MatteKind) -> tuple[tuple[str, str | None], ...]:
    """The (AuxiliaryImageType, SubType) pairs that name ``kind`` in an XMP."""
    return (("depth", kind.subtype), (kind.urn, None)) if kind.subtype else ((kind.urn, None),)


def parse_matte_xmp(data: bytes, kind: MatteKind | None = None) -> tuple[MatteKind | None, int | None]:
    """(kind, version) a packet describes: ``kind`` when given (HEIC, where the URN says it), else the
    one its ``apdi`` type properties name (None for depth, gain maps, unknown types); the version is
    None unless the packet holds the kind's version property as an integer."""
    props = properties(data)
    if kind is None:
        image_type = props.get((APDI, "AuxiliaryImageType"))
        subtype = props.get((APDI, "AuxiliaryImageSubType"))
        kind = next((k for k in KINDS.values() if (image_type, subtype) in _type_properties(k)), None)
        if kind is None:
            return None, None
    value = props.get((kind.namespace, kind.version_property))
    return kind, int(value) if isinstance(value, str) and value.strip().isdigit() else None
