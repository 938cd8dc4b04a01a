"""The streaming conversion pipeline behind ``gpu-depth convert``.

decode (threads) → batched conversion (the chosen backend, in this process) → attach + atomic
write (worker processes) → one JSON line per item.  Queues are bounded at every stage, so memory
stays flat whatever the dataset size, and the conversion of one batch overlaps the encoders.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import containers
from .api import in_container, read_depth, read_file
from .atomic import temp_path, write_atomic
from .backends import select_backend
from .convert import convert
from .depthdata import DepthData
from .errors import DepthError
from .geometry import depth_size, displayed_size, to_stored
from .jobs import Job
from .loaders import load_depth_map
from .mapping import DepthMapping


@dataclass(frozen=True)
class Options:
    """Everything ``gpu-depth convert`` can be told, with its defaults."""

    out: Path
    container: str = "same"  # heic, jpeg, dng or same (the photo's own)
    pixel_format: str = "hdis"
    preset: str = "apple-gray"
    near: float | None = None
    far: float | None = None
    depth_size: tuple[int, int] | None = None  # None keeps the map's own size
    stretch: bool = False
    backend: str = "auto"
    batch_size: int = 16
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    resume: bool = False
    quality: int = 90
    encoder_preset: str = "medium"
    gdepth: bool = False  # JPEG outputs also carry Google's GDepth
    jpeg_depth: str = "lossless"  # how JPEG outputs code the map: lossless (16-bit) or baseline (8-bit)
    encoder_threads: int | None = None  # x265 threads per worker; None: the cores shared out among workers


@dataclass
class Item:
    """One job on its way through the stages; :meth:`report` is its line in the report."""

    job: Job
    output: Path
    status: str | None = None  # ok, failed or skipped once decided
    error: str | None = None
    details: dict = field(default_factory=dict)  # timings, value range, format
    gray: np.ndarray | None = None
    size: tuple[int, int] | None = None
    depth: DepthData | None = None

    def fail(self, error: Exception) -> Item:
        self.status, self.error = "failed", str(error)
        self.gray = self.depth = None
        return self

    def report(self) -> dict:
        line = {
            "photo": str(self.job.photo),
            "depth": str(self.job.depth),
            "output": str(self.output),
            "status": self.status,
            **self.details,
        }
        return {**line, "error": self.error} if self.error else line


def output_path(job: Job, options: Options) -> Path:
    """``OUT/NAME.ext``: only the photo's stem is used, so nothing lands outside ``--out``."""
    if options.container == "same":
        module = containers.plugin(job.photo.suffix.lstrip(".") or "?")
    else:
        module = containers.plugin(options.container)
    return options.out / f"{job.name}{module.EXTENSIONS[0]}"


def run(jobs: list[Job], options: Options, on_result: Callable[[dict], None]) -> dict:
    """Convert every job; call ``on_result`` with each report line; return the summary."""
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
        ProcessPoolExecutor(
            options.workers, mp_context=spawn, initializer=_start_worker, initargs=(_encoder_threads(options),)
        ) as encoders,
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


def summary(counts: dict[str, int], interrupted: bool, backend: str, elapsed: float) -> dict:
    """The run's last report line: counts by status, whether it was interrupted, backend, speed."""
    done = counts["ok"] + counts["failed"]
    return {
        **counts,
        "interrupted": interrupted,
        "backend": backend,
        "seconds": round(elapsed, 3),
        "items_per_second": round(done / elapsed, 3) if elapsed else 0.0,
    }


def plan(jobs: list[Job], options: Options, finish: Callable[[Item], None]) -> Iterator[Item]:
    """Items to do; duplicates and (with resume) valid existing outputs are reported, not done."""
    seen: dict[Path, Job] = {}
    for job in jobs:
        item = Item(job, Path())
        try:
            item.output = output_path(job, options)
        except DepthError as exc:
            finish(item.fail(exc))
            continue
        temp_path(item.output).unlink(missing_ok=True)  # left by a killed run
        if item.output in seen:
            finish(item.fail(DepthError(f"output {item.output.name} is also that of {seen[item.output].photo}")))
        elif options.resume and _valid_output(item.output):
            seen[item.output] = job
            item.status = "skipped"
            finish(item)
        else:
            seen[item.output] = job
            yield item


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


def decode(item: Item, options: Options) -> Item:
    """Load the item's depth map and choose its stored size from the photo's header."""
    started = time.perf_counter()
    try:
        if item.job.photo.resolve() == item.output.resolve():
            raise DepthError(f"{item.output}: the output would overwrite the input photo")
        item.gray = load_depth_map(item.job.depth)
        photo_size = _photo_size(item.job.photo)
        shape = (item.gray.shape[1], item.gray.shape[0])
        item.size = depth_size(shape, photo_size, options.depth_size, options.stretch)
    except DepthError as exc:
        return item.fail(exc)
    item.details["decode_s"] = round(time.perf_counter() - started, 4)
    return item


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


