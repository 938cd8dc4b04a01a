"""The local runner of the pipeline: decode threads → batched conversion in this process → attach + atomic
write in worker processes → one report line per item.  Queues are bounded at every stage, so memory
stays flat whatever the dataset size, and the conversion of one batch overlaps the encoders.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import replace

from ..backends import select_backend
from .jobs import Job
from .options import Options
from .signals import StopFlag
from .stages import Item, convert_batch, decode, encode, plan, summary


def run(jobs: list[Job], options: Options, on_result: Callable[[dict], None]) -> dict:
    """Convert every job; call ``on_result`` with each report line; return the summary."""
    options = _sharing_cores(options)
    options.out.mkdir(parents=True, exist_ok=True)
    backend = select_backend(options.backend)
    stop = StopFlag()
    counts = {"ok": 0, "failed": 0, "skipped": 0}
    start = time.perf_counter()

    def finish(item: Item) -> None:
        counts[item.status] += 1
        on_result(item.report())

    spawn = multiprocessing.get_context("spawn")  # no fork of a process with threads or a CUDA context
    with (
        ThreadPoolExecutor(max(2, options.workers), thread_name_prefix="gpu-depth-decode") as decoders,
        ProcessPoolExecutor(options.workers, mp_context=spawn, initializer=_start_worker) as encoders,
    ):
        pending: set[Future] = set()
        for batch in _batches(_decoded(plan(jobs, options, finish), decoders, options, stop), options):
            for item in convert_batch(batch, options, backend.name):
                if item.status:
                    finish(item)
                    continue
                while len(pending) >= 2 * options.workers:
                    pending = _drain(pending, finish, FIRST_COMPLETED)
                pending.add(encoders.submit(encode, item, options))
            if stop.signalled:
                break
        _drain(pending, finish, None)
    stop.restore()
    return summary(counts, stop.signalled, backend.name, time.perf_counter() - start)


def _decoded(items: Iterator[Item], pool: ThreadPoolExecutor, options: Options, stop: StopFlag) -> Iterator[Item]:
    """Decode depth maps ahead on threads, at most two batches in flight, in input order."""
    ahead: deque[Future] = deque()
    for item in items:
        if stop.signalled:
            break
        ahead.append(pool.submit(decode, item, options))
        if len(ahead) >= 2 * options.batch_size:
            yield ahead.popleft().result()
    while ahead:
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


def _drain(pending: set[Future], finish: Callable[[Item], None], until: str | None) -> set[Future]:
    done, rest = wait(pending, return_when=until) if until else (pending, set())
    for future in done:
        finish(future.result())
    return set(rest)


def _sharing_cores(options: Options) -> Options:
    """``options`` with the cores shared out among the workers: each HEVC encode runs that many threads."""
    threads = options.encoder_threads or max(1, (os.cpu_count() or 1) // options.workers)
    return replace(options, encoder_threads=threads)


def _start_worker() -> None:
    """Workers leave SIGINT/SIGTERM to the parent, which lets them finish their item."""
    for number in StopFlag.SIGNALS:
        signal.signal(number, signal.SIG_IGN)
