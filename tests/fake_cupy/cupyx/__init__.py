"""``cupyx.empty_pinned`` of the stream simulator (see the ``cupy`` stand-in beside it)."""

from __future__ import annotations

import numpy as np
from cupy import _sim


def empty_pinned(shape, dtype=float) -> np.ndarray:
    dtype = np.dtype(dtype)
    shape = tuple(np.atleast_1d(shape).tolist())
    count = int(np.prod(shape, dtype=np.int64))
    return _sim.empty_pinned(count * dtype.itemsize).view(dtype).reshape(shape)
