"""README's dataset table, row by row: a small map in each dataset's own encoding converts through the
CLI and reads back within half a storage step of the decode the table documents (issue 21)."""

import io
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import depthfiles
from helpers.maps import KITTI_RIG
from helpers.pipeline import report_lines
from PIL import Image

from gpu_depth import read_depth

WIDTH, HEIGHT = 64, 48
#: Middlebury 2014 (Adirondack): cam0 focal length (px), baseline (mm → m), doffs (px).
MIDDLEBURY = {"focal_px": 4161.221, "baseline": 0.176252, "doffs": 209.059}
NEAR, FAR = 0.4, 12.0


def _rng(name):
    return np.random.default_rng(sum(name.encode()))


def _codes(name, low, high, holes=0.3):
    """uint16 codes in [low, high) with a share of zeros (the datasets' invalid pixels)."""
    rng = _rng(name)
    codes = rng.integers(low, high, (HEIGHT, WIDTH)).astype(np.uint16)
    codes[rng.random(codes.shape) < holes] = 0
    return codes


def _png(array):
    stream = io.BytesIO()
    Image.fromarray(array).save(stream, "PNG")
    return stream.getvalue()


def _npy(array):
    stream = io.BytesIO()
    np.save(stream, array)
    return stream.getvalue()


def _relative(values, near=NEAR, far=FAR):
    """relative-disparity's decode: the values' range spans disparity 1/far … 1/near."""
    t = (values - np.nanmin(values)) / (np.nanmax(values) - np.nanmin(values))
    return 1 / (1 / far + t * (1 / near - 1 / far))


def kitti_depth():
    codes = _codes("kitti", 256, 80 * 256)
    return "kitti.png", _png(codes), ["--preset", "kitti"], np.where(codes > 0, codes / 256, np.nan)


def kitti_stereo():
    codes = _codes("kitti-stereo", 4 * 256, 200 * 256)
    rig = KITTI_RIG["focal_px"] * KITTI_RIG["baseline"]
    flags = ["--preset", "disparity-px", "--depth-scale", "256", "--focal-px", str(KITTI_RIG["focal_px"])]
    flags += ["--baseline", str(KITTI_RIG["baseline"])]
    return "disp_occ.png", _png(codes), flags, np.where(codes > 0, rig / np.maximum(codes, 1) * 256, np.nan)


def tum():
    codes = _codes("tum", 2500, 40000)
    return "tum.png", _png(codes), ["--depth-scale", "5000"], np.where(codes > 0, codes / 5000, np.nan)


def millimetres(name):
    codes = _codes(name, 300, 9000)
    return f"{name}.png", _png(codes), ["--preset", "mm16"], np.where(codes > 0, codes / 1000, np.nan)


def realsense_l515():
    codes = _codes("l515", 1000, 36000)
    return "l515.png", _png(codes), ["--depth-scale", "4000"], np.where(codes > 0, codes / 4000, np.nan)


def nyu_labeled():
    metres = _rng("nyu").uniform(0.7, 9.9, (HEIGHT, WIDTH)).astype(np.float32)
    return "nyu.npy", _npy(metres), ["--preset", "metric"], metres.astype(np.float64)


def middlebury():
    pixels = _rng("middlebury").uniform(30, 250, (HEIGHT, WIDTH)).astype(np.float32)
    pixels[:5, :7] = np.inf  # Middlebury's unknown disparities
    flags = ["--preset", "disparity-px"] + [f"--{k.replace('_', '-')}={v}" for k, v in MIDDLEBURY.items()]
    rig = MIDDLEBURY["focal_px"] * MIDDLEBURY["baseline"]
    expected = np.where(np.isfinite(pixels), rig / (pixels.astype(np.float64) + MIDDLEBURY["doffs"]), np.nan)
    return "disp0.pfm", depthfiles.pfm(pixels), flags, expected


def depth_anything_png():
    """Visualised relative output: 8-bit normalised inverse depth (0 = farthest)."""
    gray = _rng("da").integers(0, 256, (HEIGHT, WIDTH)).astype(np.uint8)
    flags = ["--preset", "relative-disparity", "--near", str(NEAR), "--far", str(FAR)]
    return "da.png", _png(gray), flags, 1 / (1 / FAR + gray / 255 * (1 / NEAR - 1 / FAR))


