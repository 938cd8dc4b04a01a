"""JPEG rules of ``gpu-depth verify``: the MPF index and the depth image against an iPhone's.

iPhone (iOS 12 JPEG): the primary's APP2 ``MPF`` lists every image; entry k > 0 gives the size and
offset (from the MPF TIFF header) of a whole JPEG after the primary's EOI; the depth image is a
one-component JPEG (8-bit for StoredFormat L008, 16-bit lossless for L016) whose APP1 XMP holds
apdi/depthData and whose own APP2 MPF repeats NumberOfImages.  Apple writes entry 0's size wrong
(reported as info); mattes are their own entries.
"""

from __future__ import annotations

from ...core.auxiliary import MatteKind, parse_matte_xmp
from ...core.formats import StoredFormat
from ...core.metadata import PixelDataInfo
from ...core.xmp import APDI, parse_xml
from ...errors import DepthError
from ..rules import Findings, check_depth_xmp, check_exif_signal, check_matte, check_size, xmp_text
from . import mpf
from .gdepth import GDEPTH
from .segments import APP1, APP2, EXIF_ID, Frame, JpegImage, parse_jpeg


def check(data: bytes, findings: Findings) -> None:
    """Run every JPEG rule; a primary image that cannot be parsed raises DepthError."""
    primary = parse_jpeg(data)
    photo = primary.frame(data)
    if photo is None:
        raise DepthError("JPEG: the primary image has no start-of-frame segment")
    for exif in primary.applications(data, APP1, EXIF_ID)[:1]:
        check_exif_signal(findings, "jpeg", f"APP1 Exif at offset {exif.offset}", exif.payload(data)[len(EXIF_ID) :])
    images = _listed_images(data, primary, findings)
    if images is None:
        return
    depth, unlabelled = None, None
    for number, image in images:
        where = f"MP entry {number} (JPEG at offset {image.start})"
        kind = _classify(data, image)
        matte = _matte(data, image)
        if matte is not None:
            frame = image.frame(data)
            size = (frame.width, frame.height) if frame else None
            check_matte(findings, "jpeg", where, matte[0], matte[1], size, (photo.width, photo.height))
        elif kind == "depth" and depth is None:
            depth = image, where
        elif kind == "mono" and unlabelled is None:
            unlabelled = where
        elif kind.endswith("matte"):
            findings.info("jpeg.matte", where, f"a matte ({kind}), not a depth map")
        else:
            findings.info("jpeg.aux-image", where, f"an image of kind {kind}, not a depth map")
    if depth is not None:
        _check_depth(data, *depth, (photo.width, photo.height), findings)
    elif unlabelled is not None:
        findings.error(
            "jpeg.xmp-missing",
            unlabelled,
            "a one-component image without an apdi depth XMP: Apple readers do not take it for depth",
        )
    elif not any(finding.rule == "jpeg.mpf-offset" for finding in findings):  # else that error says it all
        message = f"no MP image is a depth map with Apple's XMP{_google_note(data, primary)}"
        findings.error("jpeg.depth-missing", "APP2 MPF", message)


def _listed_images(data: bytes, primary: JpegImage, findings: Findings) -> list[tuple[int, JpegImage]] | None:
    """The JPEG images MP entries 1… list, after ``jpeg.mpf-*`` rules; None when there is no usable index."""
    segments = primary.applications(data, APP2, mpf.MPF_ID)
    if not segments:
        message = f"no APP2 MPF segment: Apple readers find no depth image{_google_note(data, primary)}"
        findings.error("jpeg.mpf-missing", "primary image", message)
        return None
    segment = segments[0]
    tiff_at = mpf.tiff_start(segment.offset)
    where = f"APP2 MPF at offset {segment.offset}"
    try:
        entries = mpf.parse_index(data[tiff_at : segment.end], tiff_at).entries
    except DepthError as exc:
        findings.error("jpeg.mpf-invalid", where, str(exc))
        return None
    first = entries[0]
    if first.offset != 0:
        findings.error("jpeg.mpf-invalid", f"{where}, MP entry 0", f"the primary's offset is {first.offset}, not 0")
    length = primary.end - primary.start
    if first.size != length:
        findings.info(
            "jpeg.mpf-entry0",
            f"{where}, MP entry 0",
            f"size {first.size} is not the primary's {length} bytes; iPhones write it so and readers ignore it",
        )
    images = []
    for number, entry in enumerate(entries[1:], 1):
        place = f"{where}, MP entry {number}"
        start = tiff_at + entry.offset
        if entry.attribute & mpf.FORMAT_BITS:
            findings.info("jpeg.aux-image", place, "an image in a format other than JPEG")
            continue
        if start < primary.end or entry.size > len(data) - start:
            findings.error(
                "jpeg.mpf-offset",
                place,
                f"{entry.size} bytes at offset {start} lie outside the data after the primary "
                f"({primary.end}..{len(data)})",
            )
            continue
        try:
            image = parse_jpeg(data, start)
        except DepthError as exc:
            findings.error("jpeg.mpf-offset", place, f"no JPEG image at offset {start}: {exc}")
            continue
        if image.end - start != entry.size:
            findings.error(
                "jpeg.mpf-size",
                place,
                f"size {entry.size} but the JPEG at offset {start} is {image.end - start} bytes",
            )
        _check_count(data, image, len(entries), place, findings)
        images.append((number, image))
    reach = (0, 0)
    for number, image in sorted(images, key=lambda found: found[1].start):
        if image.start < reach[1]:
            findings.error(
                "jpeg.mpf-overlap",
                f"{where}, MP entry {number}",
                f"the image at offset {image.start} overlaps MP entry {reach[0]}'s, which ends at {reach[1]}",
            )
        reach = max(reach, (number, image.end), key=lambda r: r[1])
    return images


