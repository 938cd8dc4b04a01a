"""HEIC/HEIF container: depth attached as iPhones store it, the photo's coded bytes untouched.

The stored 8-bit map is coded as a monochrome (4:0:0) HEVC image, losslessly by our own coder
(:mod:`.hevc_lossless`, where the package is built with C) or by x265 through pillow-heif (lossy, or without C);
its ``hvcC``, ``ispe``, ``pixi`` and coded bytes become a hidden ``hvc1`` item of the photo with an essential
``auxC`` (``urn:mpeg:hevc:2015:auxid:2`` + depth_representation_info SEI), the primary's
``irot``/``imir`` (same property), ``iref auxl`` depth → primary and a hidden XMP ``mime`` item with
``iref cdsc`` → depth.  The SEI carries the map's FloatMin/FloatMax: disparity as type 1 (uniform
disparity, d_min/d_max), depth as type 2 (uniform Z, z_near/z_far), code 0 ↦ FloatMin in both.

With ``depth_codec="jpeg"`` the map is stored instead as recent iPhones store it (libheif issue #910): a
``jpeg`` item holding the whole 16-bit lossless JPEG (SOF3, StoredFormat ``L016``), with ``ispe`` and a 16-bit
``pixi`` in place of ``hvcC``, and the same ``auxC``, rotation, XMP and references.

Depth maps are in the photo's stored (coded) orientation, as Apple stores them: the shared
``irot``/``imir`` turns both the same way on display.

Mattes (:mod:`gpu_depth.core.auxiliary`) are aux items of the same build (:func:`add_aux_item`) with their
kind's ``auxC`` URN and no subtype, as the iPhone 14 stores them (docs/mattes.md), coded as the map is.
"""

from __future__ import annotations

import io
from bisect import bisect_right
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import replace as replace_field

import numpy as np
import pillow_heif

from ... import limits
from ...core.auxiliary import BY_URN, Matte, MatteKind, parse_matte_xmp
from ...core.depthdata import DepthData
from ...core.formats import PixelFormat, StoredFormat
from ...core.metadata import PixelDataInfo
from ...core.orientation import displayed_size as turned
from ...core.orientation import orientation_of
from ...core.quantize import Storage, StoredDepth, dequantize
from ...core.xmp import build_depth_xmp, parse_depth_xmp
from ...errors import DepthError, ExistingDepth
from .. import exif
from ..jpeg import ljpeg
from ..jpeg.plugin import decode_gray
from ..jpeg.segments import parse_jpeg
from . import hevc_lossless, isobmff
from .depth_sei import (
    UNIFORM_DISPARITY,
    UNIFORM_INVERSE_Z,
    UNIFORM_Z,
    DepthRepresentation,
    build_aux_subtype,
    parse_aux_subtype,
)
from .isobmff import HeifFile, ItemInfo, Location, Meta, Reference

NAME = "heic"
EXTENSIONS = (".heic", ".heif", ".hif")

