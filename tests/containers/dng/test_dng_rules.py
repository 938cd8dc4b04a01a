"""DNG rules of gpu-depth verify: our files verify clean; each rule broken once is reported alone."""

import struct

import pytest
from helpers.dng import depth_ifd, depth_map, entry_position, make_dng
from helpers.verify import only, problems

from gpu_depth import DepthError
from gpu_depth.containers.dng import plugin as dng
from gpu_depth.containers.dng.tiff import TiffFile
from gpu_depth.verify import verify_bytes

#: A depth map of each layout's raw aspect ratio (CFA 96x64, LinearRaw 56x40).
SHAPES = {"linear-raw-in-ifd0": (30, 42)}


def ours(layout="cfa-in-subifd", **options) -> bytes:
    return dng.attach_depth(make_dng(layout, **options), depth_map("hdis", shape=SHAPES.get(layout, (32, 48))))


def patch(data: bytes, tag: int, value: bytes, in_depth_ifd: bool = False) -> bytes:
    """Overwrite the 4-byte value field of ``tag`` in IFD0 (or the depth IFD)."""
    tiff = TiffFile(data)
    ifd = depth_ifd(data)[1] if in_depth_ifd else tiff.walk()[0]
    at = entry_position(ifd, tag) + 8
    return data[:at] + value + data[at + 4 :]


@pytest.mark.parametrize("layout", ["cfa-in-subifd", "linear-raw-in-ifd0", "cfa-and-preview-subifds"])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_our_dngs_verify_clean(layout, byteorder):
    findings = verify_bytes(ours(layout=layout, byteorder=byteorder))
    assert problems(findings) == []
    height, width = SHAPES.get(layout, (32, 48))
    assert any(f.rule == "dng.depth-found" and f"{width}x{height} disparity" in f.message for f in findings)


def test_a_dng_without_depth():
    only(verify_bytes(make_dng()), "error", "dng.depth-missing")


def test_depth_format_unknown():
    data = ours()
    rule = only(verify_bytes(patch(data, dng.DEPTH_FORMAT, struct.pack("<HH", 0, 0))), "error", "dng.depth-tags")
    assert "DepthFormat 0" in rule.message


def test_old_dng_version():
    data = patch(ours(), dng.DNG_VERSION, bytes((1, 4, 0, 0)))
    only(verify_bytes(data), "warning", "dng.version")


def test_depth_ifd_not_marked_as_depth():
    data = ours()
    found = only(
        verify_bytes(patch(data, dng.PHOTOMETRIC, struct.pack("<HH", 1, 0), in_depth_ifd=True)),
        "warning",
        "dng.depth-photometric",
    )
    assert "PhotometricInterpretation is 1" in found.message


def test_depth_map_of_another_aspect_than_the_raw():
    data = dng.attach_depth(make_dng(), depth_map("hdis", shape=(48, 48)))
    only(verify_bytes(data), "warning", "dng.depth-aspect")


def test_a_plain_tiff_cannot_be_verified():
    plain = make_dng()
    tiff = TiffFile(plain)
    at = entry_position(tiff.walk()[0], dng.DNG_VERSION)
    broken = plain[:at] + struct.pack("<H", 65000) + plain[at + 2 :]  # DNGVersion becomes a private tag
    with pytest.raises(DepthError, match="not a DNG"):
        verify_bytes(broken)
