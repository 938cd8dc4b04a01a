"""A short deterministic run of bench/fuzz.py's mutation fuzzing: every reader, only DepthError escapes."""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections import Counter

import pytest
from helpers import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import fuzz

#: Cases per reader: together about 10 s on one core of a CI machine (bench/fuzz.py runs 100,000 each).
CASES = 3000
SEED = 20261125


@pytest.fixture(scope="module")
def seeds() -> dict[str, list[fuzz.Seed]]:
    return {reader: fuzz.RUNNERS[reader][0]() for reader in fuzz.READERS}


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch):
    """The loader cases' files go to this test's folder; Pillow's warnings on broken files are expected."""
    monkeypatch.setattr(fuzz, "SCRATCH", [tmp_path])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("reader", fuzz.READERS)
def test_mutated_inputs_raise_nothing_but_depth_error(seeds, reader):
    outcomes, traces = Counter(), []
    for index in range(CASES):
        outcome, _, _, trace = fuzz.run_case(reader, seeds[reader], SEED, index)
        outcomes[outcome] += 1
        if trace:
            traces.append(trace)
    assert not traces, f"{reader}: {dict(outcomes)}\n" + "\n".join(traces[:3])
    assert outcomes["DepthError"] and outcomes["ok"], f"{reader}: mutations should both break and spare files"


def test_seeds_cover_every_reader_and_read_back(seeds):
    """The seeds are valid files: each container reader finds the depth map our own outputs carry."""
    assert all(seeds[reader] for reader in fuzz.READERS)
    for reader, module in (("heif", fuzz.heic), ("jpeg", fuzz.jpeg), ("dng", fuzz.dng)):
        for seed in seeds[reader]:
            assert (module.read_depth(seed.data) is None) == ("no-depth" in seed.name), seed.name


def test_cases_are_deterministic_and_replayable(seeds):
    first = [fuzz.make_case("jpeg", seeds["jpeg"], SEED, index)[1] for index in range(20)]
    again = [fuzz.make_case("jpeg", seeds["jpeg"], SEED, index)[1] for index in range(20)]
    other = [fuzz.make_case("jpeg", seeds["jpeg"], SEED + 1, index)[1] for index in range(20)]
    assert first == again and first != other


def test_a_leaked_exception_is_reported_with_its_traceback(seeds, monkeypatch):
    def leaky(data: bytes, seed: fuzz.Seed) -> None:
        raise KeyError("boom")

    monkeypatch.setitem(fuzz.RUNNERS, "xmp", (fuzz.xmp_seeds, leaky))
    outcome, _, _, trace = fuzz.run_case("xmp", seeds["xmp"], SEED, 3)
    assert outcome == "KeyError" and "case 3" in trace and "boom" in trace


def test_worker_crashes_and_hangs_are_counted_and_the_run_goes_on(monkeypatch):
    """A reader that kills its process (as a C decoder's segfault would) or never returns is a finding too."""
    crash, hang = 7, 13

    def hostile(data: bytes, seed: fuzz.Seed) -> None:
        if len(data) % crash == 0:
            os._exit(70)
        if len(data) % hang == 0:
            time.sleep(60)

    monkeypatch.setitem(fuzz.RUNNERS, "xmp", (fuzz.xmp_seeds, hostile))
    seeds = fuzz.xmp_seeds()
    sizes = [len(fuzz.make_case("xmp", seeds, SEED, index)[1]) for index in range(60)]
    crashes = sum(size % crash == 0 for size in sizes)
    hangs = sum(size % crash != 0 and size % hang == 0 for size in sizes)
    stats = fuzz.fuzz(["xmp"], 60, SEED, jobs=2, chunk=20, hang=0.5, memory=0, progress=None)["xmp"]
    assert crashes and hangs
    assert stats.cases == 60
    assert stats.counts["crash (exit 70)"] == crashes and stats.counts["hang (> 0.5 s)"] == hangs
    assert stats.counts["ok"] == 60 - crashes - hangs


def test_a_case_over_its_budget_is_a_finding(monkeypatch):
    """What a case costs (CPU seconds, peak memory it adds) is held to gpu_depth.limits.READ_BUDGETS."""

    def costly(data: bytes, seed: fuzz.Seed) -> None:
        block = b"x" * (64 << 20)  # written, so resident
        end = time.process_time() + 0.1
        while time.process_time() < end:
            pass
        del block

    monkeypatch.setitem(fuzz.RUNNERS, "xmp", (fuzz.xmp_seeds, costly))
    monkeypatch.setattr(fuzz, "read_budget", lambda size: (8 << 20, 0.05))
    stats = fuzz.fuzz(["xmp"], 2, SEED, jobs=1, chunk=2, hang=30, memory=0, progress=None)["xmp"]  # fresh process
    assert stats.counts["over budget"] == 2
    assert "s CPU > 0.05 s" in stats.traces[0] and "MiB peak > 8 MiB" in stats.traces[0]


def test_the_budgets_grow_with_the_input():
    from gpu_depth.limits import read_budget

    assert read_budget(1000) == (512 << 20, 1.0)
    assert read_budget(8 << 20) == (1 << 30, 3.0)
    assert read_budget(64 << 20) is None


#: Cases long runs found (reader, --seed, case): each once leaked another exception than DepthError or
#: wrote a file that failed the reader's own check.
FOUND = [
    ("photo", 11, 65409),  # a flipped TIFF tag made Pillow's Exif.tobytes raise KeyError 262
    ("attach", 11, 87008),  # the primary referenced the old depth item, which replace kept: it read back first
]


@pytest.mark.parametrize(("reader", "seed", "index"), FOUND)
def test_cases_long_runs_found_stay_fixed(seeds, reader, seed, index):
    outcome, _, _, trace = fuzz.run_case(reader, seeds[reader], seed, index)
    assert not trace and outcome in ("DepthError", "ok"), trace
