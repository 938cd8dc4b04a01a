"""HEIC rules of ``gpu-depth verify``: the depth item against the one an iPhone writes.

iPhone (pug.heic, iOS 16): a hidden ``hvc1`` item, monochrome 8-bit ``hvcC``, ``ispe`` about a fifth
of the photo's, the primary's own ``irot``, an essential ``auxC`` ``urn:mpeg:hevc:2015:auxid:2`` whose
subtype is a depth_representation_info SEI, ``iref auxl`` → the primary (not a tile), and a hidden
``mime`` XMP item (``cdsc`` → depth) whose apdi FloatMin/FloatMax equal the SEI's bounds.  Recent
iPhones code the depth item as a 16-bit lossless ``jpeg`` item instead (libheif issue #910).
"""

from __future__ import annotations

from ... import limits
from ...core.auxiliary import BY_URN
from ...core.metadata import PixelDataInfo
from ...errors import DepthError
from ..jpeg.rules import coding_problem
from ..jpeg.segments import parse_jpeg
from ..rules import Findings, check_depth_xmp, check_exif_signal, check_matte, check_size, same_value
from . import isobmff
from . import plugin as heic
from .depth_sei import (
    NONUNIFORM_DISPARITY,
    UNIFORM_DISPARITY,
    UNIFORM_INVERSE_Z,
    UNIFORM_Z,
    DepthRepresentation,
    parse_aux_subtype,
)
from .isobmff import Meta
from .plugin import DEPTH_URN, DEPTH_URNS, MAX_DEPTH_ITEM_BYTES, XMP_MIME, jpeg_headers

#: The depth URN some tools copy from Apple's private aux types: readers do not take it for depth.
APPLE_PRIVATE_DEPTH = "urn:com:apple:photo:2018:aux:depth"
#: AVIF's (MPEG-B) depth URN: libheif takes it for depth, but iPhones never write it in HEIC.
AVIF_DEPTH_URN = DEPTH_URNS[1]
#: NAL unit types from here on are not picture data (VCL).
FIRST_NON_VCL = 32
#: Where the SEI types put FloatMin/FloatMax: quantity and (low, high) bounds.
_SEI_BOUNDS = {
    UNIFORM_DISPARITY: ("disparity", lambda r: (r.d_min, r.d_max)),
    UNIFORM_Z: ("depth", lambda r: (r.z_near, r.z_far)),
    UNIFORM_INVERSE_Z: ("disparity", lambda r: (_inverse(r.z_far), _inverse(r.z_near))),
}
_SEI_NAMES = {
    UNIFORM_INVERSE_Z: "uniform inverse Z",
    UNIFORM_DISPARITY: "uniform disparity",
    UNIFORM_Z: "uniform Z",
    NONUNIFORM_DISPARITY: "nonuniform disparity",
}


def check(data: bytes, findings: Findings) -> None:
    """Run every HEIC rule; a file whose boxes or item tables cannot be parsed raises DepthError."""
    heif = isobmff.parse_file(memoryview(data))
    meta = heif.meta
    if meta.primary is None or meta.item(meta.primary) is None:
        raise DepthError("meta: no primary item (pitm)")
    _check_exif(heif, findings)
    auxiliary = {item.item_id: aux for item in meta.items if (aux := _auxc(meta, item.item_id, findings))}
    _check_mattes(heif, auxiliary, findings)
    depth_id = _depth_item(meta, auxiliary, findings)
    if depth_id is None:
        return
    urn, subtype, where_auxc = auxiliary[depth_id]
    item = meta.item(depth_id)
    if not item.hidden:
        findings.warning(
            "heic.depth-hidden",
            f"item {depth_id} infe",
            "the depth item is not hidden (infe flags bit 0): readers may list it as a photo of its own",
        )
    info = _check_xmp(heif, depth_id, findings)
    if item.item_type == "jpeg":
        _check_jpeg(heif, depth_id, info, findings)
    elif length_size := _check_codec(meta, depth_id, findings):
        _check_data(heif, depth_id, length_size, findings)
    _check_auxl(meta, depth_id, findings)
    representation = _check_sei(urn, subtype, where_auxc, findings) if urn != AVIF_DEPTH_URN else None
    if representation is not None and info is not None:
        _check_sei_against_xmp(representation, info, where_auxc, findings)
    size = _check_size(meta, depth_id, findings)
    _check_orientation(meta, depth_id, findings)
    if info is not None and size is not None:
        findings.info(
            "heic.depth-found",
            f"item {depth_id}",
            f"{size[0]}x{size[1]} {info.image_type} map, values {info.float_min:g}..{info.float_max:g}",
        )


