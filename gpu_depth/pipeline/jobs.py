"""Which photo goes with which depth map: folder pairing, manifests, and shards of a batch job."""

from __future__ import annotations

import csv
import json
import math
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..depthmaps import SUFFIXES as DEPTH_SUFFIXES
from ..errors import DepthError

PHOTO_SUFFIXES = (".heic", ".heif", ".hif", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dng", ".webp", ".ppm")

#: Environment variables of array jobs: (index variable, count variable), first match wins.
SHARD_VARIABLES = (
    ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"),
    ("AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ARRAY_SIZE"),
    ("JOB_COMPLETION_INDEX", "GPU_DEPTH_SHARD_COUNT"),
)


@dataclass(frozen=True)
class Job:
    """One photo + depth map pair, with optional per-item overrides from a manifest."""

    photo: Path
    depth: Path
    near: float | None = None
    far: float | None = None
    pixel_format: str | None = None
    depth_scale: float | None = None
    intrinsics: tuple[float, float, float, float] | None = None

    @property
    def name(self) -> str:
        """The output's stem: the photo's file stem, never a path."""
        return self.photo.stem


def pair_folders(photos: Path, depths: Path, suffix: str = "") -> tuple[list[Job], list[str]]:
    """Pair ``photos/NAME.ext`` with ``depths/NAME{suffix}.ext``; also list what found no partner."""
    photo_files = _files(photos, PHOTO_SUFFIXES)
    depth_files = _files(depths, DEPTH_SUFFIXES)
    by_stem: dict[str, list[Path]] = {}
    for path in depth_files:
        by_stem.setdefault(path.stem, []).append(path)
    jobs, unmatched, used = [], [], set()
    for photo in photo_files:
        candidates = by_stem.get(photo.stem + suffix, [])
        if len(candidates) == 1:
            jobs.append(Job(photo, candidates[0]))
            used.add(candidates[0])
        elif candidates:
            unmatched.append(f"{photo}: several depth maps match: {', '.join(map(str, candidates))}")
        else:
            unmatched.append(f"{photo}: no depth map {photo.stem}{suffix}.* in {depths}")
    unmatched += [f"{path}: no photo for this depth map in {photos}" for path in depth_files if path not in used]
    return jobs, unmatched


def read_manifest(path: Path) -> list[Job]:
    """Jobs from a CSV (header: photo,depth[,near,far,format,depth_scale,intrinsics]) or JSON Lines manifest.

    ``intrinsics``: "fx,fy,cx,cy" (a list of four numbers in JSON Lines).

    Relative paths are relative to the manifest's folder.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DepthError(f"{path}: cannot read the manifest: {exc}") from exc
    rows = _json_lines(text, path) if path.suffix.lower() in (".jsonl", ".ndjson") else _csv_rows(text, path)
    return [_job(row, path, number) for number, row in rows]


def shard(jobs: list[Job], index: int, count: int) -> list[Job]:
    """The jobs of shard ``index`` of ``count``: a stable hash of the photo's name decides, so the
    shards cover every job exactly once whatever order the jobs were listed in."""
    if count < 1 or not 0 <= index < count:
        raise DepthError(f"shard must be I/N with 0 <= I < N, got {index}/{count}")
    return [job for job in jobs if zlib.crc32(job.photo.name.encode()) % count == index]


def shard_from_environment(environ: Mapping[str, str] = os.environ) -> tuple[int, int] | None:
    """(index, count) from Slurm, AWS Batch or Kubernetes indexed-job variables, or None."""
    for index_name, count_name in SHARD_VARIABLES:
        if index_name in environ and count_name in environ:
            try:
                return int(environ[index_name]), int(environ[count_name])
            except ValueError:
                raise DepthError(f"{index_name}/{count_name} must be integers") from None
    return None


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise DepthError(f"shard must look like I/N, got {text!r}") from None
    return index, count


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        raise DepthError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith("."))


def _csv_rows(text: str, path: Path) -> list[tuple[int, dict]]:
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or not {"photo", "depth"} <= set(reader.fieldnames):
        raise DepthError(f"{path}: the CSV manifest needs a header with photo and depth columns")
    return [(number, row) for number, row in enumerate(reader, start=2)]


def _json_lines(text: str, path: Path) -> list[tuple[int, dict]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DepthError(f"{path}:{number}: not JSON: {exc.msg}") from exc
            if not isinstance(row, dict):
                raise DepthError(f"{path}:{number}: each line must be a JSON object")
            rows.append((number, row))
    return rows


def _job(row: dict, manifest: Path, number: int) -> Job:
    where = f"{manifest}:{number}"
    try:
        photo, depth = (manifest.parent / str(row[key]) for key in ("photo", "depth"))
    except KeyError as exc:
        raise DepthError(f"{where}: missing {exc.args[0]}") from exc
    try:
        near, far = (float(row[key]) if row.get(key) not in (None, "") else None for key in ("near", "far"))
    except (TypeError, ValueError):
        raise DepthError(f"{where}: near and far must be numbers") from None
    try:
        scale = float(row["depth_scale"]) if row.get("depth_scale") not in (None, "") else None
    except (TypeError, ValueError):
        raise DepthError(f"{where}: depth_scale must be a number of codes per metre") from None
    intrinsics = row.get("intrinsics")
    try:
        intrinsics = parse_intrinsics(intrinsics) if intrinsics not in (None, "") else None
    except DepthError as exc:
        raise DepthError(f"{where}: {exc}") from exc
    return Job(photo, depth, near, far, row.get("format") or None, scale, intrinsics)


def parse_intrinsics(value: object) -> tuple[float, float, float, float]:
    """``--intrinsics`` / the manifest's column: "fx,fy,cx,cy" or four numbers (pixels of the depth map)."""
    parts = value.split(",") if isinstance(value, str) else value
    try:
        numbers = tuple(float(part) for part in parts)
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers) or min(numbers[:2]) <= 0:
        raise DepthError(f"intrinsics must be fx,fy,cx,cy (pixels, fx and fy > 0), got {value!r}")
    return numbers
