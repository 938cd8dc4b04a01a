"""JPEG photos and exiftool calls the JPEG tests share."""

from __future__ import annotations

import io
import json
import subprocess

import numpy as np
from PIL import Image, ImageCms

from gpu_depth import DepthData, DepthMetadata, PixelFormat
from helpers import tool

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="gpu_depth tests"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def make_photo(width: int = 320, height: int = 240, **options) -> bytes:
    """A JPEG with Exif (orientation 6), XMP and an ICC profile, as cameras write them."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=90, exif=exif, icc_profile=icc, xmp=XMP, **options)
    return buffer.getvalue()


def smooth_depth(fmt: str, width: int = 96, height: int = 72) -> DepthData:
    """A smooth disparity (1/m) or depth (m) field over 0.4 … 5 m."""
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    metres = 0.4 + 4.6 * (0.5 + 0.5 * np.sin(3 * x) * np.cos(2 * y))
    values = 1.0 / metres if PixelFormat.parse(fmt).is_disparity else metres
    return DepthData.from_array(values, fmt, metadata=DepthMetadata(accuracy="absolute"))


def exiftool_json(path, *args: str) -> dict:
    out = subprocess.run([tool("exiftool"), "-j", "-G1", "-n", *args, str(path)], capture_output=True, check=True)
    return json.loads(out.stdout)[0]


def exiftool_warnings(path) -> set[str]:
    """What ``exiftool -validate`` warns of the file."""
    found = exiftool_json(path, "-a", "-validate", "-warning")
    values = [v for k, v in found.items() if k.endswith("Warning")]
    return {str(w) for v in values for w in (v if isinstance(v, list) else [v])}


def exiftool_binary(path, tag: str) -> bytes:
    return subprocess.run([tool("exiftool"), "-b", f"-{tag}", str(path)], capture_output=True, check=True).stdout


def exiftool_json_bytes(data: bytes, folder, *args: str) -> dict:
    path = folder / "input.jpg"
    path.write_bytes(data)
    return exiftool_json(path, *args)