def _check_exif(heif: isobmff.HeifFile, findings: Findings) -> None:
    exif_id = heic.exif_item(heif.meta)
    if exif_id is None:
        return
    try:
        _, tiff = heic.exif_parts(heif, exif_id)
    except DepthError:  # an Exif item we cannot read is not a depth fault
        return
    check_exif_signal(findings, "heic", f"item {exif_id} Exif", tiff)


def _auxc(meta: Meta, item_id: int, findings: Findings) -> tuple[str, bytes, str] | None:
    """(URN, subtype, where) of an item's auxC; a malformed one is a ``heic.auxc-urn`` error."""
    for index, _ in meta.associations.get(item_id, []):
        if meta.property_type(index) != "auxC":
            continue
        where = f"item {item_id} auxC (property {index})"
        try:
            return (*isobmff.parse_auxc(meta.properties[index - 1], where), where)
        except DepthError as exc:
            findings.error("heic.auxc-urn", where, f"the auxC box cannot be read: {exc}")
    return None


def _depth_item(meta: Meta, auxiliary: dict, findings: Findings) -> int | None:
    """The depth item (a depth URN, preferring one ``auxl`` to the primary); other aux items as info."""
    candidates = []
    for item_id, (urn, _, where) in auxiliary.items():
        if urn in (*DEPTH_URNS, APPLE_PRIVATE_DEPTH):
            candidates.append(item_id)
        elif urn.endswith("matte") and urn not in BY_URN:
            findings.warning("heic.matte-urn", where, f"{urn} is no matte URN ImageIO writes (the mattes' are in docs)")
        elif urn not in BY_URN:
            findings.info("heic.aux-image", where, f"an auxiliary image of type {urn}, not a depth map")
    standard = [i for i in candidates if auxiliary[i][0] != APPLE_PRIVATE_DEPTH]
    linked = [i for i in standard or candidates if meta.primary in meta.referenced("auxl", i)]
    depth_id = (linked or standard or candidates or [None])[0]
    if depth_id is None:
        findings.error("heic.depth-missing", "meta", f"no item has an auxC of type {DEPTH_URN}: the photo has no depth")
        return None
    urn, _, where = auxiliary[depth_id]
    if urn == APPLE_PRIVATE_DEPTH:
        findings.error(
            "heic.auxc-urn",
            where,
            f"auxC type {urn} is not a depth type to libheif or ImageIO; iPhones write {DEPTH_URN}",
        )
    elif urn == AVIF_DEPTH_URN:
        findings.warning(
            "heic.auxc-urn",
            where,
            f"auxC type {urn} is AVIF's depth type; libheif reads it, but iPhones write {DEPTH_URN} in HEIC",
        )
    return depth_id


def _check_mattes(heif: isobmff.HeifFile, auxiliary: dict, findings: Findings) -> None:
    """The matte rules (:func:`check_matte`) on every item whose auxC names a matte URN."""
    meta = heif.meta
    photo = heic.image_size(meta, meta.primary) or (0, 0)
    for item_id, (urn, _, where) in auxiliary.items():
        kind = BY_URN.get(urn)
        if kind is None:
            continue
        xmp_id = heic.xmp_item(meta, item_id)
        try:
            xmp = isobmff.item_data(heif, xmp_id, limits.max_xmp_bytes()) if xmp_id is not None else None
        except DepthError as exc:
            findings.warning("heic.matte-xmp", f"item {xmp_id}", f"the matte's XMP item cannot be read: {exc}")
            xmp = None
        check_matte(findings, "heic", where, kind, xmp, heic.image_size(meta, item_id), photo)
        if meta.primary not in meta.referenced("auxl", item_id):
            findings.warning("heic.matte-auxl", f"item {item_id} iref", "the matte has no auxl to the primary item")


