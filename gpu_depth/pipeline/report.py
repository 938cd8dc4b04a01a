"""The JSON Lines report of a conversion run, and its progress on stderr: a bar on a terminal, timestamped
lines at a steady interval otherwise (a batch job's log)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from ..errors import DepthError
from .options import Options

#: ``--report -``: the report goes to stdout.
STDOUT = Path("-")


class Report:
    """A ``{"run": …}`` line (run id, start time, and ``run``: options, version), one JSON line per item,
    flushed at once so a killed run keeps what it did, and a ``{"summary": …}`` line.  Each run writes its
    report anew (a resumed run lists what it skipped), so every item is listed once.  ``-`` is stdout.  A
    report that cannot be written is a fault of the run: DepthError."""

    def __init__(self, path: Path, run: dict) -> None:
        self.path = path
        self.run_id = uuid.uuid4().hex
        try:
            self._stream: IO[str] = sys.stdout if path == STDOUT else path.open("w", encoding="utf-8")
        except OSError as exc:
            raise DepthError(f"{path}: cannot write the report: {exc.strerror or exc}") from exc
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.write({"run": {"id": self.run_id, "started": started, **run}})

    @property
    def to_stdout(self) -> bool:
        return self.path == STDOUT

    def write(self, line: dict) -> None:
        try:
            self._stream.write(json.dumps(line) + "\n")
            self._stream.flush()
        except OSError as exc:
            raise DepthError(f"{self.path}: cannot write the report: {exc.strerror or exc}") from exc

    def close(self) -> None:
        if self.to_stdout:
            return
        try:
            self._stream.close()
        except OSError as exc:
            raise DepthError(f"{self.path}: cannot write the report: {exc.strerror or exc}") from exc


def described(options: Options) -> dict:
    """The run's options as JSON values."""
    values = dataclasses.asdict(options)
    values["attach"] = dict(options.attach)
    return {key: str(value) if isinstance(value, Path) else value for key, value in values.items()}


class Progress:
    """The run's progress on ``stream``: a tqdm bar (%, count, rate, elapsed and ETA, failures so far, backend)
    on a terminal; else one timestamped line every ``interval`` seconds; nothing when ``enabled`` is False.
    :meth:`write` prints a line of its own (an item's error) without breaking the bar."""

    def __init__(
        self,
        total: int,
        backend: str,
        enabled: bool = True,
        interval: float = 30.0,
        stream: IO[str] | None = None,
    ) -> None:
        self.total, self.backend, self.stream = total, backend, stream or sys.stderr
        self.done = self.failed = 0
        self.start = time.perf_counter()
        self._lock = threading.Lock()
        self._bar = self._ticker = None
        self._stopped = threading.Event()
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            sized = _columns(self.stream) > 0  # a terminal that knows its width; else tqdm's default
            self._bar = tqdm(total=total, unit="item", file=self.stream, dynamic_ncols=sized, smoothing=0.1)
            self._bar.set_postfix_str(self._postfix(), refresh=False)
        elif enabled:
            self._ticker = threading.Thread(target=self._tick, args=(interval,), name="gpu-depth-progress", daemon=True)
            self._ticker.start()

    def advance(self, status: str, backend: str | None = None) -> None:
        """One more item done; ``backend``: the one that converted it (a Ray run learns it from its items)."""
        self.done += 1
        self.failed += status == "failed"
        self.backend = backend or self.backend
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(), refresh=False)
            self._bar.update()

    def write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
            return
        with self._lock:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._ticker is not None:
            self._stopped.set()
            self._ticker.join()
            self.write(self.line())

    def line(self) -> str:
        """``2026-01-01T10:00:00Z 40/200 items (20%), 3 failed, 12.5 items/s, elapsed 3s, ETA 13s, backend numpy``."""
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = f"{(self.total - self.done) / rate:.0f}s" if rate else "unknown"
        percent = 100 * self.done / self.total if self.total else 100.0
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f"{stamp} gpu-depth: {self.done}/{self.total} items ({percent:.0f}%), {self.failed} failed, "
            f"{rate:.1f} items/s, elapsed {elapsed:.0f}s, ETA {eta}, backend {self.backend}{_gpu_memory()}"
        )

    def _tick(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            self.write(self.line())

    def _postfix(self) -> str:
        return f"{self.failed} failed, backend {self.backend}{_gpu_memory()}"


def _columns(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 0


def _gpu_memory() -> str:
    """``, GPU 1.2/80 GiB`` when CuPy sees a device, else nothing."""
    if "cupy" not in sys.modules:
        return ""
    import cupy

    try:
        free, total = cupy.cuda.runtime.memGetInfo()
    except cupy.cuda.runtime.CUDARuntimeError:  # CuPy imported (to look for a device) but none answers
        return ""
    return f", GPU {(total - free) / 2**30:.1f}/{total / 2**30:.0f} GiB"
