"""The Ray engine against the local pipeline: same files byte for byte, same report, same failures."""

import json

import numpy as np
import pytest
from helpers.pipeline import dead_pid
from PIL import Image

from gpu_depth import read_depth
from gpu_depth.cli.main import main
from gpu_depth.errors import DepthError
from gpu_depth.fileio import TEMP_SUFFIX, temp_path
from gpu_depth.pipeline.example import FAR, NEAR, write_example
from gpu_depth.pipeline.ray_engine import converter_resources

ray = pytest.importorskip("ray")
TIMINGS = ("decode_s", "convert_s", "attach_s")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module; the engine uses a Ray already initialised as it is."""
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def convert(photos, depths, out, *args):
    arguments = ["--photos", photos, "--depth", depths, "--out", out, "--near", NEAR, "--far", FAR, *args]
    return main(["convert", "--quiet", "--workers", "2", "--batch-size", "4", *map(str, arguments)])


def report(out):
    """Item lines by photo, without timings and with the output's name only; and the summary."""
    lines = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    items = {
        line["photo"]: {**{k: v for k, v in line.items() if k not in TIMINGS}, "output": line["output"].split("/")[-1]}
        for line in lines
        if "photo" in line
    }
    return items, [line["summary"] for line in lines if "summary" in line]


def test_example_is_byte_identical_to_the_local_pipeline(tmp_path):
    photos, depths = write_example(tmp_path / "example", count=6, size=(160, 120))
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert convert(photos, depths, local) == 0
    assert convert(photos, depths, distributed, "--engine", "ray") == 0
    names = sorted(p.name for p in local.glob("scene-*"))
    assert {name.rsplit(".", 1)[1] for name in names} == {"heic", "jpg"} and len(names) == 6
    assert sorted(p.name for p in distributed.iterdir()) == sorted([*names, "report.jsonl"])
    assert all((local / name).read_bytes() == (distributed / name).read_bytes() for name in names)
    (local_items, _), (ray_items, (summary,)) = report(local), report(distributed)
    assert ray_items == local_items and {line["status"] for line in ray_items.values()} == {"ok"}
    assert (summary["ok"], summary["failed"], summary["backend"]) == (6, 0, "numpy")


def test_failing_item_is_reported_not_fatal_and_resume_skips_the_rest(tmp_path):
    photos, depths = write_example(tmp_path / "example", count=5, size=(96, 72))
    good = (depths / "scene-01.png").read_bytes()
    (depths / "scene-01.png").write_bytes(good[: len(good) // 2])  # truncated PNG
    Image.fromarray(np.zeros((10, 30), np.uint16)).save(depths / "scene-02.png")  # wrong aspect ratio
    out = tmp_path / "out"
    assert convert(photos, depths, out, "--engine", "ray") == 1
    items, (summary,) = report(out)
    failed = {line["output"]: line["error"] for line in items.values() if line["status"] == "failed"}
    assert sorted(failed) == ["scene-01.jpg", "scene-02.heic"]
    assert "cannot decode" in failed["scene-01.jpg"] and "aspect ratio" in failed["scene-02.heic"]
    assert (summary["ok"], summary["failed"]) == (3, 2)
    written = sorted(p.name for p in out.glob("scene-*"))
    assert written == ["scene-00.heic", "scene-03.jpg", "scene-04.heic"]
    assert all(read_depth(out / name) is not None for name in written)
    assert not list(out.glob(f".*{TEMP_SUFFIX}"))

    (out / "report.jsonl").unlink()
    temp_path(out / "scene-00.heic", pid=dead_pid()).write_bytes(b"left by a killed run")
    assert convert(photos, depths, out, "--engine", "ray", "--resume") == 1
    items, (summary,) = report(out)
    assert (summary["ok"], summary["skipped"], summary["failed"]) == (0, 3, 2)
    assert not list(out.glob(f".*{TEMP_SUFFIX}"))


def test_ray_address_needs_the_ray_engine(tmp_path, capsys):
    photos, depths = tmp_path, tmp_path
    assert convert(photos, depths, tmp_path / "out", "--ray-address", "auto") == 2
    assert "--ray-address needs --engine ray" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("cluster", "backend", "expected"),
    [
        ({"CPU": 64.0, "GPU": 4.0}, "auto", ({"num_gpus": 0.5}, 8)),
        ({"CPU": 64.0, "GPU": 1.0}, "cupy", ({"num_gpus": 0.5}, 2)),
        ({"CPU": 64.0, "GPU": 4.0}, "numpy", ({"num_cpus": 0}, 16)),
        ({"CPU": 2.0}, "auto", ({"num_cpus": 0}, 1)),
    ],
)
def test_conversion_actors_share_the_gpus_or_use_no_reserved_cpu(cluster, backend, expected):
    assert converter_resources(cluster, backend) == expected


def test_cupy_backend_on_a_cluster_without_gpu_is_an_error():
    with pytest.raises(DepthError, match="backend cupy needs a GPU"):
        converter_resources({"CPU": 8.0}, "cupy")
