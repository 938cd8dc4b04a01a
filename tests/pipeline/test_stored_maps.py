"""The conversion stage stores each map as its output's container stores it (hole fill, the turn to the photo's
stored orientation, the quantisation); the workers only encode and mux.  Its outputs are those of the public
API attaching the same float map (which quantises inside the container), byte for byte."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pillow_heif import from_pillow

import gpu_depth
from gpu_depth import containers
from gpu_depth.core import quantize as core_quantize
from gpu_depth.core.holes import fill_depth
from gpu_depth.pipeline import local, stages
from gpu_depth.pipeline.jobs import Job, pair_folders
from gpu_depth.pipeline.mattes import load_matte
from gpu_depth.pipeline.options import Options

#: Output container options of each case: (photo kind, --container, container options).
CASES = {
    "heic-hvc1": ("heic", "heic", {}),
    "heic-jpeg-item": ("heic", "heic", {"depth_codec": "jpeg"}),
    "jpeg-lossless": ("jpeg", "jpeg", {}),
    "jpeg-baseline-gdepth": ("jpeg", "jpeg", {"coding": "baseline", "gdepth": True}),
    "jpeg-to-heic": ("jpeg", "heic", {}),
    "dng": ("dng", "dng", {"measure_type": 1}),
}


def photo_bytes(kind: str, orientation: int) -> bytes:
    """A 48x32 (displayed 32x48 when the orientation turns it) photo of ``kind`` with Exif ``orientation``."""
    y, x = np.mgrid[0:32, 0:48]
    rgb = np.stack([x * 5, y * 7, (x * y) % 256], axis=-1).astype(np.uint8)
    if kind == "dng":
        from helpers import dng as dng_helpers

        camera = [(274, "H", 1, orientation, True) if tag[0] == 274 else tag for tag in dng_helpers.CAMERA]
        saved, dng_helpers.CAMERA = dng_helpers.CAMERA, camera
        try:
            return dng_helpers.make_dng()  # a 96x64 raw
        finally:
            dng_helpers.CAMERA = saved
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    if kind == "heic":
        from_pillow(image).save(buffer, quality=60, exif=exif.tobytes(), enc_params={"preset": "ultrafast"})
    else:
        image.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def kitti_map(width: int, height: int, holes: bool) -> np.ndarray:
    """KITTI codes (metres x 256) of a slanted scene, 0 (invalid) in a band and a few pixels when ``holes``."""
    y, x = np.mgrid[0:height, 0:width]
    codes = (256 * (1.5 + 6.0 * x / width + 2.0 * (y / height) ** 2)).astype(np.uint16)
    if holes:
        codes[height // 3, : width // 2] = 0
        codes[::7, ::5] = 0
    return codes


def dataset(tmp_path: Path, kind: str, orientation: int, holes: bool, matte: bool) -> tuple[Path, Path]:
    photos, depths, mattes = tmp_path / "photos", tmp_path / "depth", tmp_path / "mattes"
    for folder in (photos, depths, mattes):
        folder.mkdir()
    data = photo_bytes(kind, orientation)
    suffix = containers.sniff(data).EXTENSIONS[0]
    (photos / f"p{suffix}").write_bytes(data)
    width, height = containers.sniff(data).displayed_size(data)
    Image.fromarray(kitti_map(width // 2, height // 2, holes)).save(depths / "p.png")
    if matte:
        y, x = np.mgrid[0:height, 0:width]
        Image.fromarray(((x + 3 * y) % 256).astype(np.uint8)).save(mattes / "p.png")
    return photos, depths


def options_for(tmp_path: Path, container: str, attach: dict, holes: str, matte: bool, workers: int = 1) -> Options:
    return Options(
        tmp_path / "out",
        container=container,
        preset="kitti",
        pixel_format="fdep" if container == "dng" else "hdis",
        holes=holes,
        attach=attach,
        mattes=tmp_path / "mattes" if matte else None,
        workers=workers,
    )


def direct(job: Job, options: Options, out: Path) -> bytes:
    """The output the public API writes for the item's photo and its float map as the driver converts it:
    ``attach_depth`` of that DepthData, which quantises inside the container (the path before the stage)."""
    item = stages.decode(stages.Item(job, out), options)
    stages.convert_maps([item], options, "numpy")
    assert item.status is None, item.error
    depth = fill_depth(item.depth)[0] if options.holes == "fill" else item.depth
    mattes = {options.matte_kind: load_matte(options.mattes / f"{job.photo.stem}.png")} if options.mattes else None
    gpu_depth.attach_depth(
        job.photo,
        depth,
        out,
        container=options.container,
        orientation="displayed",
        mattes=mattes,
        encoder_threads=options.encoder_threads,
        **options.attach,
    )
    return out.read_bytes()


def staged(job: Job, options: Options) -> tuple[bytes, dict]:
    """The output of the pipeline's stages run in this process (x265 encodes in the main thread, deterministic)."""
    options.out.mkdir(exist_ok=True)
    [item] = stages.plan([job], options, lambda done: None)
    stages.convert_batch([stages.decode(item, options)], options, "numpy")
    assert item.status is None and item.depth is None and item.stored is not None, item.error
    assert stages.encode(item, options).status == "ok", item.error
    return item.output.read_bytes(), item.report()


