"""What the verify rules of every container share: findings, the depth XMP rules and the size rules.

The rules compare a file with what iPhones write (``depth-formats.md``) and return :class:`Finding` s:
``error`` (an Apple reader will not see the depth), ``warning`` (it will, but not as it sees an
iPhone's), ``info``.  Each format's own rules are ``containers/<format>/rules.py``, one function
``check(data, findings)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..core.auxiliary import MatteKind, parse_matte_xmp
from ..core.metadata import PixelDataInfo, is_depth_type
from ..core.orientation import ASPECT_TOLERANCE
from ..core.xmp import APDI, DEPTH_DATA, parse_depth_xmp, properties
from ..errors import DepthError
from . import exif

SEVERITIES = ("error", "warning", "info")
#: apdi properties an Apple reader needs to turn the stored map into AVDepthData.
REQUIRED_APDI = (
    "AuxiliaryImageType",
    "NativeFormat",
    "StoredFormat",
    "IntMinValue",
    "IntMaxValue",
    "FloatMinValue",
    "FloatMaxValue",
)
#: depthData properties every iPhone writes (AVDepthData's accuracy, filtering, quality, version).
IPHONE_DEPTH_DATA = ("DepthDataVersion", "Accuracy", "Filtered", "Quality")
#: Of those, what macOS ImageIO leaves out for a custom map (CGImageDestinationAddAuxiliaryDataInfo).
IMAGEIO_OMITS = ("DepthDataVersion",)
#: depthData properties that tell Photos a depth map is fit for Portrait effects.
PORTRAIT_SIGNALS = ("PortraitScore", "PortraitScoreIsHigh")


@dataclass(frozen=True)
class Finding:
    """One verdict: ``severity`` (error/warning/info), a stable ``rule`` id, what and where."""

    severity: str
    rule: str
    message: str
    where: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.severity}: {self.rule}: {self.where}: {self.message}"


class Findings(list):
    """The findings of one file, in the order the rules ran."""

    def error(self, rule: str, where: str, message: str) -> None:
        self.append(Finding("error", rule, message, where))

    def warning(self, rule: str, where: str, message: str) -> None:
        self.append(Finding("warning", rule, message, where))

    def info(self, rule: str, where: str, message: str) -> None:
        self.append(Finding("info", rule, message, where))


def check_depth_xmp(findings: Findings, xmp: bytes, container: str, where: str) -> PixelDataInfo | None:
    """Rules ``<container>.xmp-fields``/``xmp-values``/``xmp-metadata`` on a depth map's XMP; its info if usable."""
    try:
        names = xmp_property_names(xmp)
    except DepthError as exc:
        findings.error(f"{container}.xmp-fields", where, f"the depth XMP cannot be parsed: {exc}")
        return None
    missing = [name for name in REQUIRED_APDI if (APDI, name) not in names]
    if missing:
        listed = ", ".join(f"apdi:{name}" for name in missing)
        findings.error(f"{container}.xmp-fields", where, f"the depth XMP lacks {listed}")
        return None
    kind, subtype = xmp_text(xmp, APDI, "AuxiliaryImageType"), xmp_text(xmp, APDI, "AuxiliaryImageSubType")
    if not is_depth_type(kind, subtype):
        kind = f"{kind}/{subtype}" if subtype else kind
        message = f"apdi:AuxiliaryImageType {kind} is not 'disparity' or 'depth'"
        findings.error(f"{container}.xmp-values", where, message)
        return None
    try:
        info, _ = parse_depth_xmp(xmp)
        problems = info.problems()
    except DepthError as exc:
        problems = [str(exc)]
    if problems:
        findings.error(f"{container}.xmp-values", where, "; ".join(problems))
        return None
    missing = [name for name in IPHONE_DEPTH_DATA if (DEPTH_DATA, name) not in names]
    if missing:
        listed = ", ".join(f"depthData:{name}" for name in missing)
        report = findings.info if set(missing) <= set(IMAGEIO_OMITS) else findings.warning
        report(f"{container}.xmp-metadata", where, f"the depth XMP lacks {listed}, which iPhones write")
    signals = [
        f"depthData:{name} {xmp_text(xmp, DEPTH_DATA, name)}"
        for name in PORTRAIT_SIGNALS
        if (DEPTH_DATA, name) in names
    ]
    if signals:
        findings.info(f"{container}.portrait", where, "Portrait signals: " + ", ".join(signals))
    return info


