"""DNG rules of ``gpu-depth verify``: the DNG 1.5 Depth* tags of IFD0 against the depth map IFD, and
the DNG 1.6 semantic masks (mattes).

How Apple's ImageIO reads DNG depth is not known (no sample); these rules check the DNG 1.5 and 1.6
specifications' own requirements, which is what raw converters and our reader rely on.
"""

from __future__ import annotations

from ...errors import DepthError
from ..rules import Findings, check_matte, check_size
from . import plugin as dng
from .tiff import SUBIFDS, Ifd, TiffFile

#: DepthFormat values and what they mean (DNG 1.5).
FORMAT_NAMES = {0: "unknown", dng.LINEAR: "linear", dng.INVERSE: "inverse"}


def check(data: bytes, findings: Findings) -> None:
    tiff, ifds = dng.open_dng(data)
    ifd0 = ifds[0]
    _check_masks(data, tiff, ifds, findings)
    found = dng.depth_ifds(tiff, ifds)
    if not found:
        findings.error("dng.depth-missing", "IFD0", "no IFD has NewSubFileType 8 (depth map)")
        return
    depth = found[0]
    _check_version(tiff, ifd0, findings)
    _check_link(tiff, ifd0, depth, findings)
    _check_photometric(tiff, depth, findings)
    if not _check_range(tiff, ifd0, findings):
        return
    try:
        result = dng.read_depth(data)
    except DepthError as exc:
        findings.error("dng.depth-samples", depth.name, f"the depth samples cannot be read: {exc}")
        return
    size = (result.width, result.height)
    raw = _stored_raw_size(data)
    if raw is not None:
        check_size(findings, "dng", depth.name, size, raw)
    findings.info("dng.depth-found", depth.name, f"{size[0]}x{size[1]} {result.pixel_format.quantity} map")


def _check_version(tiff: TiffFile, ifd0: Ifd, findings: Findings) -> None:
    version = tuple(tiff.integers(ifd0, dng.DNG_VERSION))
    if version < dng.DEPTH_DNG_VERSION:
        findings.warning(
            "dng.version",
            "IFD0 DNGVersion",
            f"DNGVersion {'.'.join(map(str, version))} predates 1.5, which defines depth maps",
        )


def _check_link(tiff: TiffFile, ifd0: Ifd, depth: Ifd, findings: Findings) -> None:
    subifds = tiff.integers(ifd0, SUBIFDS) if SUBIFDS in ifd0 else ()
    if depth.offset not in subifds:
        findings.warning("dng.depth-link", depth.name, "the depth map IFD is not one of IFD0's SubIFDs")


def _check_photometric(tiff: TiffFile, depth: Ifd, findings: Findings) -> None:
    value = dng.scalar(tiff, depth, dng.PHOTOMETRIC, 0)
    if value != dng.PHOTOMETRIC_DEPTH:
        findings.warning(
            "dng.depth-photometric",
            f"{depth.name} PhotometricInterpretation",
            f"PhotometricInterpretation is {value}; DNG 1.5 requires {dng.PHOTOMETRIC_DEPTH} (Depth)",
        )


def _check_range(tiff: TiffFile, ifd0: Ifd, findings: Findings) -> bool:
    """Rule ``dng.depth-tags``: DepthFormat/DepthNear/DepthFar give a usable mapping."""
    if dng.DEPTH_FORMAT not in ifd0:
        findings.error("dng.depth-tags", "IFD0", "the depth map has no DepthFormat tag in IFD0")
        return False
    try:
        form, near, far = dng.depth_range(tiff, ifd0)
    except DepthError as exc:
        findings.error("dng.depth-tags", "IFD0 DepthFormat/DepthNear/DepthFar", str(exc))
        return False
    if dng.scalar(tiff, ifd0, dng.DEPTH_UNITS, 0) != dng.METERS:
        findings.info("dng.depth-units", "IFD0 DepthUnits", "DepthUnits is not metres: distances are relative")
    findings.info("dng.depth-range", "IFD0", f"{FORMAT_NAMES[form]} DepthFormat, DepthNear {near:g}, DepthFar {far:g}")
    return True


