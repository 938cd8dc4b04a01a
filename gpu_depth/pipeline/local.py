"""The local runner of the pipeline: decode threads → batched conversion in this process (which also stores each
map as its container does: hole fill, turn, quantisation on the backend) → attach of the stored map + write in
worker processes → fsync + rename by threads of this process → one report line per item.  Queues are bounded
at every stage, so memory stays flat whatever the dataset size, and the conversion of one batch overlaps the
encoders, whose outputs become durable while they attach the next.  With the NumPy backend and several workers,
each worker does every stage of its items instead (:func:`~.stages.every_stage`): there is no device to batch
for, and one process converting for all of them was their limit.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

from ..backends import select_backend
from ..errors import DepthError
from .jobs import Job
from .options import Options
from .signals import StopFlag
from .stages import Item, committed, convert_batch, decode, encode, every_stage, plan, summary

#: Linux's prctl option that signals a process when its parent dies.
PR_SET_PDEATHSIG = 1
#: glibc's mallopt parameters (malloc.h) and the values workers set: blocks up to 32 MiB (glibc's largest
#: threshold on 64-bit) come from the heap, and up to 256 MiB of free memory at its top stays mapped.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD, TRIM_THRESHOLD = 32 << 20, 256 << 20


def run(
    jobs: list[Job],
    options: Options,
    on_result: Callable[[dict], None],
    on_signal: Callable[[int], None] | None = None,
) -> dict:
    """Convert every job; call ``on_result`` with each report line; return the summary.

    Any failure of one item is that item's line; a fault of the run itself (the output folder gone, the
    report unwritable) raises DepthError.  SIGINT/SIGTERM (``on_signal`` is told at once) let the items in
    flight finish; a second SIGINT kills the workers and raises KeyboardInterrupt.
    """
    options = _sharing_cores(options)
    options.out.mkdir(parents=True, exist_ok=True)
    backend = select_backend(options.backend)
    stop = StopFlag(on_signal)
    counts = {"ok": 0, "failed": 0, "skipped": 0}
    start = time.perf_counter()

    def finish(item: Item) -> None:
        counts[item.status] += 1
        on_result(item.report())

    # NumPy has no device to batch for: each of several workers does every stage of its items (a driver converting
    # for all of them held them back); a single worker leaves the driver's core to convert beside it
    whole = backend.name == "numpy" and options.workers > 1
    encoders = _Encoders(options.workers, every_stage if whole else encode)
    items = plan(jobs, options, finish)
    try:
        if whole:
            for item in items:
                if stop.signalled:  # not started: the next --resume does them
                    break
                encoders.submit(item, options, finish)
                _check_out(options)
        else:
            _convert_here(items, encoders, options, backend.name, stop, finish)
        encoders.drain(finish)
    except KeyboardInterrupt:
        encoders.kill()
        raise
    finally:
        encoders.shutdown()
        stop.restore()
    return summary(counts, stop.signalled is not None, backend.name, time.perf_counter() - start)


class _Encoders:
    """The worker processes that attach and write, at most ``IN_FLIGHT`` items each in flight.  A worker that dies
    (killed by the system, say) fails the items it and its pool had in flight, and a fresh pool goes on.

    Each output a worker wrote is fsynced and renamed into place by a thread of this process (the fsync is
    I/O wait: 10-40 ms for a 5 MB HEIC), while the worker attaches its next item; the item is reported
    once its output is durable under its name."""

    #: Items in flight per worker: one it attaches, one queued for it, one whose output is being committed.
    IN_FLIGHT = 3

    def __init__(self, workers: int, stage: Callable[..., Item]) -> None:
        self.workers = workers
        self.stage = stage
        self.pending: dict[Future, Item] = {}
        self.commits: dict[Future, Item] = {}
        self.committers = ThreadPoolExecutor(workers, thread_name_prefix="gpu-depth-commit")
        self.pool = self._pool()

    def _pool(self) -> ProcessPoolExecutor:
        spawn = multiprocessing.get_context("spawn")  # no fork of a process with threads or a CUDA context
        return ProcessPoolExecutor(self.workers, mp_context=spawn, initializer=_start_worker, initargs=(os.getpid(),))

    def submit(self, item: Item, options: Options, finish: Callable[[Item], None]) -> None:
        while len(self.pending) + len(self.commits) >= self.IN_FLIGHT * self.workers:
            self._collect(finish, FIRST_COMPLETED)
        try:
            future = self.pool.submit(self.stage, item, options, commit=False)
        except BrokenProcessPool:
            self._collect(finish, None)
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._pool()
            future = self.pool.submit(self.stage, item, options, commit=False)
        self.pending[future] = item

    def drain(self, finish: Callable[[Item], None]) -> None:
        while self.pending or self.commits:
            self._collect(finish, None)

    def _collect(self, finish: Callable[[Item], None], until: str | None) -> None:
        """Finish the items done (waiting for one, or for all in flight when ``until`` is None); a written one
        is committed first."""
        futures = [*self.pending, *self.commits]
        for future in wait(futures, return_when=until).done if until else futures:
            if future in self.commits:
                self.commits.pop(future)
                finish(future.result())  # committed() fails the item rather than raise
                continue
            item = self.pending.pop(future)
            try:
                item = future.result()
            except BrokenProcessPool:
                item.fail(DepthError("the worker process writing it died (out of memory?)"))
            except Exception as exc:  # the item could not be sent to a worker or back
                item.fail(exc)
            if item.temp is None:
                finish(item)
            else:
                self.commits[self.committers.submit(committed, item)] = item

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.committers.shutdown(wait=True, cancel_futures=True)

    def kill(self) -> None:
        """Stop now: the workers are killed mid-item (their temporary files are removed by the next run)."""
        processes = getattr(self.pool, "_processes", None) or {}
        for process in list(processes.values()):
            process.kill()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.committers.shutdown(wait=False, cancel_futures=True)


def _convert_here(
    items: Iterator[Item],
    encoders: _Encoders,
    options: Options,
    backend: str,
    stop: StopFlag,
    finish: Callable[[Item], None],
) -> None:
    """Decode on threads, convert and store in batches in this process, hand the stored maps to the encoders."""
    decoders = ThreadPoolExecutor(max(2, options.workers), thread_name_prefix="gpu-depth-decode")
    try:
        for batch in _batches(_decoded(items, decoders, options, stop), options):
            if stop.signalled:  # decoded ahead but not started: the next --resume does them
                break
            for item in convert_batch(batch, options, backend):
                if item.status:
                    finish(item)
                elif not stop.signalled:
                    encoders.submit(item, options, finish)
            _check_out(options)
    finally:
        decoders.shutdown(cancel_futures=True)


def _check_out(options: Options) -> None:
    if not options.out.is_dir():
        raise DepthError(f"{options.out}: the output folder has gone; stopping the run")


def _decoded(items: Iterator[Item], pool: ThreadPoolExecutor, options: Options, stop: StopFlag) -> Iterator[Item]:
    """Decode depth maps ahead on threads, at most two batches in flight, in input order."""
    ahead: deque[Future] = deque()
    for item in items:
        if stop.signalled:
            return
        ahead.append(pool.submit(decode, item, options))
        if len(ahead) >= 2 * options.batch_size:
            yield ahead.popleft().result()
    while ahead and not stop.signalled:
        yield ahead.popleft().result()


def _batches(items: Iterator[Item], options: Options) -> Iterator[list[Item]]:
    """Runs of up to ``batch_size`` decoded items (failed ones included; conversion skips them)."""
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) >= options.batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _sharing_cores(options: Options) -> Options:
    """``options`` with the cores shared out among the workers: each HEVC encode runs that many threads."""
    threads = options.encoder_threads or max(1, (os.cpu_count() or 1) // options.workers)
    return replace(options, encoder_threads=threads)


def _start_worker(driver: int) -> None:
    """Workers die with their driver (Linux), hold none of its pipes (stdin, stdout, stderr: /dev/null),
    leave SIGINT/SIGTERM to it, which lets them finish their item, and keep the memory they free."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != driver:  # the driver died before the line above
            os._exit(1)
    keep_freed_memory()
    null = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(null, descriptor)
    os.close(null)
    for number in StopFlag.SIGNALS:
        signal.signal(number, signal.SIG_IGN)


def keep_freed_memory() -> None:
    """Let this worker process reuse the memory its items free, which glibc would hand back to the system:
    each item's photo, output, map and x265 buffers (tens of MB) were mapped and faulted in afresh item after
    item, ~5 ms of kernel time an item, most of a worker's system time.  Peak memory is unchanged.  A no-op
    where the C library has no ``mallopt`` (glibc's)."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None) if sys.platform == "linux" else None
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
