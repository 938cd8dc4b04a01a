"""``gpu-depth info`` names the CuPy it can import, whichever distribution installed it."""

import importlib.util

import pytest

from gpu_depth.cli.info import describe


def test_cupy_is_reported_however_installed():
    if importlib.util.find_spec("cupy") is None:  # without CuPy the suite runs on tests/fake_cupy
        pytest.skip("no cupy importable")
    import cupy

    report = describe()
    assert f"cupy: {cupy.__version__}" in report
    assert "cupy-cuda12x: not installed" not in report


def test_report_names_the_backend_choice():
    assert "backend (auto): " in describe()