#: ftyp brands of HEVC-coded HEIF files (and the generic image brands they list).
BRANDS = frozenset({"heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs", "mif1", "msf1", "mif2"})
#: auxC types readers treat as depth: HEIF's HEVC depth, and the AVIF/MPEG-B one.
DEPTH_URN = "urn:mpeg:hevc:2015:auxid:2"
DEPTH_URNS = (DEPTH_URN, "urn:mpeg:mpegB:cicp:systems:auxiliary:depth")
XMP_MIME = "application/rdf+xml"
#: Depth item types read: HEVC (ours, older iPhones) and JPEG (recent iPhones, 16-bit lossless).
DEPTH_ITEM_TYPES = ("hvc1", "jpeg")
#: Properties of the photo's primary item the depth item shares (same ipco index), as iPhones do.
SHARED_PROPERTIES = ("irot", "imir")
#: Properties of pillow-heif's depth encoding carried over to the depth item (its colr is dropped).
CODING_PROPERTIES = ("hvcC", "ispe", "clap", "pixi")
ESSENTIAL = frozenset({"hvcC", "clap", "irot", "imir", "auxC"})
#: How attach_depth codes the map: monochrome 8-bit HEVC (``hvc1``, the default) or 16-bit lossless JPEG (``jpeg``).
DEPTH_CODECS = ("hevc", "jpeg")
#: The x265 preset of the map's HEVC encode where x265 codes it (lossy, or a build without C): on an iPhone-size
#: monochrome lossless map the slower presets save at most ~1.4% of its size for 1.5-3x the time, and no thread or
#: lookahead setting beats it (bench/RESULTS.md).
DEPTH_PRESET = "ultrafast"
#: x265's presets whose own intra TU depth is 1 (slower has 2, veryslow 3, placebo 4): libheif's x265 plugin sets
#: 2 over every preset, so a map's encode (not a photo's) sets it back; the lossless depth map codes ~16% faster
#: for ~0.7% more bytes (bench_depth_encode.py, RESULTS.md).
ONE_TU_DEPTH_PRESETS = frozenset({"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"})
#: Keyword arguments of :func:`attach_depth` a caller (the pipeline) may pass.
ATTACH_OPTIONS = frozenset({"depth_quality", "depth_preset", "depth_codec", "encoder_threads", "exif_portrait"})
#: Those :func:`attach_auxiliary` takes.
AUXILIARY_OPTIONS = frozenset({"depth_quality", "depth_preset", "encoder_threads"})
#: x265 settings of the mattes where x265 codes them (lossy, or a build without the C lossless coder): mostly
#: flat 0/255 images at half the photo's size (several times the depth map's pixels), so faster settings change
#: only their size: ultrafast with 64-pixel CTUs and no CU below 32 pixels codes a 2016x1512 matte in 89 ms
#: instead of medium's ~5x or plain ultrafast's 220 ms, a quarter larger.  One TU depth (ultrafast's own,
#: :data:`ONE_TU_DEPTH_PRESETS`) and RD level 1 take 10-17% off the matte encode's CPU for a ~20% larger item
#: (RESULTS.md).  The CTU stays 64, the depth map's (libheif's): x265 wants one CTU size in a process.
MATTE_PRESET = "ultrafast"
MATTE_X265 = {"x265:ctu": "64", "x265:min-cu-size": "32", "x265:rd": "1"}
#: Largest depth item decoded (bytes of coded data).
MAX_DEPTH_ITEM_BYTES = 64 << 20
#: Largest Exif item rewritten (iPhones write ~3 KB; JPEG's APP1 holds at most 64 KiB).
MAX_EXIF_ITEM_BYTES = 1 << 20


def accept(prefix: bytes) -> bool:
    """An ISOBMFF file whose ftyp names an HEVC HEIF brand within the first bytes."""
    if prefix[4:8] != b"ftyp":
        return False
    brands = [prefix[8:12], *(prefix[i : i + 4] for i in range(16, len(prefix) - 3, 4))]
    return any(brand.decode("latin-1") in BRANDS for brand in brands)


# ----------------------------------------------------------------------------------------------- reading


def parse(data: bytes) -> HeifFile:
    """The photo's boxes and item tables, for the functions below that take ``parsed`` (one parse an attach)."""
    return isobmff.parse_file(memoryview(data))


def read_depth(data: bytes) -> DepthData | None:
    """The depth/disparity map of a HEIC (ours or an iPhone's) in its native format, or None."""
    heif = parse(data)
    meta = heif.meta
    depth_id = find_depth_item(meta)
    if depth_id is None:
        return None
    info, metadata = None, None
    xmp_id = xmp_item(meta, depth_id)
    if xmp_id is not None:
        info, metadata = parse_depth_xmp(isobmff.item_data(heif, xmp_id, limits.max_xmp_bytes()))
    pixels = decode_item(heif, depth_id)
    if info is None or not info.is_depth_map:
        info = _info_from_sei(_representation(meta, depth_id), pixels.dtype, depth_id)
    return dequantize(pixels, info, metadata)


def find_depth_item(meta: Meta) -> int | None:
    """The depth item: an auxC depth URN, preferring one ``auxl`` to the primary; mattes never match."""
    candidates = depth_items(meta)
    for item_id in candidates:
        if meta.primary in meta.referenced("auxl", item_id):
            return item_id
    return candidates[0] if candidates else None


def depth_items(meta: Meta) -> list[int]:
    """Every item whose auxC names a depth URN."""
    return [item.item_id for item in meta.items if _aux_type(meta, item.item_id)[0] in DEPTH_URNS]


def matte_items(meta: Meta) -> list[tuple[int, MatteKind]]:
    """(item ID, kind) of every item whose auxC names a matte URN, in item order (gain maps are no mattes)."""
    found = ((item.item_id, BY_URN.get(_aux_type(meta, item.item_id)[0])) for item in meta.items)
    return [(item_id, kind) for item_id, kind in found if kind is not None]


def auxiliary_images(data: bytes, parsed: HeifFile | None = None) -> list[tuple[str, int, int]]:
    """(type, width, height) of every aux image, nothing decoded: ``depth``, a matte kind's name, or
    the auxC URN of any other (gain maps, alpha).  ``parsed``: :func:`parse`'s ``data``, when at hand."""
    meta = (parsed or parse(data)).meta
    found = []
    for item in meta.items:
        urn = _aux_type(meta, item.item_id)[0]
        if urn is not None:
            kind = "depth" if urn in DEPTH_URNS else BY_URN[urn].name if urn in BY_URN else urn
            found.append((kind, *(image_size(meta, item.item_id) or (0, 0))))
    return found