@pytest.mark.parametrize("orientation", [1, 6, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_the_stored_map_path_writes_the_public_apis_bytes(tmp_path, case, orientation):
    kind, container, attach = CASES[case]
    photos, depths = dataset(tmp_path, kind, orientation, holes=True, matte=False)
    options = options_for(tmp_path, container, attach, "fill", matte=False)
    [job], _ = pair_folders(photos, depths)
    got, line = staged(job, options)
    assert got == direct(job, options, tmp_path / f"direct{Path(line['output']).suffix}")
    assert line["filled_pixels"] == line["invalid_pixels"] > 0
    stored = gpu_depth.read_depth(line["output"])  # in the photo's stored orientation
    shown = (line["width"], line["height"])
    assert (stored.width, stored.height) == (shown[::-1] if orientation in (5, 6, 7, 8) else shown)


@pytest.mark.parametrize("case", ["heic-hvc1", "heic-jpeg-item", "jpeg-lossless"])
def test_holes_kept_and_mattes_give_the_public_apis_bytes(tmp_path, case):
    kind, container, attach = CASES[case]
    photos, depths = dataset(tmp_path, kind, 6, holes=True, matte=True)
    options = options_for(tmp_path, container, attach, "keep", matte=True)
    [job], _ = pair_folders(photos, depths)
    got, line = staged(job, options)
    expected_path = tmp_path / f"direct{Path(line['output']).suffix}"
    expected = direct(job, options, expected_path)
    assert line["invalid_pixels"] > 0 and line["filled_pixels"] == 0 and line["matte"]
    if kind != "heic":
        assert got == expected
        return
    # a HEIC matte's x265 encode runs on a thread, whose bytes may differ run to run: the depth item's bytes,
    # its XMP (in the decoded metadata) and the lossless matte's pixels are compared
    assert depth_item(got) == depth_item(expected)
    mine, theirs = gpu_depth.read_depth(line["output"]), gpu_depth.read_depth(expected_path)
    assert np.array_equal(mine.array, theirs.array, equal_nan=True) and mine.metadata == theirs.metadata
    [matte], [their_matte] = gpu_depth.read_mattes(line["output"]), gpu_depth.read_mattes(expected_path)
    assert np.array_equal(matte.pixels, their_matte.pixels)


def depth_item(data: bytes) -> bytes:
    """The coded bytes of a HEIC's depth item."""
    from gpu_depth.containers.heic import isobmff
    from gpu_depth.containers.heic import plugin as heic

    heif = isobmff.parse_file(memoryview(data))
    return bytes(isobmff.item_data(heif, heic.find_depth_item(heif.meta)))


def test_a_map_stored_for_another_orientation_is_turned_at_the_attach(tmp_path):
    """A copy in another container may be turned otherwise than the photo the driver read: the stored codes are
    re-turned (storing depends on the values only), giving the bytes of the float map's attach."""
    photos, depths = dataset(tmp_path, "jpeg", 3, holes=True, matte=False)
    options = options_for(tmp_path, "jpeg", {}, "fill", matte=False)
    [job], _ = pair_folders(photos, depths)
    options.out.mkdir()
    item = stages.decode(stages.Item(job, options.out / "p.jpg"), options)
    item.turn = 6  # as if the photo had said 6
    stages.convert_batch([item], options, "numpy")
    assert item.stored.turn == 6
    assert stages.encode(item, options).status == "ok", item.error
    assert item.output.read_bytes() == direct(job, options, tmp_path / "direct.jpg")


@pytest.mark.parametrize("case", list(CASES))
def test_the_worker_never_quantises(tmp_path, monkeypatch, case):
    """Storing is the conversion stage's: the encode stage with every way of storing a map made to raise."""
    from gpu_depth.containers.dng import plugin as dng

    kind, container, attach = CASES[case]
    photos, depths = dataset(tmp_path, kind, 6, holes=True, matte=False)
    options = options_for(tmp_path, container, attach, "fill", matte=False)
    [job], _ = pair_folders(photos, depths)
    options.out.mkdir()
    [item] = stages.plan([job], options, lambda done: None)
    stages.convert_batch([stages.decode(item, options)], options, "numpy")

    def refuse(*args, **kwargs):
        raise AssertionError("the worker stored a map")

    for owner, name in [(core_quantize, "quantize"), (core_quantize.Storage, "store"), (dng, "depth_codes")]:
        monkeypatch.setattr(owner, name, refuse)
    assert stages.encode(item, options).status == "ok", item.error


def test_a_map_that_cannot_be_stored_fails_its_item_alone_with_one_line(tmp_path):
    """DNG codes refuse holes (--holes keep): that item fails in the conversion stage with the line its attach
    gave; its batch's other DNG, stored in the same call, and the JPEG go on; so does a photo that is no photo."""
    photos, depths = tmp_path / "photos", tmp_path / "depth"
    for folder in (photos, depths):
        folder.mkdir()
    data = photo_bytes("dng", 6)
    width, height = containers.sniff(data).displayed_size(data)
    for name, holes in (("a", True), ("b", False)):
        (photos / f"{name}.dng").write_bytes(data)
        Image.fromarray(kitti_map(width, height, holes)).save(depths / f"{name}.png")
    (photos / "c.dng").write_bytes(b"II*\0 not a tiff")
    Image.fromarray(kitti_map(width, height, False)).save(depths / "c.png")
    jobs, _ = pair_folders(photos, depths)
    lines = []
    options = options_for(tmp_path, "same", {}, "keep", matte=False, workers=1)
    summary = local.run(jobs, options, lines.append)
    assert (summary["ok"], summary["failed"]) == (1, 2)
    by_name = {Path(line["photo"]).stem: line for line in lines}
    holes = int((kitti_map(width, height, True) == 0).sum())
    assert by_name["a"]["error"] == (f"DNG depth maps cannot hold holes ({holes} NaN pixels): fill them (--holes fill)")
    assert by_name["b"]["status"] == "ok" and by_name["b"]["invalid_pixels"] == 0
    assert by_name["c"]["status"] == "failed" and "\n" not in by_name["c"]["error"]
