"""Helpers shared by the benchmarks: best-of-N timing and a one-line machine description."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

#: The real sample files beside the checkout, as the tests find them (tests/helpers).
SAMPLES = Path(os.environ.get("GPU_DEPTH_SAMPLES", Path(__file__).resolve().parents[2] / "shared" / "samples"))


def timings(
    func: Callable[[], object], repeat: int = 5, warmup: bool = True, clock: Callable[[], float] = time.perf_counter
) -> list[float]:
    """Wall times (or ``clock``'s, e.g. ``time.thread_time`` for CPU) of ``repeat`` calls, in seconds (after one
    warm-up call unless told not to)."""
    if warmup:
        func()
    times = []
    for _ in range(repeat):
        start = clock()
        func()
        times.append(clock() - start)
    return times


def best_of(func: Callable[[], object], repeat: int = 5, clock: Callable[[], float] = time.perf_counter) -> float:
    """Smallest wall (or ``clock``) time of ``repeat`` calls after a warm-up."""
    return min(timings(func, repeat, clock=clock))


def median_of(func: Callable[[], object], repeat: int = 5, warmup: bool = True) -> float:
    """Median wall time of ``repeat`` calls (after a warm-up unless told not to)."""
    return statistics.median(timings(func, repeat, warmup))


def machine() -> str:
    """CPU model, core count and Python version, for RESULTS.md."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"
