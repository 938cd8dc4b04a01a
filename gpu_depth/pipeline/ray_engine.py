"""The conversion pipeline on a Ray cluster, built from the local pipeline's own stages.

A Ray Data stream: decode (CPU tasks) → batched conversion and storage (quantisation to what each output's
container stores) in an actor pool that holds the backend (a GPU share per actor when the cluster has GPUs, CPU
actors otherwise) → attach of the stored map + atomic write (CPU tasks) → one report line per item, on the driver.
Items travel pickled, one per row.  Every node must see the inputs and ``--out`` at the same paths (a shared
file system).
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable

import numpy as np

from ..backends import select_backend
from ..errors import DepthError
from .jobs import Job
from .local import keep_freed_memory
from .options import Options
from .signals import StopFlag
from .stages import Item, convert_batch, decode, encode, plan, summary

#: GPU share of one conversion actor: two actors per GPU overlap their transfers and kernels.
GPU_SHARE = 0.5
#: CPU share of one conversion actor without GPUs: none, as the conversion is light next to decode and
#: encode (~3 ms of CPU of a ~35 ms HEIC item).  A share unlike the decode tasks' also keeps Ray from fusing
#: decode into the few actors.
CPU_SHARE = 0


def run_ray(
    jobs: list[Job],
    options: Options,
    on_result: Callable[[dict], None],
    address: str | None = None,
    num_cpus: int | None = None,
    on_signal: Callable[[int], None] | None = None,
) -> dict:
    """Like :func:`gpu_depth.pipeline.local.run`, on the Ray cluster at ``address``.

    Without ``address`` (and no ``RAY_ADDRESS``), a local Ray with ``num_cpus`` CPUs (default: all)
    is started and stopped again; a Ray already initialised in this process is used as it is.
    On SIGINT/SIGTERM no further result is taken and the summary says ``interrupted``; items in flight
    may leave temporary files in ``--out``, which the next run removes.
    """
    try:
        import ray
    except ImportError:
        raise DepthError("--engine ray needs Ray: pip install 'gpu_depth[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        joining = address or os.environ.get("RAY_ADDRESS")
        try:  # "local": a new local Ray, even where one was started by `ray start` (join it with "auto")
            ray.init(address=joining or "local", num_cpus=None if joining else num_cpus, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
            where = f" at {joining}" if joining else ""
            raise DepthError(f"cannot start or join Ray{where}: {_first_line(exc)}") from exc
    try:
        return _run(jobs, options, on_result, on_signal)
    finally:
        if started_here:
            ray.shutdown()


def _run(
    jobs: list[Job], options: Options, on_result: Callable[[dict], None], on_signal: Callable[[int], None] | None
) -> dict:
    options.out.mkdir(parents=True, exist_ok=True)
    counts = {"ok": 0, "failed": 0, "skipped": 0}
    backends: set[str] = set()
    start = time.perf_counter()

    def finish(item: Item) -> None:
        counts[item.status] += 1
        on_result(item.report())

    stop = StopFlag(on_signal)
    try:
        rows = [{"item": _pack(item)} for item in plan(jobs, options, finish)]
        for row in _dataset(rows, options).iter_rows() if rows else ():
            backends.add(row["backend"])
            finish(_unpack(row["item"]))
            if stop.signalled:
                break
    finally:
        stop.restore()
    backend = "+".join(sorted(backends)) or options.backend
    return summary(counts, stop.signalled is not None, backend, time.perf_counter() - start)


def _dataset(rows: list[dict], options: Options):
    """The lazy Ray Data stream from packed items to packed, finished items with their backend."""
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    DataContext.get_current().enable_progress_bars = False  # the command draws its own
    share, actors = converter_resources(ray.cluster_resources(), options.backend)
    return (
        ray.data.from_items(rows)
        .map_batches(_decode_batch, batch_size=options.batch_size, fn_kwargs={"options": options})
        .map_batches(
            Converter,
            batch_size=options.batch_size,
            fn_constructor_kwargs={"options": options},
            compute=ActorPoolStrategy(min_size=1, max_size=actors),
            **share,
        )
        .map_batches(_encode_batch, batch_size=1, fn_kwargs={"options": options})
    )


def converter_resources(cluster: dict[str, float], backend: str) -> tuple[dict[str, float], int]:
    """What each conversion actor asks for, and at most how many there are, on a cluster with these resources."""
    if cluster.get("GPU", 0) and backend != "numpy":
        return {"num_gpus": GPU_SHARE}, max(1, int(cluster["GPU"] / GPU_SHARE))
    if backend == "cupy":
        raise DepthError("backend cupy needs a GPU, and the Ray cluster has none")
    return {"num_cpus": CPU_SHARE}, max(1, int(cluster.get("CPU", 1)) // 4)


def _decode_batch(batch: dict[str, np.ndarray], options: Options) -> dict[str, list]:
    return {"item": [_pack(decode(_unpack(packed), options)) for packed in batch["item"]]}


class Converter:
    """An actor of the conversion pool: picks its backend once; CuPy's compiled kernels and device
    buffers stay cached in the actor's process from one batch to the next."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.backend = select_backend(options.backend).name

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        items = convert_batch([_unpack(packed) for packed in batch["item"]], self.options, self.backend)
        return {"item": [_pack(item) for item in items], "backend": [self.backend] * len(items)}


def _encode_batch(batch: dict[str, np.ndarray], options: Options) -> dict[str, list]:
    keep_freed_memory()  # the task's worker process, as the local pipeline's workers
    items = (_unpack(packed) for packed in batch["item"])
    done = [item if item.status else encode(item, options) for item in items]
    return {"item": [_pack(item) for item in done], "backend": list(batch["backend"])}


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _pack(item: Item) -> bytes:
    return pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(packed: bytes) -> Item:
    return pickle.loads(packed)