def read_mattes(data: bytes) -> list[Matte]:
    """Every matte of a HEIC, in item order, with the version its XMP item says."""
    heif = parse(data)
    mattes = []
    for item_id, kind in matte_items(heif.meta):
        xmp_id = xmp_item(heif.meta, item_id)
        xmp = isobmff.item_data(heif, xmp_id, limits.max_xmp_bytes()) if xmp_id is not None else None
        version = parse_matte_xmp(xmp, kind)[1] if xmp else None
        pixels = decode_item(heif, item_id)
        if pixels.dtype != np.uint8:
            raise DepthError(f"{kind.name} matte item {item_id} is {pixels.dtype.itemsize * 8}-bit, not 8-bit")
        mattes.append(Matte(kind, pixels, version))
    return mattes


def _aux_type(meta: Meta, item_id: int) -> tuple[str | None, bytes]:
    """(URN, subtype) of an item's auxC, or (None, b"")."""
    found = meta.first_property(item_id, "auxC")
    return isobmff.parse_auxc(found[1], f"item {item_id} auxC") if found else (None, b"")


def _representation(meta: Meta, item_id: int) -> DepthRepresentation | None:
    urn, subtype = _aux_type(meta, item_id)
    return parse_aux_subtype(subtype) if urn == DEPTH_URN else None


def xmp_item(meta: Meta, depth_id: int) -> int | None:
    """The XMP (``mime`` ``application/rdf+xml``) item an ``iref cdsc`` links to the depth item, or None."""
    for item_id in meta.referencing("cdsc", depth_id):
        item = meta.item(item_id)
        if item is not None and item.item_type == "mime" and item.content_type == XMP_MIME:
            return item_id
    return None


def _info_from_sei(rep: DepthRepresentation | None, dtype: np.dtype, item_id: int) -> PixelDataInfo:
    """The map's range from its SEI when no Apple XMP describes it."""
    if rep is None:
        raise DepthError(f"depth item {item_id} has neither an Apple depth XMP nor a depth SEI with its range")
    if rep.kind == UNIFORM_DISPARITY and None not in (rep.d_min, rep.d_max):
        fmt, low, high = PixelFormat.HDIS, rep.d_min, rep.d_max
    elif rep.kind == UNIFORM_Z and None not in (rep.z_near, rep.z_far):
        fmt, low, high = PixelFormat.HDEP, rep.z_near, rep.z_far
    elif rep.kind == UNIFORM_INVERSE_Z and rep.z_near and rep.z_far:
        fmt, low, high = PixelFormat.HDIS, 1 / rep.z_far, 1 / rep.z_near
    else:
        raise DepthError(f"depth item {item_id}: SEI representation type {rep.kind} without its range is unsupported")
    stored = StoredFormat.L016 if np.dtype(dtype).itemsize == 2 else StoredFormat.L008
    return PixelDataInfo(fmt.quantity, fmt.code, stored.code, 0, stored.max_code, low, high)


def decode_item(heif: HeifFile, item_id: int) -> np.ndarray:
    """Decode one depth item: ``hvc1`` with pillow-heif (extracted into a standalone HEIF, no rotation), or
    ``jpeg`` (recent iPhones: 16-bit lossless) with the JPEG container's decoder."""
    item = heif.meta.item(item_id)
    kind = item.item_type if item else "missing"
    if kind not in DEPTH_ITEM_TYPES:
        raise DepthError(f"depth item {item_id} is {kind!r}; only hvc1 and jpeg depth items are supported")
    width, height = coded_size(heif.meta, item_id)
    limits.check_pixels(width, height, f"depth item {item_id}")
    coded = isobmff.item_data(heif, item_id, MAX_DEPTH_ITEM_BYTES)
    if kind == "jpeg":
        return _decode_jpeg(heif.meta, item_id, coded)
    properties = [
        (raw, essential)
        for kind, raw, essential in heif.meta.item_properties(item_id)
        if kind not in ("auxC", *SHARED_PROPERTIES)
    ]
    standalone = _standalone(coded, properties)
    try:
        image = pillow_heif.open_heif(io.BytesIO(standalone), convert_hdr_to_8bit=False)
        if not len(image):
            raise ValueError("no decodable image")
        limits.check_pixels(*image.size, f"depth item {item_id} as decoded")
        pixels = np.asarray(image)
    except DepthError:
        raise
    except (OSError, ValueError, RuntimeError, SyntaxError, EOFError) as exc:
        raise DepthError(f"depth item {item_id}: pillow-heif cannot decode it: {exc}") from exc
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    return pixels


