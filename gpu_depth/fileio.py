"""Files in and out: reading with a size bound, and writing so that a file appears whole or not at all,
never replacing an input."""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import socket
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DepthError

#: Largest input file read (bytes); a bigger one is refused before it is read.
MAX_FILE_BYTES = 1 << 30
PathLike = str | os.PathLike

#: Suffix of the temporary files written beside each target (``.NAME.PID-HOST-TOKEN.gpu-depth-tmp``).
TEMP_SUFFIX = ".gpu-depth-tmp"
#: This machine in temporary file names: the output folder may be shared by the nodes of a cluster.
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_TEMP = re.compile(
    rf"\.(?P<target>.+)\.(?P<pid>[0-9]{{1,10}})-(?P<host>[0-9a-f]{{8}})-[0-9a-f]+{re.escape(TEMP_SUFFIX)}"
)


def temp_path(target: PathLike, pid: int | None = None) -> Path:
    """A fresh temporary file name beside ``target``, unique to its writer (``pid``, default this process, on
    this host); a killed run may leave it behind, for :func:`remove_stale_temps`."""
    target = Path(target)
    pid = os.getpid() if pid is None else pid
    return target.with_name(f".{target.name}.{pid}-{HOST}-{secrets.token_hex(6)}{TEMP_SUFFIX}")


def temp_target(name: str) -> str | None:
    """The name of the target whose temporary file is called ``name``, or None if it is not one."""
    match = _TEMP.fullmatch(name)
    return match["target"] if match else None


def remove_stale_temps(folder: PathLike) -> list[Path]:
    """Remove the temporary files in ``folder`` whose writer, a process of this host, is gone (a killed
    run's, of any shard); those of live writers and of other hosts are left.  Returns the removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.fullmatch(entry.name)
        if match and match["host"] == HOST and not _alive(int(match["pid"])):
            try:
                os.unlink(entry.path)
            except OSError:  # removed by another run meanwhile, or not ours to remove
                continue
            removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a reused id reads as alive: its file is left); a zombie,
    killed but not yet reaped (as orphans in a container whose first process reaps none), writes nothing."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; an id beyond the system's
        return True
    try:
        with open(f"/proc/{pid}/stat") as status:
            return status.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (not Linux), or the process ended meanwhile
        return True


def write_atomic(path: PathLike, data: bytes | memoryview, *, protect: tuple = ()) -> None:
    """Write ``data`` to a temporary file of this writer's own beside ``path``, fsync it, and rename it into
    place: readers see the old file or the whole new one, and of concurrent writers the last rename wins.

    ``protect``: input paths that must never be overwritten (checked by identity, links included).
    On any failure the temporary file is removed and ``path`` is left as it was.
    """
    commit(write_temp(path, data, protect=protect), path)


def write_temp(path: PathLike, data: bytes | memoryview, *, protect: tuple = ()) -> Path:
    """The first half of :func:`write_atomic`: ``data`` written to a fresh temporary file beside ``path`` (not
    yet fsynced), whose name it returns for :func:`commit`, which any process of this host may do."""
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
    with _removed_on_failure(temp, target):
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
    return temp


def commit(temp: PathLike, path: PathLike) -> None:
    """The second half of :func:`write_atomic`: the temporary file fsynced, then renamed to ``path``."""
    with _removed_on_failure(Path(temp), Path(path)):
        handle = os.open(temp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(temp, path)


@contextmanager
def _removed_on_failure(temp: Path, target: Path) -> Iterator[None]:
    """On any failure ``temp`` is removed (an OSError is a DepthError naming ``target``)."""
    try:
        yield
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
    with _regular(path, limit) as (stream, size):
        data = stream.read(size + 1)  # one byte more than its size tells whether it grew
    if len(data) > size:
        raise DepthError(f"{path}: the file grew while it was read")
    return data


@contextmanager
def read_ranges(path: PathLike) -> Iterator[tuple[Callable[[int, int], bytes], int]]:
    """``(read, size)`` of a regular file opened as :func:`read_file` opens it, for a reader that needs a few
    parts of it: ``read(offset, length)`` gives those bytes, refusing a range past the file's ``size``."""
    with _regular(path, MAX_FILE_BYTES) as (stream, size):

        def read(offset: int, length: int) -> bytes:
            if offset < 0 or length < 0 or length > size - offset:
                raise DepthError(f"{path}: {length} bytes at offset {offset} run past the end of its {size}")
            data = os.pread(stream.fileno(), length, offset)
            if len(data) < length:
                raise DepthError(f"{path}: the file shrank while it was read")
            return data

        yield read, size


@contextmanager
def _regular(path: PathLike, limit: int) -> Iterator[tuple[io.BufferedReader, int]]:
    """The open regular file of at most ``limit`` bytes and its size; an OSError meanwhile is a DepthError."""
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
            yield stream, status.st_size
    except OSError as exc:
        raise DepthError(f"{path}: cannot read: {exc.strerror or exc}") from exc
