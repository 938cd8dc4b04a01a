"""The pipeline's stages, shared by every runner: plan (outputs, resume), decode (depth map and the
photo's size and orientation), convert (batched, on the backend: the conversion, then the hole fill, the turn
to the photo's stored orientation and the quantisation to what its container stores), encode (attach the
stored map + atomic write, or write then commit), and the summary."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import containers
from ..api import attach
from ..backends import select_backend
from ..convert import convert
from ..core.depthdata import DepthData
from ..core.holes import fill_depth
from ..core.mapping import DepthMapping
from ..core.metadata import CameraCalibration
from ..core.orientation import depth_size, displayed_size, to_stored
from ..core.quantize import Storage, StoredDepth
from ..datasets import check_path
from ..depthmaps import load_depth_file
from ..errors import DepthError, ExistingDepth
from ..fileio import commit as commit_temp
from ..fileio import read_file, read_ranges, remove_stale_temps, write_atomic, write_temp
from ..verify import has_errors, verify_bytes
from .jobs import Job, shard_of
from .mattes import matte_arguments
from .options import Options


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
    map_size: tuple[int, int] | None = None  # (width, height) of the depth map as loaded
    intrinsics: tuple[float, float, float, float] | None = None  # fx, fy, cx, cy the depth file gives
    turn: int = 1  # the photo's Exif orientation, as its head says
    container: str | None = None  # the photo's container, as its head says (None: none of ours)
    depth: DepthData | None = None  # the converted float map (displayed orientation), until it is stored
    stored: StoredDepth | None = None  # what the output's container stores of it, made by the conversion stage
    map_details: dict = field(default_factory=dict)  # the report's fields of the map, reported once ok
    temp: Path | None = None  # its output written there by encode(commit=False), not yet durable nor named
    photo: Photo | None = None  # read whole by decode(whole=True), for encode in the same process

    def fail(self, error: Exception) -> Item:
        """Mark the item failed by ``error``: a DepthError's line, or any other exception's type and message."""
        text = str(error) if isinstance(error, DepthError) else f"unexpected {type(error).__name__}: {error}"
        self.status, self.error = "failed", " ".join(text.split()) or type(error).__name__
        self.gray = self.depth = self.stored = self.photo = None
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


@dataclass(frozen=True)
class Photo:
    """A photo's bytes and their parse by its container (None: none of ours, or it does not parse), read and
    parsed once where one process does every stage of its item."""

    data: bytes
    parsed: object | None


def output_path(job: Job, options: Options) -> Path:
    """``OUT/FOLDER/NAME.ext``: only the photo's stem and its folder relative to ``--photos`` are used, so
    nothing lands outside ``--out``."""
    if options.container == "same":
        module = containers.plugin(job.photo.suffix.lstrip(".") or "?")
    else:
        module = containers.plugin(options.container)
    return options.out / job.folder / f"{job.name}{module.EXTENSIONS[0]}"


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


def in_shard(job: Job, options: Options) -> bool:
    """Whether ``job`` is in the run's shard, chosen by its output's path under ``--out`` (by the photo's name
    if it has none)."""
    if options.shard is None:
        return True
    try:
        name = output_path(job, options).relative_to(options.out).as_posix()
    except DepthError:
        name = job.photo.name
    return shard_of(name, options.shard[1]) == options.shard[0]


def plan(jobs: list[Job], options: Options, finish: Callable[[Item], None]) -> Iterator[Item]:
    """The items of the run's shard to do, in order.  An item whose output is also that of an earlier item
    (paths compared case-folded) or is one of any job's inputs fails before anything is written; so does one
    whose output exists, unless ``overwrite``, or ``resume``, which skips the items whose output holds depth.
    Temporary files that killed runs (of any shard, on this host) left in the output folders are removed;
    those of live writers are left."""
    inputs = _identities(jobs)
    folders: set[Path] = set()
    seen: dict[str, Job] = {}
    for job in jobs:
        if not in_shard(job, options):
            continue
        item = Item(job, Path())
        try:
            item.output = output_path(job, options)
            if item.output.parent not in folders:
                folders.add(item.output.parent)
                remove_stale_temps(item.output.parent)
            key = item.output.relative_to(options.out).as_posix().casefold()
            if key in seen:
                raise DepthError(f"output {item.output.relative_to(options.out)} is also that of {seen[key].photo}")
            seen[key] = job
            if (source := inputs.get(_identity(item.output))) is not None:
                raise DepthError(f"output {item.output} is the input {source}: choose another --out")
            if _exists(item.output):
                if options.resume and has_depth(item.output):
                    item.status = "skipped"
                    finish(item)
                    continue
                if not (options.overwrite or options.resume):
                    raise DepthError(f"output {item.output} exists: pass --overwrite to replace it, or --resume")
        except Exception as exc:  # any failure of one item is that item's
            finish(item.fail(exc))
            continue
        yield item


def decode(item: Item, options: Options, whole: bool = False) -> Item:
    """Load the item's depth map and choose its stored size from the photo's header (which gives its
    orientation and container too).  ``whole``: the photo is read and parsed whole, once, and kept in
    ``item.photo`` for :func:`encode` in this process."""
    started = time.perf_counter()
    try:
        item.gray, item.intrinsics = load_depth_file(item.job.depth)
        if whole:
            data = read_file(item.job.photo)
            module = containers.sniff(data)
            photo_size, item.turn, parsed = _size_and_turn(item.job.photo, module, data)
            item.photo = Photo(data, parsed)
        else:
            photo_size, item.turn, module = _photo_head(item.job.photo)
        item.container = module.NAME if module is not None else None
        shape = item.map_size = (item.gray.shape[1], item.gray.shape[0])
        try:
            item.size = depth_size(shape, photo_size, options.depth_size, options.stretch)
        except DepthError as exc:
            raise DepthError(f"{exc}; use --fit stretch to stretch it" if "aspect" in str(exc) else str(exc)) from exc
        if item.size[0] * item.size[1] > photo_size[0] * photo_size[1]:
            item.details["warning"] = (
                f"the stored map {item.size[0]}x{item.size[1]} is larger than the photo "
                f"{photo_size[0]}x{photo_size[1]} (--depth-size 768 keeps it within the photo)"
            )
    except Exception as exc:
        return item.fail(exc)
    item.details["decode_s"] = round(time.perf_counter() - started, 4)
    return item


def convert_batch(batch: list[Item], options: Options, backend: str) -> list[Item]:
    """The conversion stage: :func:`convert_maps`, then :func:`store_maps` (both on the backend)."""
    return store_maps(convert_maps(batch, options, backend), options, backend)


def convert_maps(batch: list[Item], options: Options, backend: str) -> list[Item]:
    """Convert the batch's maps in one backend call per pixel format, each map with its own mapping."""
    groups: dict[str, list[tuple[Item, DepthMapping]]] = {}
    for item in batch:
        if item.status:
            continue
        try:
            mapping = _mapping(item.job, options)
            check_path(item.job.depth, mapping)
        except Exception as exc:
            item.fail(exc)
            continue
        groups.setdefault(item.job.pixel_format or options.pixel_format, []).append((item, mapping))
    for fmt, members in groups.items():
        started = time.perf_counter()
        items, mappings = [m[0] for m in members], [m[1] for m in members]
        try:
            depths = convert([m.gray for m in items], fmt, mappings, size=[m.size for m in items], backend=backend)
        except Exception:  # find the culprit: convert one by one
            depths = [_convert_one(item, fmt, mapping, backend) for item, mapping in members]
        share = round((time.perf_counter() - started) / len(members), 5)
        for (member, mapping), depth in zip(members, depths, strict=True):
            member.gray = None
            if depth is not None:
                intrinsics = member.job.intrinsics or options.intrinsics or member.intrinsics
                member.depth = _with_intrinsics(depth, intrinsics, member.map_size)
                member.details.update(mapping=mapping.describe(), backend=backend, convert_s=share)
    return batch