def _check_count(data: bytes, image: JpegImage, count: int, where: str, findings: Findings) -> None:
    """``jpeg.mpf-count``: a secondary image's own MPF NumberOfImages against the primary's index."""
    for segment in image.applications(data, APP2, mpf.MPF_ID):
        start = mpf.tiff_start(segment.offset)
        try:
            number = mpf.number_of_images(data[start : segment.end], start)
        except DepthError:
            continue
        if number != count:
            findings.warning(
                "jpeg.mpf-count",
                f"{where}, APP2 MPF at offset {segment.offset}",
                f"NumberOfImages {number}, but the primary's MP index lists {count} images",
            )


def _classify(data: bytes, image: JpegImage) -> str:
    """``depth``, a matte's subtype, another apdi type, ``mono`` (one component, no apdi) or ``image``.

    A one-component image whose XMP does not parse counts as ``depth``, for the XMP rules to report.
    """
    frame = image.frame(data)
    one_component = frame is not None and frame.components == 1
    for xmp in image.xmp_packets(data):
        kind = xmp_text(xmp, APDI, "AuxiliaryImageType")
        if kind is not None:
            subtype = xmp_text(xmp, APDI, "AuxiliaryImageSubType")
            return subtype or ("depth" if kind in ("depth", "disparity") else kind)
        if one_component and not _parses(xmp):
            return "depth"
    return "mono" if one_component else "image"


def _matte(data: bytes, image: JpegImage) -> tuple[MatteKind, bytes] | None:
    """(kind, XMP) of an image whose XMP describes a matte, else None."""
    for xmp in image.xmp_packets(data):
        try:
            kind, _ = parse_matte_xmp(xmp)
        except DepthError:
            continue
        if kind is not None:
            return kind, xmp
    return None


def _parses(xmp: bytes) -> bool:
    try:
        parse_xml(xmp)
    except DepthError:
        return False
    return True


def _check_depth(data: bytes, image: JpegImage, where: str, photo: tuple[int, int], findings: Findings) -> None:
    xmps = image.xmp_packets(data)
    xmp = next((x for x in xmps if xmp_text(x, APDI, "AuxiliaryImageType") is not None), xmps[0])
    info = check_depth_xmp(findings, xmp, "jpeg", where)
    frame = image.frame(data)
    if frame is None:
        findings.error("jpeg.depth-codec", where, "the depth image has no start-of-frame segment")
        return
    problem = coding_problem(frame, info)
    if problem is not None:
        findings.warning("jpeg.depth-codec", where, problem)
    width, height = frame.width, frame.height
    check_size(findings, "jpeg", where, (width, height), photo)
    if info is not None:
        findings.info(
            "jpeg.depth-found",
            where,
            f"{width}x{height} {info.image_type} map, values {info.float_min:g}..{info.float_max:g}",
        )


def coding_problem(frame: Frame, info: PixelDataInfo | None) -> str | None:
    """Why a depth JPEG of this ``frame`` is not coded as iPhones code a map of its StoredFormat, or None."""
    codings = {(8, False): "8-bit", (16, True): "16-bit lossless"}  # (bits, lossless) of StoredFormat L008, L016
    if info is not None:
        wanted = (16, True) if info.stored_format == StoredFormat.L016.code else (8, False)
        codings = {wanted: codings[wanted]}
    if frame.components == 1 and (frame.bits, frame.lossless) in codings:
        return None
    coding = " or ".join(codings.values())
    return (
        f"the depth image is {frame.components}-component {frame.bits}-bit (SOF{frame.marker - 0xC0}); "
        f"iPhones store one-component {coding} maps"
    )


def _google_note(data: bytes, primary: JpegImage) -> str:
    if any(GDEPTH.encode() in xmp for xmp in primary.xmp_packets(data)):
        return " (the photo has Google GDepth, which Apple readers ignore)"
    return ""
