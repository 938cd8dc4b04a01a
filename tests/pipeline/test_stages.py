"""The stages one by one: whatever goes wrong with one item is that item's failure."""

from pathlib import Path

import numpy as np
import pytest

from gpu_depth.pipeline import stages
from gpu_depth.pipeline.jobs import Job
from gpu_depth.pipeline.options import Options


@pytest.mark.parametrize("error", [MemoryError(), ZeroDivisionError("division by zero"), OSError(36, "too long")])
def test_any_exception_while_decoding_is_the_items_failure(tmp_path, monkeypatch, error):
    """Only DepthError was caught: anything else ended the whole run with a traceback."""

    def load(path):
        raise error

    monkeypatch.setattr(stages, "load_depth_map", load)
    item = stages.decode(
        stages.Item(Job(tmp_path / "a.jpg", tmp_path / "a.png"), tmp_path / "out.jpg"), Options(tmp_path)
    )
    assert item.status == "failed" and item.error.startswith(f"unexpected {type(error).__name__}")
    assert "\n" not in item.error


def test_a_conversion_that_raises_fails_only_its_item(tmp_path, monkeypatch):
    def convert(gray, *args, **kwargs):
        if isinstance(gray, list) or gray.shape == (1, 1):
            raise ValueError("bad map")
        return "converted"

    monkeypatch.setattr(stages, "convert", convert)
    batch = [stages.Item(Job(Path(f"{n}.jpg"), Path(f"{n}.png")), Path(f"o{n}.jpg")) for n in range(3)]
    for item, shape in zip(batch, [(2, 2), (1, 1), (2, 2)], strict=True):
        item.gray, item.size = np.zeros(shape, np.uint16), shape
    stages.convert_batch(batch, Options(tmp_path, near=0.5, far=10), "numpy")
    assert [item.status for item in batch] == [None, "failed", None]
    assert batch[1].error == "unexpected ValueError: bad map" and batch[0].depth == "converted"