def check_exif_signal(findings: Findings, container: str, where: str, tiff: bytes) -> None:
    """Info: the photo's Exif CustomRendered, which iPhones set to 8 (Portrait) beside a depth map."""
    try:
        value = exif.custom_rendered(tiff)
    except DepthError:  # an Exif we cannot read is not a depth fault
        return
    if value is not None:
        name = exif.RENDERINGS.get(value, "unknown")
        findings.info(f"{container}.portrait-exif", where, f"Exif CustomRendered {value} ({name})")


def xmp_property_names(xmp: bytes) -> set[tuple[str, str]]:
    """(namespace, name) of every property of every rdf:Description, as attribute or element."""
    return set(properties(xmp))


def xmp_text(xmp: bytes, namespace: str, name: str) -> str | None:
    """A simple property's text (attribute or element form), or None; None for unparseable XMP."""
    try:
        value = properties(xmp).get((namespace, name))
    except DepthError:
        return None
    return value if isinstance(value, str) else None


def check_size(findings: Findings, container: str, where: str, depth: tuple[int, int], photo: tuple[int, int]) -> None:
    """Rules ``<container>.depth-size`` and ``depth-aspect``: the map against the photo's stored size."""
    (width, height), (photo_width, photo_height) = depth, photo
    if width > photo_width or height > photo_height:
        findings.warning(
            f"{container}.depth-size",
            where,
            f"the {width}x{height} depth map is larger than the {photo_width}x{photo_height} photo "
            "(iPhones store about a fifth of its size)",
        )
    slack = ASPECT_TOLERANCE * height * photo_width + photo_width + photo_height  # and one pixel of rounding
    if abs(width * photo_height - height * photo_width) > slack:
        findings.warning(
            f"{container}.depth-aspect",
            where,
            f"the {width}x{height} depth map has another aspect ratio than the photo's stored "
            f"{photo_width}x{photo_height}: it will be stretched over it",
        )


def check_matte(
    findings: Findings,
    container: str,
    where: str,
    kind: MatteKind,
    xmp: bytes | None,
    size: tuple[int, int] | None,
    photo: tuple[int, int],
) -> None:
    """Rules ``<container>.matte`` (info: kind, size, version), ``matte-xmp`` (no XMP, no version, a
    portrait matte's XMP without its apdi type) and ``matte-size`` (larger than the photo, or of
    another aspect ratio; iPhones store half the photo's size)."""
    version = None
    if xmp is None:
        findings.warning(f"{container}.matte-xmp", where, f"the {kind.name} matte has no XMP, which iPhones write")
    else:
        try:
            typed, _ = parse_matte_xmp(xmp)
            _, version = parse_matte_xmp(xmp, kind)
        except DepthError as exc:
            findings.warning(f"{container}.matte-xmp", where, f"the {kind.name} matte's XMP cannot be parsed: {exc}")
            typed = kind
        if version is None:
            findings.warning(
                f"{container}.matte-xmp",
                where,
                f"the matte XMP lacks {kind.prefix}:{kind.version_property} (iPhones write {kind.version})",
            )
        if kind.subtype and typed != kind:
            findings.warning(
                f"{container}.matte-xmp",
                where,
                f"the portrait matte's XMP does not say apdi:AuxiliaryImageType depth, SubType {kind.subtype}",
            )
    shown = f"{size[0]}x{size[1]} " if size else ""
    findings.info(f"{container}.matte", where, f"a {shown}{kind.name} matte (version {version}), not a depth map")
    if size is None:
        return
    (width, height), (photo_width, photo_height) = size, photo
    slack = ASPECT_TOLERANCE * height * photo_width + photo_width + photo_height
    if width > photo_width or height > photo_height or abs(width * photo_height - height * photo_width) > slack:
        findings.warning(
            f"{container}.matte-size",
            where,
            f"the {width}x{height} {kind.name} matte does not fit the {photo_width}x{photo_height} photo "
            "(iPhones store half its size, same aspect ratio)",
        )


def same_value(a: float, b: float) -> bool:
    """Equal as far as Apple's six-decimal XMP floats tell."""
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
