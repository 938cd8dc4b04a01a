"""DNG rules of ``gpu-depth verify``: the DNG 1.5 Depth* tags of IFD0 against the depth map IFD.

How Apple's ImageIO reads DNG depth is not known (no sample); these rules check the DNG 1.5
specification's own requirements, which is what raw converters and our reader rely on.
"""

from __future__ import annotations

from ...errors import DepthError
from ..rules import Findings, check_size
from . import plugin as dng
from .tiff import SUBIFDS, Ifd, TiffFile

#: DepthFormat values and what they mean (DNG 1.5).
FORMAT_NAMES = {0: "unknown", dng.LINEAR: "linear", dng.INVERSE: "inverse"}


def check(data: bytes, findings: Findings) -> None:
    tiff, ifds = dng.open_dng(data)
    ifd0 = ifds[0]
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
    try:
        raw = dng.displayed_size(data)
    except DepthError:
        raw = None  # a DNG without a full-resolution IFD: nothing to compare the map with
    if raw is not None:
        turned = dng.orientation(data) in (5, 6, 7, 8)
        check_size(findings, "dng", depth.name, size, raw[::-1] if turned else raw)
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
