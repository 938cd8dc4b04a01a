"""The CUDA kernels compiled for the host (kernels/host_emulation.h) and driven like CuPy kernels.

``HostKernels().launch(name, grid, block, args)`` takes what a CuPy RawKernel call takes:
NumPy arrays stand in for device arrays, NumPy scalars keep their C types.  ``host_convert`` and
``host_quantize`` run the CuPy backend's plans (gpu_depth.backends.kernel_plan) with NumPy arrays.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from gpu_depth.backends import kernel_plan as kp
from gpu_depth.backends import per_map
from gpu_depth.core.depthdata import DepthData
from gpu_depth.core.formats import PixelFormat, StoredFormat
from gpu_depth.core.quantize import StoredMap
from helpers import ROOT

KERNELS = ROOT / "kernels"
#: Blocks per launch: few, so that the grid-stride loops of every kernel take several turns.
BLOCKS = 3

_SCALARS = {
    np.dtype("int32"): ctypes.c_int32,
    np.dtype("uint64"): ctypes.c_uint64,
    np.dtype("float64"): ctypes.c_double,
}


def compile_host(source: str, options: tuple[str, ...] = (), sanitize: bool = False) -> ctypes.CDLL:
    """``source`` (kernels as NVRTC sees them) compiled for the host with kernels/host_emulation.h.

    Every kernel ``name`` is exported as ``emu_name`` (and ``emu_name_const``, its read-only pointer
    parameters as a bit mask).  Builds are cached by content in the temporary directory.
    ``sanitize``: with AddressSanitizer and UBSan (the process must preload libasan).
    """
    compiler = shutil.which("g++") or pytest.skip("g++ is not installed")
    flags = [o for o in options if o.startswith(("-std=", "-D"))]
    assert len(flags) == len(options), f"unexpected module options {options}"
    exports = "\n".join(f"GD_EXPORT(emu_{kernel}, {kernel})" for kernel in kp.kernel_names(source))
    text = f'#include "host_emulation.h"\n{source}\n{exports}\n'
    command = [compiler, *flags, "-O2", "-ffp-contract=off", "-fPIC", "-shared", f"-I{KERNELS}"]
    if sanitize:
        command += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
    header = (KERNELS / "host_emulation.h").read_text()
    key = hashlib.sha256("\0".join([text, header, *command]).encode()).hexdigest()[:20]
    build = Path(tempfile.gettempdir()) / "gpu_depth_host_kernels"
    build.mkdir(exist_ok=True)
    library = build / f"{key}.so"
    if not library.exists():
        wrapper = build / f"{key}.{os.getpid()}.cpp"
        wrapper.write_text(text)
        partial = build / f"{key}.{os.getpid()}.so"
        subprocess.run([*command, "-x", "c++", str(wrapper), "-o", str(partial)], check=True)
        os.replace(partial, library)
        wrapper.unlink()
    return ctypes.CDLL(str(library))


def launch(library: ctypes.CDLL, name: str, grid: tuple, block: tuple, args: tuple) -> None:
    """Run kernel ``name`` of a :func:`compile_host` library on NumPy arrays and typed NumPy scalars."""
    cells = [_cell(arg) for arg in args]
    params = (ctypes.c_void_p * len(cells))(*(ctypes.cast(ctypes.pointer(c), ctypes.c_void_p) for c in cells))
    function = getattr(library, f"emu_{name}")
    function.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p]
    function(grid[0], grid[1], block[0], params)


def read_only(library: ctypes.CDLL, name: str) -> int:
    """Bit mask of the kernel's parameters that point at const data."""
    function = getattr(library, f"emu_{name}_const")
    function.restype = ctypes.c_uint64
    return function()


def _cell(arg: object) -> ctypes._SimpleCData:
    if isinstance(arg, np.ndarray):
        assert arg.flags.c_contiguous, "kernel arrays must be contiguous"
        return ctypes.c_void_p(arg.ctypes.data)
    assert isinstance(arg, np.generic), f"kernel scalars must be typed NumPy scalars, got {type(arg).__name__}"
    return _SCALARS[arg.dtype](arg.item())


class HostKernels:
    """The kernel module of kernels/*.cu (the source the CuPy backend compiles) built for the host."""

    def __init__(self, sanitize: bool = False) -> None:
        self.library = compile_host(kp.module_source(KERNELS), ("-std=c++17",), sanitize)

    def launch(self, name: str, grid: tuple, block: tuple, args: tuple) -> None:
        launch(self.library, name, grid, block, args)


def host_convert(kernels: HostKernels, maps, mapping, fmt, row_alignment=1, size=None, packed=False) -> list:
    """The CuPy backend's convert, run on the CPU: rows of each map (fresh arrays).

    ``mapping``: one for all maps, or one per map.  ``packed``: hand each group over as one
    back-to-back buffer, as a contiguous device batch is used.
    """
    fmt = PixelFormat.parse(fmt)
    mappings = per_map(mapping, len(maps))
    kp.check_batch(maps, fmt, row_alignment, size)
    rows: list = [None] * len(maps)
    for indices, dtype, resize in kp.groups(maps, size):
        members, members_mappings = [maps[i] for i in indices], [mappings[i] for i in indices]
        target = size if resize else None
        plan = kp.plan_convert([m.shape for m in members], dtype, fmt, row_alignment, target, packed)
        if packed:
            d_in = np.concatenate([m.ravel() for m in members])
        else:
            d_in = np.zeros(plan.in_size, dtype)
            kp.pack(members, plan.input_layout, d_in)
        d_out = np.full(plan.out_size * fmt.bytes_per_pixel, 0x55, np.uint8).view(fmt.dtype)  # the kernels zero padding
        table = kp.device_table(kp.distinct(members_mappings)[0], dtype, fmt, resize)
        flags = kp.run_convert(kernels.launch, np, plan, members_mappings, table, d_in, d_out, BLOCKS)
        bad = kp.flagged(flags)
        if bad is not None:
            kp.raise_like_numpy(members[bad], members_mappings[bad], fmt, row_alignment, size if resize else None)
        for index, view in zip(indices, kp.unpack(d_out, plan), strict=True):
            rows[index] = view.copy()
    return rows


def host_quantize(kernels: HostKernels, depths: list[DepthData], stored=StoredFormat.L008) -> list[StoredMap]:
    """The CuPy backend's quantize, run on the CPU."""
    fmt = depths[0].pixel_format
    shapes = [(d.height, d.width, d.bytes_per_row // fmt.bytes_per_pixel) for d in depths]
    plan = kp.plan_quantize(shapes, fmt, stored)
    d_in = np.zeros(plan.in_size, fmt.dtype)
    kp.pack([d.array for d in depths], plan.input_layout, d_in)
    keys, layout = kp.run_finite_range(kernels.launch, np, plan, d_in, BLOCKS)
    params, ranges = kp.quantize_params(depths, keys, stored)
    d_out = np.zeros(plan.out_size, stored.dtype)
    kp.run_quantize(kernels.launch, np, plan, d_in, layout, params, d_out, BLOCKS)
    results = []
    for depth, entry, bounds in zip(depths, plan.layout, ranges, strict=True):
        offset, size = int(entry["out_offset"]), depth.width * depth.height
        pixels = d_out[offset : offset + size].reshape(depth.height, depth.width).copy()
        results.append(kp.stored_map(depth, pixels, bounds, stored))
    return results