def store_maps(batch: list[Item], options: Options, backend: str) -> list[Item]:
    """Store each converted map as its output's container stores it, so that the workers only encode and mux:
    its holes filled (``--holes fill``), the report's range of its values taken, the map turned to the
    photo's stored orientation, then quantised (``backend.quantize``: on the GPU with CuPy) in one call per
    storage (:class:`~gpu_depth.core.quantize.Storage`: container and stored format) or coded as a DNG codes
    it.  The time is added to the items' ``convert_s``.  An item whose photo is in none of our containers
    (and no ``--container``) is left unstored: its worker names that fault."""
    groups: dict[Storage, list[Item]] = {}
    for item in batch:
        if item.status or item.depth is None:
            continue
        started = time.perf_counter()
        try:
            storage = _prepared(item, options)
        except Exception as exc:
            item.fail(exc)
            continue
        _add_time(item, time.perf_counter() - started)
        if storage is not None:
            groups.setdefault(storage, []).append(item)
    engine = select_backend(backend) if groups else None
    for storage, members in groups.items():
        started = time.perf_counter()
        try:
            maps = storage.store([m.depth for m in members], engine)
        except Exception:  # find the culprit: store one by one
            maps = [_store_one(member, storage, engine) for member in members]
        share = (time.perf_counter() - started) / len(members)
        for member, stored in zip(members, maps, strict=True):
            if stored is not None:
                depth = member.depth
                float_map = depth if storage.float_map else None
                member.stored = StoredDepth(stored, storage, depth.pixel_format, member.turn, float_map)
                member.depth = None
                _add_time(member, share)
    return batch


