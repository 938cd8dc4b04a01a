import re

import pytest
from helpers import sample
from helpers.maps import CALIBRATION

from gpu_depth import DepthError, DepthMetadata
from gpu_depth.core.xmp import RDF, PixelDataInfo, build_depth_xmp, parse_depth_xmp, parse_xml


def xmp_packets(path):
    """Every <x:xmpmeta> packet in a file, found by a plain byte search (independent of our parsers)."""
    data = path.read_bytes()
    return [m.group(0) for m in re.finditer(rb"<x:xmpmeta.*?</x:xmpmeta>", data, re.S)]


def depth_packet(path):
    return next(p for p in xmp_packets(path) if b"pixeldatainfo" in p and b"AuxiliaryImageType" in p)


def test_iphone13_heic_depth_xmp():
    info, meta = parse_depth_xmp(depth_packet(sample("iphone13pro-pug.heic")))
    assert info == PixelDataInfo("disparity", 1751411059, 1278226488, 0, 255, 1.498047, 4.382812)
    assert (meta.version, meta.accuracy, meta.filtered, meta.quality) == (65541, "relative", True, "high")
    cal = meta.calibration
    assert cal.intrinsic_matrix == (
        (3032.59423828125, 0.0, 1988.450927734375),
        (0.0, 3032.59423828125, 1512.30712890625),
        (0.0, 0.0, 1.0),
    )
    assert cal.reference_dimensions == (4032, 3024)
    assert cal.extrinsic_matrix == ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0))
    assert len(cal.lens_distortion_coefficients) == 8 and cal.lens_distortion_coefficients[1] == -0.94312471151351929
    assert len(cal.inverse_lens_distortion_coefficients) == 8
    assert cal.lens_distortion_center[0] == 1990.331298828125 and cal.pixel_size == 0.0019


def test_iphone_x_jpeg_depth_xmp():
    info, meta = parse_depth_xmp(depth_packet(sample("iphoneX-image-with-depth.jpg")))
    assert (info.float_min, info.float_max, info.native_format, info.stored_format) == (
        0.650879,
        2.509766,
        1751411059,
        1278226488,
    )
    assert info.is_depth_map and meta.version == 65538
    # ExtrinsicMatrix 0,-1,0, 1,0,0, 0,0,1, 0,0,0 is column-major: the first column is (0, -1, 0).
    assert meta.calibration.extrinsic_matrix[1][0] == -1 and meta.calibration.extrinsic_matrix[0][1] == 1
    assert meta.calibration.reference_dimensions == (3024, 4032) and meta.calibration.pixel_size == 0.001


def test_build_parse_round_trip():
    info = PixelDataInfo("depth", 1717855600, 1278226488, 0, 255, 0.5, 7.25)
    meta = DepthMetadata(accuracy="absolute", filtered=False, quality="low", version=65538, calibration=CALIBRATION)
    packet = build_depth_xmp(info, meta)
    assert packet.startswith(b'<x:xmpmeta xmlns:x="adobe:ns:meta/"')
    assert parse_depth_xmp(packet) == (info, meta.for_writing())


def test_unknown_metadata_is_written_as_imageio_writes_a_custom_map():
    """No DepthDataVersion, Filtered False, Quality low, PortraitScore 0 / IsHigh False; the iphone
    profile writes an iPhone 14 Portrait's values; known fields are never overwritten."""
    info = PixelDataInfo("disparity", 1751411059, 1278226488, 0, 255, 0.5, 2.0)
    imageio = parse_depth_xmp(build_depth_xmp(info, DepthMetadata()))[1]
    assert imageio == DepthMetadata("relative", False, "low", None, None, 0.0, False)
    iphone = parse_depth_xmp(build_depth_xmp(info, DepthMetadata(accuracy="absolute").for_writing("iphone")))[1]
    assert iphone == DepthMetadata("absolute", True, "high", 85538, None, 0.978223, True)
    with pytest.raises(DepthError, match="unknown XMP profile 'ios'"):
        DepthMetadata().for_writing("ios")


def test_matte_is_not_a_depth_map():
    info = PixelDataInfo("depth", 1278226488, 1278226488, 0, 255, 0.0, 1.0, subtype="portraiteffectsmatte")
    assert not info.is_depth_map
    assert parse_depth_xmp(build_depth_xmp(info, DepthMetadata()))[0] is None


BOMB = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>
<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>"""
EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>"""


@pytest.mark.parametrize("packet", [BOMB, EXTERNAL], ids=["entity-expansion", "external-entity"])
def test_dtds_and_entities_are_refused(packet):
    with pytest.raises(DepthError, match="DTDs and entity declarations are not allowed"):
        parse_xml(packet)


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (b"<x:xmpmeta", "malformed XML"),
        (
            build_depth_xmp(PixelDataInfo("disparity", 1, 2, 0, 255, 0, 1), DepthMetadata()).replace(
                b"<apdi:FloatMinValue>0.0<", b"<apdi:FloatMinValue>zero<"
            ),
            "apdi:FloatMinValue is not a finite decimal number",
        ),
    ],
)
def test_bad_xmp_values(packet, message):
    with pytest.raises(DepthError, match=message):
        parse_depth_xmp(packet)