def _decode_jpeg(meta: Meta, item_id: int, coded: bytes) -> np.ndarray:
    """A ``jpeg`` item's samples: its ``jpgC`` (the headers, when split off) followed by the item's data."""
    data = jpeg_headers(meta, item_id) + bytes(coded)
    try:
        return decode_gray(data, parse_jpeg(data))
    except DepthError as exc:
        raise DepthError(f"depth item {item_id} (JPEG): {exc}") from exc


def jpeg_headers(meta: Meta, item_id: int) -> bytes:
    """The payload of a ``jpeg`` item's ``jpgC`` property (JPEG headers up to SOS), or b""."""
    found = meta.first_property(item_id, "jpgC")
    if found is None:
        return b""
    reader = isobmff.property_reader(found[1], f"item {item_id} jpgC")
    return reader.take(reader.remaining, "jpgC payload")


def coded_size(meta: Meta, item_id: int) -> tuple[int, int]:
    """(width, height) from an item's ``ispe``, which HEIF requires of every image item."""
    found = meta.first_property(item_id, "ispe")
    if found is None:
        raise DepthError(f"item {item_id} has no ispe (image size) property")
    return isobmff.parse_ispe(found[1], f"item {item_id} ispe")


def _standalone(coded: bytes, properties: list[tuple[bytes, bool]]) -> bytes:
    """A one-item HEIF holding ``coded`` with ``properties``."""
    meta = Meta(
        order=[_hdlr(), "pitm", "iinf", "iprp", "iloc"],
        iprp_order=["ipco", "ipma"],
        primary=1,
        items=[ItemInfo(1, "hvc1")],
        locations={1: Location(1, extents=[isobmff.Extent(0, len(coded))])},
        properties=[raw for raw, _ in properties],
        associations={1: [(index + 1, essential) for index, (_, essential) in enumerate(properties)]},
    )
    return isobmff.new_file(isobmff.FileType("heic", 0, ("mif1", "heic")), meta, coded)


def _hdlr() -> bytes:
    return isobmff.full_box_bytes("hdlr", 0, 0, b"\0\0\0\0pict" + bytes(12) + b"\0")


# ----------------------------------------------------------------------------------------------- writing


def storage(depth_codec: str = "hevc", **options: object) -> Storage:
    """What :func:`attach_depth` stores of a map for ``depth_codec`` (the other options change nothing of it):
    its 8-bit L008 quantisation (``hevc``) or its 16-bit L016 one (``jpeg``), at the map's size, in the photo's
    stored orientation."""
    return Storage(NAME, StoredFormat.L016 if depth_codec == "jpeg" else StoredFormat.L008)


def attach_depth(
    photo: bytes,
    depth: DepthData | StoredDepth,
    *,
    replace: bool = False,
    mattes: Sequence[Matte] = (),
    drop_mattes: bool = False,
    depth_quality: int = -1,
    depth_preset: str | None = None,
    depth_codec: str = "hevc",
    encoder_threads: int | None = None,
    exif_portrait: bool = False,
    parsed: HeifFile | None = None,
) -> bytes:
    """The HEIC ``photo`` with ``depth`` (and ``mattes``) attached; the photo's own items keep their bytes.
    ``depth``: a float map, quantised here as :func:`storage` says, or a :class:`StoredDepth` stored so ahead.

    ``depth_codec``: ``"hevc"`` (default) stores an 8-bit monochrome HEVC item, ``"jpeg"`` a 16-bit lossless
    JPEG item.  ``depth_quality`` (HEVC): -1 (default) stores the 8-bit map (and mattes) losslessly, 0-100 lossy
    as iPhones do.  ``depth_preset``: None (default) codes a lossless map with our coder, a lossy one (or any, in a
    build without C) with x265 :data:`DEPTH_PRESET`; an x265 preset name has x265 code the map at that preset.
    ``encoder_threads``: x265's threads where it codes (None: its default, one per core).
    ``exif_portrait``: the primary's Exif CustomRendered set to 8 (Portrait), see :func:`mark_portrait`.
    An existing depth item is an error unless ``replace`` (then it and its XMP item are removed); the
    photo's mattes are kept unless ``drop_mattes`` or one of ``mattes`` replaces its kind (:func:`attach_auxiliary`).
    ``parsed``: :func:`parse`'s ``photo``, when at hand (left unchanged).
    """
    if exif_portrait:
        marked = mark_portrait(photo, parsed)
        photo, parsed = marked, parsed if marked is photo else None
    return _attach(
        photo,
        depth,
        mattes,
        replace,
        replace,
        drop_mattes,
        depth_quality,
        depth_preset,
        encoder_threads,
        depth_codec,
        parsed,
    )