def midas_pfm():
    inverse = _rng("midas").uniform(50, 3000, (HEIGHT, WIDTH)).astype(np.float32)
    flags = ["--preset", "relative-disparity", "--near", str(NEAR), "--far", str(FAR)]
    return "midas.pfm", depthfiles.pfm(inverse), flags, _relative(inverse.astype(np.float64))


def depth_pro():
    metres = _rng("depthpro").uniform(0.3, 60, (HEIGHT, WIDTH)).astype(np.float32)
    data = depthfiles.npz(depth=metres, focallength_px=np.float32(1500))
    return "depthpro.npz", data, ["--preset", "metric"], metres.astype(np.float64)


def sintel():
    metres = _rng("sintel").uniform(0.5, 80, (HEIGHT, WIDTH)).astype(np.float32)
    return "sintel.dpt", depthfiles.dpt(metres), ["--preset", "metric"], metres.astype(np.float64)


def exr_model():
    pytest.importorskip("OpenEXR")
    metres = _rng("exr").uniform(0.5, 20, (HEIGHT, WIDTH)).astype(np.float32)
    metres[3, 4] = np.nan
    return "model.exr", depthfiles.exr({"Z": metres}), ["--preset", "metric"], metres.astype(np.float64)


ROWS = {
    "kitti-depth": kitti_depth,
    "kitti-stereo": kitti_stereo,
    "tum": tum,
    "scannet": lambda: millimetres("scannet"),
    "redwood": lambda: millimetres("redwood"),
    "arkitscenes": lambda: millimetres("arkitscenes"),
    "realsense-l515": realsense_l515,
    "nyu-labeled": nyu_labeled,
    "middlebury": middlebury,
    "depth-anything": depth_anything_png,
    "midas": midas_pfm,
    "depth-pro": depth_pro,
    "sintel": sintel,
    "openexr": exr_model,
}


def convert_one(tmp_path, name, data, flags, *extra):
    photo, depth = tmp_path / "photo.jpg", tmp_path / name
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), 128, np.uint8)).save(photo)
    depth.parent.mkdir(parents=True, exist_ok=True)
    depth.write_bytes(data)
    command = [sys.executable, "-m", "gpu_depth", "convert", "--quiet", "--workers", "1", "--photo", str(photo)]
    command += ["--depth", str(depth), "--out", str(tmp_path / "out"), "--pixel-format", "fdep", *flags, *extra]
    return subprocess.run(command, capture_output=True, text=True), tmp_path / "out" / "photo.jpg"


@pytest.mark.parametrize("row", list(ROWS))
def test_dataset_row_reads_back_within_half_a_storage_step(tmp_path, row):
    name, data, flags, expected = ROWS[row]()
    result, output = convert_one(tmp_path, name, data, flags, "--holes", "keep")
    assert result.returncode == 0, result.stderr
    depth = read_depth(output)
    got = depth.array.astype(np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(expected))  # holes kept, read back as NaN
    valid = ~np.isnan(expected)
    low, high = expected[valid].min(), expected[valid].max()
    half_step = (high - low + (low + high) * 2.0**-16) / 65535 / 2  # FloatMin/Max rounded outwards
    assert np.abs(got[valid] - expected[valid]).max() <= half_step + high * 2.0**-24
    assert depth.metadata.filtered is bool(valid.all())
    relative = "relative-disparity" in flags
    assert depth.metadata.accuracy == ("relative" if relative else "absolute")
    lines, summaries = report_lines(tmp_path / "out" / "report.jsonl")
    assert lines[0]["invalid_pixels"] == int((~valid).sum()) and lines[0]["filled_pixels"] == 0
    assert np.allclose(summaries[0]["depth_m"], [low, high], rtol=1e-4)


def test_holes_are_filled_by_default_and_counted(tmp_path):
    name, data, flags, expected = kitti_depth()
    result, output = convert_one(tmp_path, name, data, flags)
    assert result.returncode == 0, result.stderr
    depth = read_depth(output)
    holes = np.isnan(expected)
    assert not np.isnan(depth.array).any() and depth.metadata.filtered
    (line,), _ = report_lines(tmp_path / "out" / "report.jsonl")
    assert line["invalid_pixels"] == line["filled_pixels"] == int(holes.sum())
    assert "kitti: metres = codes / 256, 0 = invalid; depth" in result.stderr


