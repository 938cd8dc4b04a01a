"""With the CuPy backend the pipeline's conversion stage quantises on the device: ``CupyBackend.quantize``, one
call per storage for the batch, giving the NumPy path's stored maps bit for bit (marked ``gpu``: on the stream
simulator without a device)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from helpers.pipeline import make_dataset
from PIL import Image

from gpu_depth.backends import cupy_unavailable
from gpu_depth.core.formats import StoredFormat
from gpu_depth.pipeline import stages
from gpu_depth.pipeline.jobs import pair_folders
from gpu_depth.pipeline.options import Options

pytest.importorskip("cupy")
cupy_backend = pytest.importorskip("gpu_depth.backends.cupy_backend")


@pytest.mark.gpu
@pytest.mark.parametrize(("container", "stored"), [("jpeg", "L016"), ("heic", "L008")])
def test_the_conversion_stage_quantises_on_the_cupy_backend(tmp_path, monkeypatch, container, stored):
    reason = cupy_unavailable()
    if reason is not None:
        pytest.skip(reason)
    photos, depths = make_dataset(tmp_path, 3)
    first = next(depths.iterdir())
    gray = np.asarray(Image.open(first)).copy()
    gray[5:9, :20] = 0  # KITTI's invalid code: holes, kept
    Image.fromarray(gray).save(first)
    jobs, _ = pair_folders(photos, depths)
    options = Options(tmp_path / "out", container=container, preset="kitti", holes="keep")
    calls, real = [], cupy_backend.CupyBackend.quantize

    def spy(self, depths, stored_format=StoredFormat.L008):
        calls.append((len(depths), StoredFormat.parse(stored_format).fourcc))
        return real(self, depths, stored_format)

    monkeypatch.setattr(cupy_backend.CupyBackend, "quantize", spy)
    batch = [stages.decode(stages.Item(job, tmp_path / job.photo.name), options) for job in jobs]
    stages.convert_maps(batch, options, "numpy")
    on_cpu = copy.deepcopy(batch)
    stages.store_maps(batch, options, "cupy")
    assert calls == [(3, stored)]
    stages.store_maps(on_cpu, options, "numpy")
    assert on_cpu[0].map_details["invalid_pixels"] == 80
    for got, expected in zip(batch, on_cpu, strict=True):
        assert got.status is expected.status is None, (got.error, expected.error)
        assert got.stored.map.info == expected.stored.map.info and got.map_details == expected.map_details
        assert got.stored.map.pixels.dtype == expected.stored.map.pixels.dtype == StoredFormat.parse(stored).dtype
        assert got.stored.map.pixels.tobytes() == expected.stored.map.pixels.tobytes()