def attach_auxiliary(
    photo: bytes,
    mattes: Sequence[Matte],
    *,
    replace: bool = False,
    drop_mattes: bool = False,
    depth_quality: int = -1,
    depth_preset: str | None = None,
    encoder_threads: int | None = None,
) -> bytes:
    """The HEIC ``photo`` with ``mattes`` attached, each a hidden monochrome aux item as iPhones store it.

    A matte of a kind the photo already has is an error unless ``replace`` (then the old one and its
    XMP item go, as replacing depth does); ``drop_mattes`` removes every matte first.  Depth is kept.
    """
    return _attach(photo, None, mattes, False, replace, drop_mattes, depth_quality, depth_preset, encoder_threads)


def _attach(
    photo: bytes,
    depth: DepthData | StoredDepth | None,
    mattes: Sequence[Matte],
    replace_depth: bool,
    replace_mattes: bool,
    drop_mattes: bool,
    quality: int,
    preset: str | None,
    threads: int | None,
    codec: str = "hevc",
    parsed: HeifFile | None = None,
) -> bytes:
    heif = _tables(photo, parsed)
    meta = heif.meta
    primary = meta.primary
    if primary is None or meta.item(primary) is None:
        raise DepthError("meta: the photo has no primary item (pitm)")
    existing = depth_items(meta) if depth is not None else []
    if existing and not replace_depth:
        raise ExistingDepth(f"the photo already has a depth item ({existing[0]})")
    replaced = existing + _replaced_mattes(meta, mattes, replace_mattes, drop_mattes)
    removed = depth_related(meta, replaced)
    # an old aux item the primary needs would stay beside the new one and be read first (a primary that
    # itself claims to be depth is not read as its own depth)
    if stuck := sorted(i for i in set(replaced) - removed if primary in meta.referenced("auxl", i)):
        raise DepthError(f"item {stuck[0]} cannot be replaced: the primary item references it (part of the photo)")
    cuts = unused_ranges(heif, removed)
    meta.remove_items(removed)

    payload: list[bytes] = []
    new_ids: list[int] = []
    with ThreadPoolExecutor(max_workers=len(mattes)) if mattes else nullcontext() as pool:
        # the mattes' encodes (both coders run without the GIL) overlap the depth map's
        matte_params = _map_encoder_params(MATTE_PRESET, threads) | MATTE_X265
        coded_mattes = [
            pool.submit(_encode_map, m.pixels, quality, matte_params, f"{m.kind.name} matte") for m in mattes
        ]
        if depth is not None:
            stored, _ = storage(depth_codec=codec).stored(depth)
            item_type, coding, coded = _encode_depth(stored.pixels, codec, quality, preset, threads)
            sei = build_aux_subtype(_sei(stored.info))
            xmp = build_depth_xmp(stored.info, stored.metadata)
            new_ids += add_aux_item(meta, coding, _auxc(DEPTH_URN, sei), coded, xmp, payload, item_type=item_type)
        for matte, future in zip(mattes, coded_mattes, strict=True):
            coding, coded = future.result()
            new_ids += add_aux_item(meta, coding, _auxc(matte.kind.urn), coded, matte.xmp(False), payload, share=True)
    if "iref" not in meta.order:
        meta.order.insert(meta.order.index("iinf") + 1, "iref")
    if "iprp" not in meta.order:  # a photo without item properties: the aux items' need one
        meta.order.append("iprp")
    return isobmff.rebuild(heif, meta, b"".join(payload), frozenset(new_ids), cuts)


def _tables(photo: bytes, parsed: HeifFile | None) -> HeifFile:
    """The parsed ``photo`` with item tables of its own, which an attach changes (``parsed`` is left as it was)."""
    return parse(photo) if parsed is None else replace_field(parsed, meta=parsed.meta.copy())


def _auxc(urn: str, subtype: bytes = b"") -> bytes:
    return isobmff.full_box_bytes("auxC", 0, 0, urn.encode() + b"\0" + subtype)