def _prepared(item: Item, options: Options) -> Storage | None:
    """Fill the item's holes if asked, note the report's fields of its map, turn it to the photo's stored
    orientation; the storage of its output's container (None: no container known)."""
    depth = item.depth
    values = _reducible(depth.array)
    invalid, filled = int(np.isnan(values).sum()), 0
    if options.holes == "fill" and invalid:
        depth, filled = fill_depth(depth)
        values = _reducible(depth.array)
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    item.map_details = {
        "pixel_format": str(depth.pixel_format),
        "width": depth.width,
        "height": depth.height,
        "min": low,
        "max": high,
        "depth_m": _metres(depth.pixel_format.is_disparity, low, high),
        "invalid_pixels": invalid,
        "filled_pixels": filled,
        "accuracy": depth.metadata.accuracy,
        "filtered": depth.metadata.filtered,
    }
    name = options.container if options.container != "same" else item.container
    if name is None:
        item.depth = depth
        return None
    target = containers.plugin(name)
    if item.turn != 1:
        depth = DepthData.from_array(to_stored(depth.array, item.turn), depth.pixel_format, metadata=depth.metadata)
    item.depth = depth
    return target.storage(**{k: v for k, v in options.attach.items() if k in target.ATTACH_OPTIONS})


def _store_one(item: Item, storage: Storage, engine) -> object:
    try:
        return storage.store([item.depth], engine)[0]
    except Exception as exc:
        item.fail(exc)
        return None


def _add_time(item: Item, seconds: float) -> None:
    item.details["convert_s"] = round(item.details.get("convert_s", 0.0) + seconds, 5)


def _with_intrinsics(depth: DepthData, intrinsics: tuple | None, map_size: tuple[int, int]) -> DepthData:
    """``depth`` carrying the camera's fx, fy, cx, cy (pixels of the map as loaded, its reference dimensions)."""
    if intrinsics is None:
        return depth
    fx, fy, cx, cy = intrinsics
    calibration = CameraCalibration(((fx, 0.0, cx), (0.0, fy, cy), (0.0, 0.0, 1.0)), map_size)
    return replace(depth, metadata=replace(depth.metadata, calibration=calibration))