def _check_codec(meta: Meta, depth_id: int, findings: Findings) -> int | None:
    """``heic.depth-codec`` (not HEVC) and ``heic.depth-hvcc`` (not monochrome 8-bit); the NAL length size."""
    item_type = meta.item(depth_id).item_type
    hvcc = meta.first_property(depth_id, "hvcC")
    if item_type != "hvc1" or hvcc is None:
        findings.error(
            "heic.depth-codec",
            f"item {depth_id} infe",
            f"the depth item is {item_type!r}{'' if hvcc else ' without hvcC'}; iPhones store an hvc1 (or jpeg) image",
        )
        return None
    index, raw = hvcc
    where = f"item {depth_id} hvcC (property {index})"
    try:
        config = isobmff.parse_hvcc(raw, where)
    except DepthError as exc:
        findings.error("heic.depth-codec", where, f"hvcC is truncated: {exc}")
        return None
    chroma, bits = config.chroma_format, config.bit_depth
    if chroma != 0 or bits != 8:
        formats = {0: "monochrome", 1: "4:2:0", 2: "4:2:2", 3: "4:4:4"}
        findings.warning(
            "heic.depth-hvcc",
            where,
            f"the depth map is coded {formats[chroma]} {bits}-bit; iPhones store monochrome 8-bit "
            "(heif-convert 1.15 drops deeper maps)",
        )
    return config.length_size


def _check_data(heif: isobmff.HeifFile, depth_id: int, length_size: int, findings: Findings) -> None:
    """``heic.depth-data``: the item's bytes lie in the file and are length-prefixed NAL units with a picture."""
    where = f"item {depth_id} iloc"
    try:
        coded = isobmff.item_data(heif, depth_id, MAX_DEPTH_ITEM_BYTES)
    except DepthError as exc:
        findings.error("heic.depth-data", where, str(exc))
        return
    pos, types = 0, []
    while pos + length_size < len(coded):  # each step moves on by at least length_size + 2 bytes
        size = int.from_bytes(coded[pos : pos + length_size], "big")
        if size < 2 or size > len(coded) - pos - length_size:
            break
        types.append(coded[pos + length_size] >> 1 & 63)
        pos += length_size + size
    if pos != len(coded) or not any(kind < FIRST_NON_VCL for kind in types):
        findings.error(
            "heic.depth-data",
            where,
            f"the {len(coded)} bytes of the depth item are not {length_size}-byte length-prefixed HEVC NAL units "
            "holding a picture",
        )


def _check_jpeg(heif: isobmff.HeifFile, depth_id: int, info: PixelDataInfo | None, findings: Findings) -> None:
    """``heic.depth-data``: a jpeg item's ``jpgC`` and data make one JPEG; ``heic.depth-codec``: coded as iPhones do."""
    where = f"item {depth_id} (JPEG)"
    try:
        data = jpeg_headers(heif.meta, depth_id) + isobmff.item_data(heif, depth_id, MAX_DEPTH_ITEM_BYTES)
        frame = parse_jpeg(data).frame(data)
    except DepthError as exc:
        findings.error("heic.depth-data", where, f"the depth item is not a JPEG: {exc}")
        return
    if frame is None:
        findings.error("heic.depth-data", where, "the depth JPEG has no start-of-frame segment")
        return
    if (problem := coding_problem(frame, info)) is not None:
        findings.warning("heic.depth-codec", where, problem)
    size = heic.image_size(heif.meta, depth_id)
    if size is not None and size != (frame.width, frame.height):
        findings.error(
            "heic.depth-size",
            where,
            f"the depth JPEG is {frame.width}x{frame.height} but the item's ispe says {size[0]}x{size[1]}: "
            "readers lay the map out by its ispe",
        )