def add_aux_item(
    meta: Meta,
    coding: list[tuple[str, bytes]],
    auxc: bytes,
    coded: bytes,
    xmp: bytes,
    payload: list[bytes],
    share: bool = False,
    item_type: str = "hvc1",
) -> tuple[int, int]:
    """Add one hidden aux image item (``coding``'s properties, the primary's irot/imir, ``auxC``,
    ``auxl`` → primary) and its hidden XMP ``mime`` item (``cdsc`` → it), their bytes appended to
    ``payload`` (offsets count from its start).  ``share`` reuses identical ``ispe``/``pixi``
    properties, as iPhones share them between aux items of one size.  Returns both item IDs."""
    primary = meta.primary
    aux_id, xmp_id = meta.new_item_ids(2)
    shared = [(i, e) for i, e in meta.associations.get(primary, []) if meta.property_type(i) in SHARED_PROPERTIES]
    added = {
        kind: (_property_index(meta, raw, share and kind in ("ispe", "pixi")), kind in ESSENTIAL)
        for kind, raw in coding
    }
    added["auxC"] = (meta.add_property(auxc), True)
    # iPhone order; a crop (clap, for sizes x265 pads) must come before the shared rotation
    associations = [added[k] for k in ("hvcC", "ispe", "clap") if k in added] + shared
    associations += [added[k] for k in ("pixi", "auxC") if k in added]
    meta.associations[aux_id] = associations
    meta.items += [ItemInfo(aux_id, item_type, flags=1), ItemInfo(xmp_id, "mime", 1, content_type=XMP_MIME)]
    start = sum(len(piece) for piece in payload)
    meta.locations[aux_id] = Location(aux_id, extents=[isobmff.Extent(start, len(coded))])
    meta.locations[xmp_id] = Location(xmp_id, extents=[isobmff.Extent(start + len(coded), len(xmp))])
    meta.references += [Reference("auxl", aux_id, [primary]), Reference("cdsc", xmp_id, [aux_id])]
    payload += [coded, xmp]
    return aux_id, xmp_id


def _property_index(meta: Meta, raw: bytes, share: bool) -> int:
    if share and raw in meta.properties:
        return meta.properties.index(raw) + 1
    return meta.add_property(raw)


def _replaced_mattes(meta: Meta, mattes: Sequence[Matte], replace: bool, drop: bool) -> list[int]:
    """The matte items attaching ``mattes`` removes: all with ``drop``, else those of the kinds written
    (an error unless ``replace``)."""
    found = matte_items(meta)
    if drop:
        return [item_id for item_id, _ in found]
    kinds = {matte.kind for matte in mattes}
    clash = [(item_id, kind) for item_id, kind in found if kind in kinds]
    if clash and not replace:
        raise ExistingDepth(f"the photo already has a {clash[0][1].name} matte (item {clash[0][0]})")
    return [item_id for item_id, _ in clash]


def mark_portrait(photo: bytes, parsed: HeifFile | None = None) -> bytes:
    """The HEIC with its primary's Exif CustomRendered set to 8 (Portrait), as iPhones write it: the
    ``Exif`` item's new bytes appended, its old ones cut where no other item uses them (``photo`` itself
    where it is so already).  ``parsed``: :func:`parse`'s ``photo``, when at hand (left unchanged)."""
    heif = _tables(photo, parsed)
    meta = heif.meta
    exif_id = exif_item(meta)
    if exif_id is None:
        raise DepthError("--exif-portrait: the photo has no Exif item")
    header, tiff = exif_parts(heif, exif_id)
    try:
        marked = header + exif.with_custom_rendered(tiff)
    except DepthError as exc:
        raise DepthError(f"--exif-portrait: Exif item {exif_id}: {exc}") from exc
    if marked == header + tiff:
        return photo
    cuts = unused_ranges(heif, {exif_id})
    meta.locations[exif_id] = Location(exif_id, extents=[isobmff.Extent(0, len(marked))])
    return isobmff.rebuild(heif, meta, marked, frozenset({exif_id}), cuts)


def exif_parts(heif: HeifFile, exif_id: int) -> tuple[bytes, bytes]:
    """An ``Exif`` item's data split into its header (the 4-byte offset and what it skips) and the TIFF."""
    raw = isobmff.item_data(heif, exif_id, MAX_EXIF_ITEM_BYTES)
    start = 4 + int.from_bytes(raw[:4], "big") if len(raw) >= 4 else len(raw) + 1
    if start > len(raw):
        raise DepthError(f"Exif item {exif_id}: its TIFF header offset points past its {len(raw)} bytes")
    return raw[:start], raw[start:]


def exif_item(meta: Meta) -> int | None:
    """The ``Exif`` item that describes (``cdsc``) the primary, or None."""
    for item_id in meta.referencing("cdsc", meta.primary):
        item = meta.item(item_id)
        if item is not None and item.item_type == "Exif":
            return item_id
    return None