def _convert_one(item: Item, fmt: str, mapping: DepthMapping, backend: str) -> DepthData | None:
    try:
        return convert(item.gray, fmt, mapping, size=item.size, backend=backend)
    except Exception as exc:
        item.fail(exc)
        return None


def encode(item: Item, options: Options, commit: bool = True) -> Item:
    """Attach the stored map (the conversion stage's) to the photo and write it atomically (runs in a worker
    process: nothing here quantises).  Without ``commit`` the output is left written in ``item.temp``, for
    :func:`committed` to make durable and name while the worker goes on with its next item."""
    started = time.perf_counter()
    try:
        if item.photo is not None:
            photo, parsed = item.photo.data, item.photo.parsed
            item.photo = None  # not sent back to the driver
        else:
            photo = read_file(item.job.photo)
            parsed = _parsed(photo)
        target = containers.plugin(options.container) if options.container != "same" else containers.sniff(photo)
        if target is None:
            raise DepthError(f"{item.job.photo}: not a HEIC, JPEG or DNG photo; choose --container")
        if item.stored is None:
            raise DepthError(f"{item.job.photo}: was not a HEIC, JPEG or DNG photo when its map was stored")
        matte_options, matte_details = matte_arguments(item.job, photo, target, options, parsed)
        result = attach(
            photo,
            item.job.photo,
            item.stored,
            target,
            orientation="displayed",
            fit="stretch" if options.stretch else "error",
            quality=options.quality,
            encoder_preset=options.encoder_preset,
            encoder_threads=options.encoder_threads,
            parsed=parsed,
            **options.attach,
            **matte_options,
        )
        details = {**item.map_details, **matte_details}
        _make_folders(options.out, item.job.folder)
        if commit:
            write_atomic(item.output, result, protect=(item.job.photo, item.job.depth))
        else:
            item.temp = write_temp(item.output, result, protect=(item.job.photo, item.job.depth))
    except ExistingDepth as exc:
        return item.fail(DepthError(f"{exc}; pass --replace to replace it"))
    except Exception as exc:
        return item.fail(exc)
    item.status, item.stored = "ok", None
    item.details.update(details, attach_s=round(time.perf_counter() - started, 4))
    return item


def every_stage(item: Item, options: Options, commit: bool = True) -> Item:
    """Decode, convert and store, then encode one item, all in this process: a worker's, with the NumPy backend,
    where gathering maps into batches buys nothing and a driver converting for every worker limits them all."""
    decode(item, options, whole=True)
    if not item.status:
        convert_batch([item], options, "numpy")
    return item if item.status else encode(item, options, commit)


def _reducible(values: np.ndarray) -> np.ndarray:
    """The map's values as float64 where they are float16, the same values: NumPy emulates float16 arithmetic,
    and isnan, nanmin and nanmax of a 768x576 map took ~10 ms, ~1 ms with the copy (NumPy 2.4 casts float16 to
    float64 twice as fast as to float32: 0.5 against 1.0-1.4 ms)."""
    return values.astype(np.float64) if values.dtype == np.float16 else values


def committed(item: Item) -> Item:
    """The item whose output :func:`encode` left in ``item.temp``, fsynced and renamed to its name: ok only
    now (a failure removes the temporary file and fails the item)."""
    temp, item.temp = item.temp, None
    try:
        commit_temp(temp, item.output)
    except Exception as exc:
        return item.fail(exc)
    return item


def _parsed(photo: bytes):
    """The photo parsed once for the report's mattes and the attach; None where it does not parse, so that
    the attach names the fault as it would have."""
    source = containers.sniff(photo)
    try:
        return source.parse(photo) if source is not None else None
    except DepthError:
        return None


def _metres(disparity: bool, low: float, high: float) -> list[float | None]:
    """[nearest, farthest] depth in metres of a map's value range (None: infinitely far, disparity 0)."""
    return [1 / high, 1 / low if low > 0 else None] if disparity else [low, high]