@pytest.mark.parametrize(
    ("make", "flags", "fits"),
    [
        (tum, ["--preset", "metric"], "give --depth-scale N"),
        (kitti_depth, ["--preset", "metric"], "--preset mm16 .millimetres. or kitti"),
        (nyu_labeled, ["--preset", "kitti"], "use --preset metric"),
        (nyu_labeled, ["--preset", "mm16"], "use --preset metric"),
    ],
)
def test_a_preset_that_cannot_mean_the_map_fails_naming_the_one_that_fits(tmp_path, make, flags, fits):
    name, data, _, _ = make()
    result, output = convert_one(tmp_path, name, data, flags)
    assert result.returncode == 1 and not output.exists()
    (line,) = [line for line in result.stderr.splitlines() if "photo.jpg:" in line]
    assert re.search(fits, line), line


@pytest.mark.parametrize(
    ("make", "path", "wrong", "fits"),
    [
        (kitti_stereo, "data_scene_flow/training/disp_occ_0/000000_10.png", ["--preset", "kitti"], "disparity-px"),
        (tum, "rgbd_dataset_freiburg1_desk/depth/1305031453.374112.png", ["--preset", "mm16"], "--depth-scale 5000"),
    ],
    ids=["kitti-on-kitti-stereo", "mm16-on-tum"],
)
def test_a_preset_the_datasets_layout_contradicts_fails(tmp_path, make, path, wrong, fits):
    """Same bits, other encodings: the dataset's folder names tell them apart, and the right flags pass."""
    _, data, flags, _ = make()
    result, output = convert_one(tmp_path, path, data, wrong)
    assert result.returncode == 1 and not output.exists()
    (line,) = [line for line in result.stderr.splitlines() if "photo.jpg:" in line]
    assert fits in line, line
    result, output = convert_one(tmp_path, path, data, flags)
    assert result.returncode == 0 and output.exists(), result.stderr


def test_intrinsics_are_written_as_the_camera_calibration(tmp_path):
    name, data, flags, _ = tum()
    result, output = convert_one(tmp_path, name, data, flags, "--intrinsics", "525,526,319.5,239.5")
    assert result.returncode == 0, result.stderr
    calibration = read_depth(output).metadata.calibration
    assert calibration.intrinsic_matrix == ((525.0, 0.0, 319.5), (0.0, 526.0, 239.5), (0.0, 0.0, 1.0))
    assert calibration.reference_dimensions == (WIDTH, HEIGHT)
    result, _ = convert_one(tmp_path, name, data, flags, "--intrinsics", "525,526")
    assert result.returncode == 2 and "intrinsics must be fx,fy,cx,cy" in result.stderr


def test_intrinsics_in_an_npz_are_written_unless_the_command_line_gives_others(tmp_path):
    metres = np.full((HEIGHT, WIDTH), 2.0, np.float32)
    K = np.array([[50.0, 0, 31.5], [0, 51.0, 23.5], [0, 0, 1]])
    data = depthfiles.npz(depth=metres, K=K)
    result, output = convert_one(tmp_path, "depth.npz", data, ["--preset", "metric"])
    assert result.returncode == 0, result.stderr
    assert read_depth(output).metadata.calibration.intrinsic_matrix == tuple(map(tuple, K))
    flags = ["--preset", "metric", "--intrinsics", "9,9,1,1", "--overwrite"]
    result, output = convert_one(tmp_path, "depth.npz", data, flags)
    assert read_depth(output).metadata.calibration.intrinsic_matrix[0] == (9.0, 0.0, 1.0)


def test_manifest_rows_with_their_own_range_report_each_mapping(tmp_path):
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), 128, np.uint8)).save(tmp_path / "a.jpg")
    Image.fromarray(np.full((HEIGHT, WIDTH), 100, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("photo,depth,near,far\na.jpg,a.png,0.5,4\n")
    command = [sys.executable, "-m", "gpu_depth", "convert", "--quiet", "--workers", "1"]
    command += ["--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (line,), (summary,) = report_lines(tmp_path / "out" / "report.jsonl")
    assert line["mapping"] == "apple-gray, near 0.5 m, far 4 m"
    assert summary["mapping"] == "apple-gray (black = near), per manifest row (each item's is in the report)"
