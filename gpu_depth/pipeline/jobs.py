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

from ..depthmaps import sniff
from ..errors import DepthError
from ..limits import parse_float, parse_int

#: Photos folder mode takes (any suffix works for one pair); depth maps are taken whatever their suffix, as
#: they are read by content.
PHOTO_SUFFIXES = (
    ".heic",
    ".heif",
    ".hif",
    ".jpg",
    ".jpeg",
    ".jpe",
    ".mpo",
    ".png",
    ".tif",
    ".tiff",
    ".dng",
    ".webp",
    ".ppm",
)

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
    folder: Path = Path()  # the photo's folder relative to --photos: its output goes there under --out
    matte: Path | None = None  # the manifest's matte for this photo (else --matte DIR pairs one by stem)

    @property
    def name(self) -> str:
        """The output's stem: the photo's file stem, never a path."""
        return self.photo.stem


def pair_folders(
    photos: Path, depths: Path, suffix: str = "", recursive: bool = False, skip: Path | None = None
) -> tuple[list[Job], list[str]]:
    """Pair ``photos/SUB/NAME.ext`` with ``depths/SUB/NAME{suffix}.*``; also list what found no partner.

    Any file of that stem is the depth map (maps are read by content); a file that is some photo's depth
    map is no photo itself, so both may share a folder when ``suffix`` tells them apart.  ``recursive``
    descends into subfolders (``SUB``, kept as the job's ``folder``); hidden files and folders and ``skip``
    (the output folder) are left out.
    """
    if not suffix and _same(photos, depths):
        raise DepthError("--photos and --depth are the same folder: give --depth-suffix (e.g. _depth)")
    depth_files = _files(depths, recursive, skip)
    photo_files = [p for p in _files(photos, recursive, skip) if p.suffix.lower() in PHOTO_SUFFIXES]
    by_key: dict[tuple[Path, str], list[Path]] = {}
    for path in depth_files:
        by_key.setdefault((path.parent.relative_to(depths), path.stem), []).append(path)
    found = {}
    for photo in photo_files:
        key = (photo.parent.relative_to(photos), photo.stem + suffix)
        found[photo] = _depth_maps([path for path in by_key.get(key, []) if path != photo])
    used = {path for candidates in found.values() for path in candidates}
    jobs, unmatched = [], []
    for photo, candidates in found.items():
        folder = photo.parent.relative_to(photos)
        if photo in used:
            continue
        if len(candidates) == 1:
            jobs.append(Job(photo, candidates[0], folder=folder))
        elif candidates:
            unmatched.append(f"{photo}: several depth maps match: {', '.join(map(str, candidates))}")
        else:
            unmatched.append(f"{photo}: no depth map {folder / photo.stem}{suffix}.* in {depths}")
    photo_set = set(photo_files)
    unmatched += [
        f"{path}: no photo for this depth map in {photos}"
        for path in depth_files
        if path not in used and path not in photo_set and not path.is_dir()
    ]
    return jobs, unmatched


def _depth_maps(candidates: list[Path]) -> list[Path]:
    """Of several files with a photo's depth-map name, those whose first bytes are a depth map's (by content)."""
    if len(candidates) < 2:
        return candidates
    maps = []
    for path in candidates:
        try:
            with path.open("rb") as stream:
                if sniff(stream.read(16)) is not None:
                    maps.append(path)
        except OSError:
            continue
    return maps or candidates


def searched(photos: Path, depths: Path, suffix: str, recursive: bool) -> str:
    """What :func:`pair_folders` looked for, in words, for a run that found nothing to convert."""
    where = f"{photos} and its subfolders" if recursive else str(photos)
    text = (
        f"no photo ({', '.join(PHOTO_SUFFIXES)}) in {where} has a depth map of its name + {suffix!r} in the same "
        f"place under {depths}"
    )
    if not recursive and photos.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in photos.iterdir()):
        text += f"; {photos} has subfolders: add -r to search them"
    return text