def depth_related(meta: Meta, depth_ids: list[int]) -> set[int]:
    """The depth items with the items only they use (their XMP, the tiles of a depth grid): what
    replacing removes.  Never the primary or anything it references, directly or not."""
    needed = meta.closure(meta.primary)
    removed = set()
    for depth_id in depth_ids:
        removed |= meta.closure(depth_id, ("dimg",))
        xmp_id = xmp_item(meta, depth_id)
        if xmp_id is not None and set(meta.referenced("cdsc", xmp_id)) <= set(depth_ids):
            removed.add(xmp_id)
    return removed - needed


def unused_ranges(heif: HeifFile, removed: set[int]) -> tuple[tuple[int, int], ...]:
    """The file ranges that only ``removed`` items' extents cover (in the file, not idat)."""

    def ranges(item_ids) -> list[tuple[int, int]]:
        found = []
        for item_id in item_ids:
            loc = heif.meta.locations.get(item_id)
            if loc is None or loc.method != isobmff.FILE_OFFSET or loc.data_reference:
                continue
            found += [(e.offset, e.offset + (e.length or len(heif.data) - e.offset)) for e in loc.extents]
        return found

    kept = _merged(ranges(set(heif.meta.locations) - removed))
    starts = [lo for lo, _ in kept]

    def free(lo: int, hi: int) -> bool:
        index = bisect_right(starts, lo) - 1  # the last kept range starting at or before lo, then the next
        return all(not (k_lo < hi and lo < k_hi) for k_lo, k_hi in kept[max(index, 0) : index + 2])

    return tuple(_merged([r for r in ranges(removed) if free(*r)]))


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ranges with the overlapping or touching ones joined."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _sei(info: PixelDataInfo) -> DepthRepresentation:
    if info.image_type == "disparity":
        return DepthRepresentation(UNIFORM_DISPARITY, d_min=info.float_min, d_max=info.float_max)
    return DepthRepresentation(UNIFORM_Z, z_near=info.float_min, z_far=info.float_max)


def _encode_map(
    pixels: np.ndarray, quality: int, params: dict[str, str], what: str = "depth map"
) -> tuple[list[tuple[str, bytes]], bytes]:
    """The map's (or a matte's: ``what``, its name in errors) monochrome 8-bit HEVC coding, its coding properties
    and bytes: by our coder (:mod:`.hevc_lossless`) where lossless and the build has it, else by x265 with
    ``params``."""
    if quality != -1 or not hevc_lossless.AVAILABLE:
        return _encode_x265(pixels, quality, params, what)
    height, width = pixels.shape
    try:
        return hevc_lossless.encode(pixels)
    except ValueError as exc:
        raise DepthError(f"cannot encode the {width}x{height} {what}: {exc}") from exc


def _encode_x265(
    pixels: np.ndarray, quality: int, params: dict[str, str], what: str
) -> tuple[list[tuple[str, bytes]], bytes]:
    """pillow-heif's (x265's) monochrome HEVC coding of the map: its hvcC, ispe, clap (if padded), pixi and bytes."""
    if not (quality == -1 or 0 <= quality <= 100):
        raise DepthError(f"depth_quality must be -1 (lossless) or 0-100, got {quality}")
    height, width = pixels.shape
    buffer = io.BytesIO()
    try:
        image = pillow_heif.from_bytes("L", (width, height), np.ascontiguousarray(pixels, np.uint8).tobytes())
        image.save(buffer, quality=quality, enc_params=params, save_nclx_profile=False)
    except (OSError, ValueError, RuntimeError, SyntaxError, EOFError) as exc:
        raise DepthError(f"pillow-heif cannot encode the {width}x{height} {what}: {exc}") from exc
    encoded = isobmff.parse_file(buffer.getvalue())
    item_id = encoded.meta.primary
    coding = [(kind, raw) for kind, raw, _ in encoded.meta.item_properties(item_id) if kind in CODING_PROPERTIES]
    if [kind for kind, _ in coding][:2] != ["hvcC", "ispe"]:
        raise DepthError(f"pillow-heif's {what} encoding has unexpected properties {[k for k, _ in coding]}")
    return coding, isobmff.item_data(encoded, item_id)


def _encode_depth(
    pixels: np.ndarray, codec: str, quality: int, preset: str | None, threads: int | None
) -> tuple[str, list[tuple[str, bytes]], bytes]:
    """The depth item's type, coding properties and coded bytes for ``codec`` (one of :data:`DEPTH_CODECS`)."""
    if codec == "jpeg":
        return "jpeg", *_encode_jpeg(pixels, quality)
    if codec != "hevc":
        raise DepthError(f"unknown HEIC depth codec {codec!r}; expected hevc or jpeg (--heic-depth-codec)")
    if preset is None:
        return "hvc1", *_encode_map(pixels, quality, _map_encoder_params(DEPTH_PRESET, threads))
    return "hvc1", *_encode_x265(pixels, quality, _map_encoder_params(preset, threads), "depth map")