def _stored_raw_size(data: bytes) -> tuple[int, int] | None:
    """The raw image's (width, height) as stored, which depth maps and masks share; None without one."""
    try:
        raw = dng.displayed_size(data)
    except DepthError:
        return None  # a DNG without a full-resolution IFD: nothing to compare with
    return raw[::-1] if dng.orientation(data) in (5, 6, 7, 8) else raw


def _check_masks(data: bytes, tiff: TiffFile, ifds: list[Ifd], findings: Findings) -> None:
    """Rules ``dng.matte-tags`` (a mask's PhotometricInterpretation, SemanticName and MaskSubArea; mask tags
    outside masks), ``dng.matte-link``, ``dng.matte-name`` (info: a name that is no matte kind),
    ``dng.matte-samples``, ``dng.version`` (below 1.6) and the shared matte rules on each matte."""
    masks = dng.semantic_masks(tiff, ifds)
    for ifd in ifds:
        stray = [ifd.entries[tag].name for tag in MASK_TAGS if tag in ifd]
        if stray and dng.scalar(tiff, ifd, dng.NEW_SUBFILE_TYPE, 0) != dng.SEMANTIC_MASK:
            findings.warning("dng.matte-tags", ifd.name, f"{', '.join(stray)} belong in semantic mask IFDs only")
    if not masks:
        return
    version = tuple(tiff.integers(ifds[0], dng.DNG_VERSION))
    if version < dng.MASK_DNG_VERSION:
        findings.warning(
            "dng.version",
            "IFD0 DNGVersion",
            f"DNGVersion {'.'.join(map(str, version))} predates 1.6, which defines semantic masks",
        )
    raw = _stored_raw_size(data)
    subifds = tiff.integers(ifds[0], SUBIFDS) if SUBIFDS in ifds[0] else ()
    mattes = iter(_read_mattes(data, findings))
    for ifd, name, kind in masks:
        _check_mask_tags(tiff, ifd, name, findings)
        if ifd.offset not in subifds:
            findings.warning("dng.matte-link", ifd.name, "the semantic mask IFD is not one of IFD0's SubIFDs")
        if kind is None:
            findings.info("dng.matte-name", ifd.name, f"a semantic mask named {name!r}, which names no matte kind")
            continue
        matte = next(mattes, None)
        size = (matte.width, matte.height) if matte is not None else dng.mask_size(tiff, ifd)
        check_matte(findings, "dng", ifd.name, kind, dng.mask_xmp(ifd), size, raw or size)


#: The DNG 1.6 tags that belong in semantic mask IFDs only.
MASK_TAGS = (dng.SEMANTIC_NAME, dng.SEMANTIC_INSTANCE_ID, dng.MASK_SUB_AREA)


def _read_mattes(data: bytes, findings: Findings) -> list:
    """The DNG's mattes, or none (rule ``dng.matte-samples``) when they cannot be read."""
    try:
        return dng.read_mattes(data)
    except DepthError as exc:
        findings.error("dng.matte-samples", "SubIFDs", f"the mattes cannot be read: {exc}")
        return []


def _check_mask_tags(tiff: TiffFile, ifd: Ifd, name: str | None, findings: Findings) -> None:
    photometric = dng.scalar(tiff, ifd, dng.PHOTOMETRIC, 0)
    if photometric != dng.PHOTOMETRIC_MASK:
        findings.warning(
            "dng.matte-tags",
            f"{ifd.name} PhotometricInterpretation",
            f"PhotometricInterpretation is {photometric}; DNG 1.6 requires {dng.PHOTOMETRIC_MASK} (PhotometricMask)",
        )
    if not name:
        findings.warning(
            "dng.matte-tags",
            f"{ifd.name} SemanticName",
            "the semantic mask has no SemanticName, which DNG 1.6 requires",
        )
    if dng.MASK_SUB_AREA in ifd and dng.mask_sub_area(tiff, ifd) is None:
        findings.warning(
            "dng.matte-tags",
            f"{ifd.name} MaskSubArea",
            "MaskSubArea is not 4 LONGs placing the stored mask inside the full one: readers ignore it",
        )
