"""HEIC files the HEIC tests build."""

from __future__ import annotations

from dataclasses import replace

import imagecodecs

from gpu_depth import DepthData
from gpu_depth.containers.heic import isobmff
from gpu_depth.containers.heic import plugin as heic
from gpu_depth.core.formats import StoredFormat
from gpu_depth.core.quantize import quantize
from gpu_depth.core.xmp import build_depth_xmp


# ----------------------------------------------------------------------------------------------- JPEG depth items
def with_jpeg_depth(data: bytes, depth: DepthData, split: bool) -> bytes:
    """Our HEIC with its depth item recoded as recent iPhones store it: a ``jpeg`` item holding a 16-bit lossless
    JPEG (written by libjpeg-turbo through imagecodecs), its headers in a ``jpgC`` property when ``split``."""
    stored = quantize(depth, StoredFormat.L016)
    coded = imagecodecs.jpeg8_encode(stored.pixels, lossless=True, predictor=1, bitspersample=16)
    parsed = isobmff.parse_file(data)
    meta = parsed.meta
    depth_id = heic.find_depth_item(meta)
    xmp_id = heic.xmp_item(meta, depth_id)
    meta.items = [replace(i, item_type="jpeg", raw=None) if i.item_id == depth_id else i for i in meta.items]
    entries = [(index, essential) for index, essential in meta.associations[depth_id]]
    meta.associations[depth_id] = [(i, e) for i, e in entries if meta.property_type(i) != "hvcC"]
    if split:
        scan = coded.index(b"\xff\xda")
        jpgc = isobmff.box_bytes("jpgC", coded[:scan])
        meta.associations[depth_id].append((meta.add_property(jpgc), True))
        coded = coded[scan:]
    xmp = build_depth_xmp(stored.info, depth.metadata)
    meta.locations[depth_id] = isobmff.Location(depth_id, extents=[isobmff.Extent(0, len(coded))])
    meta.locations[xmp_id] = isobmff.Location(xmp_id, extents=[isobmff.Extent(len(coded), len(xmp))])
    return isobmff.rebuild(parsed, meta, coded + xmp, frozenset({depth_id, xmp_id}))


def sample_mattes(path) -> dict[int, tuple[str, bytes]]:
    """{item ID: (auxC URN, XMP bytes)} of every matte item of a HEIC, read with the box parser only."""
    heif = isobmff.parse_file(path.read_bytes())
    meta, found = heif.meta, {}
    for item in meta.items:
        auxc = meta.first_property(item.item_id, "auxC")
        urn = isobmff.parse_auxc(auxc[1], "auxC")[0] if auxc else ""
        if urn.endswith("matte"):
            (xmp_id,) = meta.referencing("cdsc", item.item_id)
            found[item.item_id] = (urn, isobmff.item_data(heif, xmp_id))
    return found