def _mapping(job: Job, options: Options) -> DepthMapping:
    near = job.near if job.near is not None else options.near
    far = job.far if job.far is not None else options.far
    scale = job.depth_scale if job.depth_scale is not None else options.depth_scale
    rig = {"focal_px": options.focal_px, "baseline": options.baseline, "doffs": options.doffs}
    return DepthMapping(options.preset, near, far, depth_scale=scale, **rig)


def _photo_size(path: Path) -> tuple[int, int]:
    """The photo's displayed (width, height) (:func:`_photo_head`)."""
    return _photo_head(path)[0]


def _photo_head(path: Path) -> tuple[tuple[int, int], int, containers.Plugin | None]:
    """The photo's displayed (width, height), its Exif orientation and its container (None: none of ours):
    from its container (only the head of a HEIC or JPEG, which its container reads them from, parsed once),
    or Pillow for PNG and plain TIFF photos."""
    with read_ranges(path) as (read, size):
        module = containers.sniff(read(0, min(size, containers.SNIFF_BYTES)))
        if not hasattr(module, "head"):
            data = read(0, size)
        else:
            try:
                data = module.head(read, size)
            except DepthError as exc:
                raise DepthError(f"{path}: cannot read the photo's size: {exc}") from exc
    return (*_size_and_turn(path, module, data)[:2], module)


def _size_and_turn(
    path: Path, module: containers.Plugin | None, data: bytes
) -> tuple[tuple[int, int], int, object | None]:
    """The photo's displayed (width, height) and Exif orientation from ``data`` (all of it, or the head its
    container reads them from), and its parse by ``module`` (None where Pillow reads it: a PNG or plain TIFF)."""
    if module is None:
        return (*_pillow_size(data, path), None)
    try:
        parsed = module.parse(data)
        return module.displayed_size(data, parsed), module.orientation(data, parsed), parsed
    except DepthError as exc:
        if module.NAME != "dng":  # plain TIFFs sniff as DNG; Pillow reads them
            raise DepthError(f"{path}: cannot read the photo's size: {exc}") from exc
    return (*_pillow_size(data, path), None)


def _pillow_size(data: bytes, path: Path) -> tuple[tuple[int, int], int]:
    """A PNG or plain TIFF photo's displayed (width, height) and its Exif orientation."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            orientation = image.getexif().get(0x0112, 1)
            orientation = orientation if orientation in range(1, 9) else 1
            return displayed_size(image.width, image.height, orientation), orientation
    except UnidentifiedImageError:
        raise DepthError(f"{path}: not a photo in a format gpu-depth reads") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DepthError(f"{path}: cannot read the photo's size: {exc}") from exc


def has_depth(path: Path) -> bool:
    """Whether ``path`` is a whole file holding depth an Apple reader sees: its structure checked by verify's
    rules (no error, a depth map found), without decoding the map."""
    try:
        findings = verify_bytes(read_file(path))
    except DepthError:
        return False
    return not has_errors(findings) and any(finding.rule.endswith(".depth-found") for finding in findings)


def _make_folders(out: Path, folder: Path) -> None:
    """``out/folder``, made part by part below ``out``, which must exist (a run whose --out went away stops)."""
    for depth in range(1, len(folder.parts) + 1):
        (out / Path(*folder.parts[:depth])).mkdir(exist_ok=True)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path`` (links followed), or None if there is none."""
    try:
        status = path.stat()
    except (OSError, ValueError):
        return None
    return status.st_dev, status.st_ino


def _identities(jobs: list[Job]) -> dict[tuple[int, int], Path]:
    """Every input of every job (shards included), by identity."""
    found = {}
    for job in jobs:
        for path in (job.photo, job.depth):
            if (identity := _identity(path)) is not None:
                found.setdefault(identity, path)
    return found
