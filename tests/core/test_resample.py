"""The area resampler's integral in C (``_resample.c``) gives NumPy's sums to the bit, and refuses what does not fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.sanitized import run_sanitized

from gpu_depth.core import resample


def maps(seed: int, count: int):
    """(map, width, height): random sizes of 1-200 a side to 1-250, a third with NaN holes; then the extremes."""
    rng = np.random.default_rng(seed)
    for number in range(count):
        values = rng.random(tuple(rng.integers(1, 201, 2))) * 20 - 5
        if number % 3 == 0:
            values[rng.random(values.shape) < 0.4] = np.nan
        yield values, *(int(n) for n in rng.integers(1, 251, 2))
    yield np.array([[7.0]]), 500, 1
    yield rng.random((1, 5000)), 1, 3
    yield rng.random((3000, 7)) * 1e300, 7, 1000
    yield np.array([[1.0, np.inf], [2.0, 3.0]]), 3, 3
    yield np.full((6, 6), np.nan), 2, 2


def mismatches(cases) -> list[int]:
    """Which cases the compiled integral resamples to other values (or NaN places) than NumPy's."""
    cases = list(cases)
    compiled = [resample.area_resize(values, width, height) for values, width, height in cases]
    saved, resample._compiled = resample._compiled, None
    try:
        with np.errstate(invalid="ignore"):  # inf times a length of 0, as the C integral gives it too
            numpy = [resample.area_resize(values, width, height) for values, width, height in cases]
    finally:
        resample._compiled = saved
    return [k for k, (a, b) in enumerate(zip(compiled, numpy, strict=True)) if not np.array_equal(a, b, equal_nan=True)]


def refusals(module) -> list[str]:
    """The errors of the calls ``integrate`` must refuse."""
    good, out = np.zeros((4, 6)), np.zeros((4, 3))
    calls = [
        (good.astype(np.float32), 4, 6, 1, out, 3),  # not float64
        (good, 4, 7, 1, out, 3),  # values shorter than the shape says
        (good, 4, 6, 1, np.zeros((4, 2)), 3),  # out too small
        (good[:, ::2], 4, 3, 1, np.zeros((4, 3)), 3),  # not contiguous
        (good, 4, 6, 2, out, 3),  # no such axis
        (good, 4, 6, 1, out, 0),  # no span
        (good, 0, 6, 1, out, 3),  # an empty map
        (good, 4, 6, 1, np.zeros((4, 3)).view(np.int64), 3),  # out not float64
    ]
    errors = []
    for call in calls:
        with pytest.raises((TypeError, ValueError, BufferError)) as caught:
            module.integrate(*call)
        errors.append(str(caught.value))
    return errors


def test_the_compiled_resampler_is_built():
    """``pip install .`` builds it where a C compiler is at hand (every machine README's commands run on)."""
    assert resample._compiled is not None, "gpu_depth/core/_resample.c was not built: reinstall with a compiler"


def test_the_compiled_integral_resamples_as_numpy_to_the_bit():
    assert mismatches(maps(3, 400)) == []


def test_the_compiled_integral_refuses_what_does_not_fit():
    assert len(refusals(resample._compiled)) == 8


SANITIZED_RUN = """
import test_resample as t
from gpu_depth.core import resample
resample._compiled = compiled
assert t.mismatches(t.maps(7, 120)) == [] and len(t.refusals(compiled)) == 8
print("sanitized resampler: 125 maps as by NumPy")
"""


def test_the_compiled_integral_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    source = Path(resample.__file__).with_name("_resample.c")
    assert "sanitized resampler:" in run_sanitized(source, tmp_path, SANITIZED_RUN, "-ffp-contract=off")