def _encode_jpeg(pixels: np.ndarray, quality: int) -> tuple[list[tuple[str, bytes]], bytes]:
    """The 16-bit map as a lossless JPEG (SOF3, predictor 1), whole in the item: its ispe, pixi and bytes."""
    if quality != -1:
        raise DepthError(f"a jpeg depth item is always 16-bit lossless; depth_quality {quality} applies to hevc")
    height, width = pixels.shape
    return [("ispe", isobmff.ispe_bytes(width, height)), ("pixi", isobmff.pixi_bytes(16))], ljpeg.encode(pixels)


def _map_encoder_params(preset: str, threads: int | None) -> dict[str, str]:
    """x265 settings of a depth map's or matte's encode: the photo's, with the preset's own TU depth."""
    params = _encoder_params(preset, threads)
    if preset in ONE_TU_DEPTH_PRESETS:
        params["x265:tu-intra-depth"] = "1"
    return params


def _encoder_params(preset: str, threads: int | None) -> dict[str, str]:
    params = {"preset": preset}
    if threads:
        params["x265:pools"] = str(threads)
    return params


def encode_photo(
    image, *, quality: int = 90, encoder_preset: str = "medium", encoder_threads: int | None = None
) -> bytes:
    """A PIL image re-encoded as HEIC by pillow-heif, keeping Exif, ICC profile and orientation.

    The pixels keep their stored orientation; the Exif orientation becomes the primary's
    ``irot``/``imir`` (pillow-heif's Pillow plugin), as iPhones write it.
    """
    pillow_heif.register_heif_opener()
    if image.mode not in ("RGB", "RGBA", "L", "LA", "I;16", "I;16L"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    extra = {key: image.info[key] for key in ("exif", "icc_profile", "xmp") if image.info.get(key)}
    buffer = io.BytesIO()
    try:
        params = _encoder_params(encoder_preset, encoder_threads)
        image.save(buffer, format="HEIF", quality=quality, enc_params=params, **extra)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise DepthError(f"pillow-heif cannot encode the photo: {exc}") from exc
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------- geometry


def image_size(meta: Meta, item_id: int) -> tuple[int, int] | None:
    """An item's stored size: ``ispe``, cropped by ``clap`` when it has one; None without ispe."""
    try:
        width, height = coded_size(meta, item_id)
    except DepthError:
        return None
    found = meta.first_property(item_id, "clap")
    try:
        clean = isobmff.parse_clap(found[1], f"item {item_id} clap") if found else None
    except DepthError:  # a truncated clap crops nothing
        clean = None
    return clean or (width, height)


def transforms(meta: Meta, item_id: int) -> list[tuple[str, int]]:
    """The item's ``irot`` (quarter turns anticlockwise) and ``imir`` (axis) values, in ipma order;
    a property too short to hold its value turns nothing."""
    steps = []
    for kind, raw, _ in meta.item_properties(item_id):
        if kind in ("irot", "imir"):
            try:
                steps.append((kind, isobmff.parse_transform(kind, raw, f"item {item_id} {kind}")))
            except DepthError:
                continue
    return steps


def head(read: Callable[[int, int], bytes], size: int) -> bytes:
    """What :func:`displayed_size` and :func:`orientation` need of a file of ``size`` bytes that ``read(offset,
    length)`` reads: its ``ftyp`` and ``meta`` boxes (the photo's coded tiles, its MBs, are left unread)."""
    return isobmff.read_head(read, size)


def displayed_size(data: bytes, parsed: HeifFile | None = None) -> tuple[int, int]:
    """The primary image's (width, height) as shown: its stored size turned by ``irot``/``imir``.
    ``parsed``: :func:`parse`'s ``data``, when at hand."""
    meta = (parsed or parse(data)).meta
    size = image_size(meta, meta.primary)
    if size is None:
        raise DepthError(f"the primary item {meta.primary} has no ispe (image size)")
    return turned(*size, orientation_of(transforms(meta, meta.primary)))


def orientation(data: bytes, parsed: HeifFile | None = None) -> int:
    """The Exif orientation (1-8) equivalent to the primary item's ``irot``/``imir``, in ipma order.
    ``parsed``: :func:`parse`'s ``data``, when at hand."""
    meta = (parsed or parse(data)).meta
    return orientation_of(transforms(meta, meta.primary))