SEQ = b"<rdf:Seq><rdf:li>True</rdf:li></rdf:Seq>"


@pytest.mark.parametrize("name", ["Filtered", "Accuracy", "Quality"])
def test_text_properties_given_as_a_seq_are_refused(name):
    """A Seq where Apple writes text: ``.lower()`` on the list raised AttributeError (fuzz finding)."""
    packet = build_depth_xmp(PixelDataInfo("disparity", 1, 2, 0, 255, 0, 1), DepthMetadata())
    packet = re.sub(rf"(<depthData:{name}>)[^<]*(<)".encode(), rb"\1" + SEQ + rb"\2", packet)
    with pytest.raises(DepthError, match=f"depthData:{name} is missing or not text"):
        parse_depth_xmp(packet)


def test_empty_optional_text_reads_as_unknown():
    packet = build_depth_xmp(PixelDataInfo("disparity", 1, 2, 0, 255, 0, 1), DepthMetadata(quality="low"))
    _, metadata = parse_depth_xmp(packet.replace(b">low<", b"><"))
    assert metadata.quality is None


def nested(levels: int) -> bytes:
    body = '<rdf:Description xmlns:a="urn:a"><a:b>' * levels + "</a:b></rdf:Description>" * levels
    return f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF}">{body}</rdf:RDF></x:xmpmeta>'.encode()


def test_deep_nesting_is_refused():
    """Nested Descriptions made the property walk quadratic: 500 kB nested 8000 deep took 1.5 s, 4 MiB minutes."""
    with pytest.raises(DepthError, match="XMP: elements nested deeper than 64 levels"):
        parse_depth_xmp(nested(8000))
    parse_depth_xmp(nested(30))


def test_list_items_are_read_from_the_seq_only():
    packet = build_depth_xmp(PixelDataInfo("disparity", 1, 2, 0, 255, 0, 1), DepthMetadata(calibration=CALIBRATION))
    _, metadata = parse_depth_xmp(packet)
    assert metadata.calibration == CALIBRATION
    stray = packet.replace(b"<rdf:Seq>", b"<rdf:Seq><rdf:Description><rdf:li>9</rdf:li></rdf:Description>", 1)
    assert parse_depth_xmp(stray)[1].calibration == CALIBRATION


@pytest.mark.parametrize("declared", ["utf-65536", "utf-7", "UTF-32", "shift_jis", "idna"])
def test_an_encoding_declaration_is_ignored(declared):
    """expat looked a declared encoding up with Python's codecs: LookupError, ValueError and UnicodeError leaked."""
    packet = f"<?xml version='1.0' encoding='{declared}'?><x:xmpmeta xmlns:x='adobe:ns:meta/'/>"
    assert parse_xml(packet.encode()).tag == "{adobe:ns:meta/}xmpmeta"


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-32-be", "utf-32"])
def test_xmp_in_any_unicode_encoding(codec):
    packet = "<?xml version='1.0' encoding='UTF-8'?><x:xmpmeta xmlns:x='adobe:ns:meta/' x:xmptk='é'/>\0\0"
    assert parse_xml(packet.encode(codec)).get("{adobe:ns:meta/}xmptk") == "é"


def test_bytes_that_are_not_the_encoding_they_look_like():
    with pytest.raises(DepthError, match="XMP: not UTF-16-LE text"):
        parse_xml(b"<\0a\0/")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("IntMaxValue", "6_5535", "apdi:IntMaxValue is not an integer"),
        ("IntMinValue", "9" * 400, "apdi:IntMinValue is not an integer of at most 18 digits"),
        ("IntMaxValue", "\u0661\u0662", "apdi:IntMaxValue is not an integer"),
        ("FloatMaxValue", "1_0.5", "apdi:FloatMaxValue is not a finite decimal number"),
        ("FloatMaxValue", "1e400", "apdi:FloatMaxValue is not a finite decimal number"),
        ("FloatMinValue", "nan", "apdi:FloatMinValue is not a finite decimal number"),
    ],
)
def test_numbers_are_plain_decimals(name, value, message):
    """Python's int() took "6_5535" as 65535; 400 digits raised OverflowError (float) or went on as huge ints."""
    packet = build_depth_xmp(PixelDataInfo("disparity", 1, 2, 0, 255, 0, 1), DepthMetadata()).decode()
    start = packet.index(f"<apdi:{name}>") + len(f"<apdi:{name}>")
    packet = packet[:start] + value + packet[packet.index("</apdi:", start) :]
    with pytest.raises(DepthError, match=message):
        parse_depth_xmp(packet.encode())