def _check_auxl(meta: Meta, depth_id: int, findings: Findings) -> None:
    targets = meta.referenced("auxl", depth_id)
    where = f"item {depth_id} iref auxl"
    if meta.primary in targets:
        return
    if not targets:
        findings.error("heic.auxl-target", where, "no iref auxl links the depth item to the primary image")
        return
    tiles = meta.referenced("dimg", meta.primary)
    kind = "a tile of the primary" if targets[0] in tiles else "not the primary"
    findings.error(
        "heic.auxl-target",
        where,
        f"auxl points to item {targets[0]}, {kind} (item {meta.primary}): readers attach no depth to the photo",
    )


def _check_sei(urn: str, subtype: bytes, where: str, findings: Findings) -> DepthRepresentation | None:
    if not subtype:
        findings.error(
            "heic.sei-missing",
            where,
            "auxC has no depth_representation_info SEI (the subtype is empty); iPhones write one with the range",
        )
        return None
    try:
        representation = parse_aux_subtype(subtype)
    except DepthError as exc:
        findings.error("heic.sei-invalid", where, str(exc))
        return None
    if representation is None:
        findings.error("heic.sei-invalid", where, "the auxC subtype holds no depth_representation_info SEI (177)")
    return representation


def _check_xmp(heif: isobmff.HeifFile, depth_id: int, findings: Findings) -> PixelDataInfo | None:
    xmp_id = heic.xmp_item(heif.meta, depth_id)
    if xmp_id is None:
        findings.error(
            "heic.xmp-missing",
            f"item {depth_id} iref cdsc",
            f"no {XMP_MIME} item is linked to the depth item by iref cdsc: Apple readers find no apdi description",
        )
        return None
    where = f"item {xmp_id} (XMP, cdsc → {depth_id})"
    try:
        xmp = isobmff.item_data(heif, xmp_id)
    except DepthError as exc:
        findings.error("heic.xmp-fields", where, f"the depth XMP cannot be read: {exc}")
        return None
    return check_depth_xmp(findings, xmp, "heic", where)


def _check_sei_against_xmp(rep: DepthRepresentation, info: PixelDataInfo, where: str, findings: Findings) -> None:
    """``heic.sei-type`` (SEI and XMP disagree on the quantity) and ``heic.sei-range`` (on the bounds)."""
    quantity, bounds = _SEI_BOUNDS.get(rep.kind, (None, None))
    if quantity != info.image_type:
        name = _SEI_NAMES.get(rep.kind, f"type {rep.kind}")
        findings.warning(
            "heic.sei-type",
            where,
            f"the SEI says {name} but the XMP's apdi:AuxiliaryImageType is {info.image_type}",
        )
        return
    low, high = bounds(rep)
    if low is None or high is None or not (same_value(low, info.float_min) and same_value(high, info.float_max)):
        findings.warning(
            "heic.sei-range",
            where,
            f"the SEI range {low}..{high} differs from the XMP's FloatMin/FloatMax "
            f"{info.float_min}..{info.float_max}: readers of one or the other see other values",
        )


def _check_size(meta: Meta, depth_id: int, findings: Findings) -> tuple[int, int] | None:
    depth = heic.image_size(meta, depth_id)
    if depth is None:
        findings.error("heic.depth-size", f"item {depth_id}", "the depth item has no readable ispe")
        return None
    photo = heic.image_size(meta, meta.primary)
    if photo is not None:
        check_size(findings, "heic", f"item {depth_id} ispe", depth, photo)
    return depth


def _check_orientation(meta: Meta, depth_id: int, findings: Findings) -> None:
    photo, depth = _transforms(meta, meta.primary), _transforms(meta, depth_id)
    if photo != depth:
        findings.warning(
            "heic.orientation",
            f"item {depth_id} irot/imir",
            f"the depth item is turned by {_spell(depth)} but the photo by {_spell(photo)}: "
            "the map will not line up with the photo as displayed",
        )


def _transforms(meta: Meta, item_id: int) -> list[tuple[str, int]]:
    """The item's turning steps, leaving out ``irot 0`` (which turns nothing)."""
    return [step for step in heic.transforms(meta, item_id) if step != ("irot", 0)]


def _spell(steps: list[tuple[str, int]]) -> str:
    return " then ".join(f"{kind} {value}" for kind, value in steps) or "nothing"


def _inverse(value: float | None) -> float | None:
    return 1 / value if value else None
