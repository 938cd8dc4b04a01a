"""Files in and out: reading with a size bound, and writing so that a file appears whole or not at all,
never replacing an input."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from .errors import DepthError

#: Largest input file read (bytes); a bigger one is refused before it is read.
MAX_FILE_BYTES = 1 << 30
PathLike = str | os.PathLike

#: Suffix of the temporary files written beside each target (``.NAME.TOKEN.gpu-depth-tmp``).
TEMP_SUFFIX = ".gpu-depth-tmp"


def temp_path(target: PathLike) -> Path:
    """A fresh temporary file name beside ``target``, unique to this writer; a killed run may leave it behind."""
    target = Path(target)
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(6)}{TEMP_SUFFIX}")


def temp_target(name: str) -> str | None:
    """The name of the target whose temporary file is called ``name``, or None if it is not one."""
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return None
    target, dot, _token = name[1 : -len(TEMP_SUFFIX)].rpartition(".")
    return target if dot and target else None


def write_atomic(path: PathLike, data: bytes | memoryview, *, protect: tuple = ()) -> None:
    """Write ``data`` to a temporary file of this writer's own beside ``path``, fsync it, and rename it into
    place: readers see the old file or the whole new one, and of concurrent writers the last rename wins.

    ``protect``: input paths that must never be overwritten (checked by identity, links included).
    On any failure the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    for source in protect:
        if target.exists() and Path(source).exists() and os.path.samefile(target, source):
            raise DepthError(f"{target}: refusing to overwrite the input file {source}")
    temp = temp_path(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        handle = os.open(temp, flags, 0o644)
    except OSError as exc:
        raise DepthError(f"{target}: cannot write in {target.parent}: {exc.strerror}") from exc
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise DepthError(f"{target}: write failed: {exc.strerror or exc}") from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def read_file(path: PathLike, limit: int = MAX_FILE_BYTES) -> bytes:
    """A regular file's bytes, at most ``limit`` of them, refusing anything else with one clear line.

    Opened without blocking (a FIFO with no writer opens at once) and checked to be a regular file
    before any read, so devices (/dev/zero) and pipes are refused rather than read without end.
    """
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise DepthError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(handle, "rb") as stream:
            status = os.fstat(stream.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise DepthError(f"{path}: not a regular file")
            if status.st_size > limit:
                raise DepthError(f"{path}: file of {status.st_size} bytes exceeds the {limit}-byte limit")
            data = stream.read(status.st_size + 1)  # one byte more than its size tells whether it grew
    except OSError as exc:
        raise DepthError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > status.st_size:
        raise DepthError(f"{path}: the file grew while it was read")
    return data