def convert_batch(batch: list[Item], options: Options, backend: str) -> list[Item]:
    """Convert the batch's maps in as few backend calls as their mappings allow."""
    groups: dict[tuple, list[Item]] = {}
    for item in batch:
        if item.status:
            continue
        try:
            key = (_mapping(item.job, options), item.job.pixel_format or options.pixel_format)
        except DepthError as exc:
            item.fail(exc)
            continue
        groups.setdefault(key, []).append(item)
    for (mapping, fmt), members in groups.items():
        started = time.perf_counter()
        try:
            depths = convert([m.gray for m in members], fmt, mapping, size=[m.size for m in members], backend=backend)
        except DepthError:  # find the culprit: convert one by one
            depths = [_convert_one(m, fmt, mapping, backend) for m in members]
        share = round((time.perf_counter() - started) / len(members), 5)
        for member, depth in zip(members, depths, strict=True):
            member.gray = None
            if depth is not None:
                member.depth = depth
                member.details["convert_s"] = share
    return batch


def _convert_one(item: Item, fmt: str, mapping: DepthMapping, backend: str) -> DepthData | None:
    try:
        return convert(item.gray, fmt, mapping, size=item.size, backend=backend)
    except DepthError as exc:
        item.fail(exc)
        return None


def encode(item: Item, options: Options) -> Item:
    """Attach the converted depth to the photo and write it atomically (runs in a worker process)."""
    started = time.perf_counter()
    try:
        photo = read_file(item.job.photo)
        target = containers.plugin(options.container) if options.container != "same" else containers.sniff(photo)
        if target is None:
            raise DepthError(f"{item.job.photo}: not a HEIC, JPEG or DNG photo; choose --container")
        photo = in_container(photo, item.job.photo, target, options.quality, options.encoder_preset)
        depth = _stored_orientation(item.depth, target.orientation(photo))
        extra = {"gdepth": options.gdepth, "coding": options.jpeg_depth} if target.NAME == "jpeg" else {}
        result = target.attach_depth(photo, depth, **extra)
        write_atomic(item.output, result, protect=(item.job.photo, item.job.depth))
    except DepthError as exc:
        return item.fail(exc)
    values = depth.array
    finite = values[np.isfinite(values)]
    item.status, item.depth = "ok", None
    item.details.update(
        pixel_format=str(depth.pixel_format),
        width=depth.width,
        height=depth.height,
        min=float(finite.min()),
        max=float(finite.max()),
        attach_s=round(time.perf_counter() - started, 4),
    )
    return item


def _stored_orientation(depth: DepthData, orientation: int) -> DepthData:
    if orientation == 1:
        return depth
    return DepthData.from_array(to_stored(depth.array, orientation), depth.pixel_format, metadata=depth.metadata)


def _mapping(job: Job, options: Options) -> DepthMapping:
    near = job.near if job.near is not None else options.near
    far = job.far if job.far is not None else options.far
    return DepthMapping(options.preset, near, far)


def _photo_size(path: Path) -> tuple[int, int]:
    """The photo's displayed (width, height): from its container, or Pillow for PNG and plain TIFF photos."""
    data = read_file(path)
    module = containers.sniff(data)
    try:
        return module.displayed_size(data) if module is not None else _pillow_size(data)
    except DepthError as exc:
        if module is None or module.NAME != "dng":  # plain TIFFs sniff as DNG; Pillow reads them
            raise DepthError(f"{path}: cannot read the photo's size: {exc}") from None
    return _pillow_size(data, path)


def _pillow_size(data: bytes, path: Path | None = None) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            orientation = image.getexif().get(0x0112, 1)
            return displayed_size(image.width, image.height, orientation if orientation in range(1, 9) else 1)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise DepthError(f"{path or 'photo'}: cannot read the photo's size: {exc}") from None


def _valid_output(path: Path) -> bool:
    try:
        return path.is_file() and read_depth(path) is not None
    except DepthError:
        return False


def _drain(pending: set[Future], finish: Callable[[Item], None], until: str | None) -> set[Future]:
    done, rest = wait(pending, return_when=until) if until else (pending, set())
    for future in done:
        finish(future.result())
    return set(rest)


class StopFlag:
    """Set by SIGTERM/SIGINT (main thread only): no new item starts; items in flight finish."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signalled = False
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._set) for number in self.SIGNALS}

    def _set(self, number: int, frame: object) -> None:
        self.signalled = True

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def _encoder_threads(options: Options) -> int:
    return options.encoder_threads or max(1, (os.cpu_count() or 1) // options.workers)


def _start_worker(encoder_threads: int) -> None:
    """Workers leave SIGINT/SIGTERM to the parent, which lets them finish their item, and share out
    the cores: each HEVC encode runs ``encoder_threads`` threads."""
    from .containers import heif

    heif.ENCODER_THREADS = encoder_threads
    for number in StopFlag.SIGNALS:
        signal.signal(number, signal.SIG_IGN)