def read_manifest(path: Path) -> list[Job]:
    """Jobs from a CSV (header: photo,depth[,near,far,format,depth_scale,intrinsics,matte]) or JSON Lines manifest.

    ``intrinsics``: "fx,fy,cx,cy" (a list of four numbers in JSON Lines); ``matte``: the photo's 8-bit matte
    (of ``--matte-kind``).

    Relative paths are relative to the manifest's folder.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel starts its UTF-8 CSVs with a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise DepthError(f"{path}: cannot read the manifest: {exc}") from exc
    rows = _json_lines(text, path) if path.suffix.lower() in (".jsonl", ".ndjson") else _csv_rows(text, path)
    return [_job(row, path, number) for number, row in rows]


def shard_of(output_name: str, count: int) -> int:
    """The shard of ``count`` that writes the output ``output_name``: a stable hash of the name (case folded,
    as some file systems fold it), so outputs that could collide are always in the same shard."""
    return zlib.crc32(output_name.casefold().encode("utf-8", "surrogateescape")) % count


def shard_from_environment(environ: Mapping[str, str] = os.environ) -> tuple[int, int] | None:
    """(index, count) from Slurm, AWS Batch or Kubernetes indexed-job variables, or None.

    An index without its count is an error: every task would otherwise do every item.
    """
    for index_name, count_name in SHARD_VARIABLES:
        if index_name in environ:
            if count_name not in environ:
                raise DepthError(f"{index_name} is set but {count_name} is not: set it, or give --shard I/N")
            return _checked(parse_int(environ[index_name], index_name), parse_int(environ[count_name], count_name))
    return None


def parse_shard(text: str) -> tuple[int, int]:
    """``--shard I/N``."""
    index, slash, count = text.partition("/")
    if not slash:
        raise DepthError(f"--shard must look like I/N, got {text!r}")
    return _checked(parse_int(index, "--shard's I"), parse_int(count, "--shard's N"))


def _checked(index: int, count: int) -> tuple[int, int]:
    if count < 1 or not 0 <= index < count:
        raise DepthError(f"--shard must be I/N with 0 <= I < N, got {index}/{count}")
    return index, count


def _files(folder: Path, recursive: bool, skip: Path | None) -> list[Path]:
    """The visible entries of ``folder`` but its subfolders (all of them but ``skip``, walked, when
    ``recursive``; else they are entries too).  What is no regular file fails its item when read."""
    if not folder.is_dir():
        raise DepthError(f"{folder}: not a folder")
    skipped = _identity(skip) if skip is not None else None
    found = []
    for top, folders, names in os.walk(folder):
        visible = sorted(name for name in folders if not name.startswith("."))
        if recursive:
            folders[:] = [name for name in visible if _identity(Path(top, name)) != skipped]
        else:
            folders[:], names = [], names + visible
        found += [Path(top, name) for name in names if not name.startswith(".")]
    return sorted(found)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _same(a: Path, b: Path) -> bool:
    return _identity(a) is not None and _identity(a) == _identity(b)


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
    for key in ("photo", "depth"):
        if not isinstance(row.get(key), str) or not row[key]:
            raise DepthError(f"{where}: {'missing' if row.get(key) in (None, '') else 'not a path:'} {key}")
    photo, depth = manifest.parent / row["photo"], manifest.parent / row["depth"]
    matte = row.get("matte") or None
    if matte is not None and not isinstance(matte, str):
        raise DepthError(f"{where}: matte must be a path, got {matte!r}")
    near, far, scale = (_number(row.get(key), f"{where}: {key}") for key in ("near", "far", "depth_scale"))
    fmt = row.get("format") or None
    if fmt is not None and not isinstance(fmt, str):
        raise DepthError(f"{where}: format must be a pixel format name such as hdis, got {fmt!r}")
    intrinsics = row.get("intrinsics")
    try:
        intrinsics = parse_intrinsics(intrinsics) if intrinsics not in (None, "") else None
    except DepthError as exc:
        raise DepthError(f"{where}: {exc}") from exc
    return Job(photo, depth, near, far, fmt, scale, intrinsics, matte=manifest.parent / matte if matte else None)


def _number(value: object, what: str) -> float | None:
    """A manifest's number: a number, its text, or empty (None); ``true`` and lists are refused."""
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DepthError(f"{what} must be a number, got {value!r}")
    return parse_float(str(value), what)


def parse_intrinsics(value: object) -> tuple[float, float, float, float]:
    """``--intrinsics`` / the manifest's column: "fx,fy,cx,cy" or four numbers (pixels of the depth map)."""
    parts = value.split(",") if isinstance(value, str) else value
    try:
        numbers = tuple(parse_float(str(part).strip(), "intrinsics") for part in parts)
    except (TypeError, DepthError):
        numbers = ()
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers) or min(numbers[:2]) <= 0:
        raise DepthError(f"intrinsics must be fx,fy,cx,cy (pixels, fx and fy > 0), got {value!r}")
    return numbers
