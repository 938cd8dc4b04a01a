"""The JSON Lines report of a conversion run, and the progress line on stderr."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import IO

from ..errors import DepthError


class Report:
    """One JSON line per item, flushed at once, so a killed run keeps what it did.  Each run writes the report
    anew (a resumed run lists what it skipped), so every item is listed once, with one summary at the end.
    A report that cannot be written is a fault of the run: DepthError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._stream: IO[str] = path.open("w", encoding="utf-8")
        except OSError as exc:
            raise DepthError(f"{path}: cannot write the report: {exc.strerror or exc}") from exc

    def write(self, line: dict) -> None:
        try:
            self._stream.write(json.dumps(line, sort_keys=False) + "\n")
            self._stream.flush()
        except OSError as exc:
            raise DepthError(f"{self.path}: cannot write the report: {exc.strerror or exc}") from exc

    def close(self) -> None:
        try:
            self._stream.close()
        except OSError as exc:
            raise DepthError(f"{self.path}: cannot write the report: {exc.strerror or exc}") from exc


class Progress:
    """``done/total, rate, ETA, backend`` redrawn on one stderr line; silent when not a terminal."""

    def __init__(self, total: int, backend: str, enabled: bool | None = None, stream: IO[str] = sys.stderr) -> None:
        self.total, self.backend, self.stream = total, backend, stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.done = 0
        self.start = time.perf_counter()

    def advance(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        self.stream.write(
            f"\r{self.done}/{self.total} items  {rate:.1f}/s  ETA {eta:.0f}s  backend {self.backend}{_gpu_memory()}   "
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            self.stream.write("\n")


def _gpu_memory() -> str:
    """``  GPU 1.2/80 GiB`` when CuPy sees a device, else nothing."""
    if "cupy" not in sys.modules:
        return ""
    import cupy

    try:
        free, total = cupy.cuda.runtime.memGetInfo()
    except cupy.cuda.runtime.CUDARuntimeError:  # CuPy imported (to look for a device) but none answers
        return ""
    return f"  GPU {(total - free) / 2**30:.1f}/{total / 2**30:.0f} GiB"
