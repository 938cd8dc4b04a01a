"""Write a file so that it appears whole or not at all, never replacing an input."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import DepthError

#: Prefix of the temporary files written beside their targets (a killed run may leave one).
TEMP_PREFIX = ".gpu-depth-"


def write_atomic(path: str | os.PathLike, data: bytes | memoryview, *, protect: tuple = ()) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, and rename it into place.

    ``protect``: input paths that must never be overwritten (checked by identity, links included).
    On any failure the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    for source in protect:
        if target.exists() and Path(source).exists() and os.path.samefile(target, source):
            raise DepthError(f"{target}: refusing to overwrite the input file {source}")
    try:
        handle, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=target.parent or ".")
    except OSError as exc:
        raise DepthError(f"{target}: cannot write in {target.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, target)
    except OSError as exc:
        os.unlink(temp)
        raise DepthError(f"{target}: write failed: {exc.strerror or exc}") from None
    except BaseException:
        os.unlink(temp)
        raise
