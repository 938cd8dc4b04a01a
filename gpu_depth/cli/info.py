"""What ``gpu-depth info`` reports: gpu_depth's and its libraries' versions (libheif's too), backend choice,
GPU (through NVML)."""

from __future__ import annotations

import importlib.util
import platform
from importlib import metadata

from .. import __version__
from ..backends import cupy_unavailable
from ..containers.jpeg import ljpeg
from ..core import resample

LIBRARIES = ("numpy", "pillow", "pillow-heif", "tqdm", "nvidia-ml-py", "ray", "shtab")


def describe() -> str:
    lines = [f"gpu_depth: {__version__}", f"python: {platform.python_version()} ({platform.machine()})"]
    lines.append(_libheif())
    for part, module in (("lossless-JPEG codec", ljpeg), ("area resampler", resample)):
        lines.append(
            f"{part}: {'compiled' if module.compiled() else 'NumPy (the package was built without a C compiler)'}"
        )
    for name in LIBRARIES:
        try:
            lines.append(f"{name}: {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name}: not installed")
    lines.append(_cupy())
    reason = cupy_unavailable()
    lines.append("backend (auto): cupy" if reason is None else f"backend (auto): numpy, because {reason}")
    lines.extend(_gpus())
    return "\n".join(lines)


def _libheif() -> str:
    """The libheif pillow-heif runs on, and its HEVC encoder (the one that codes re-encoded photos and maps)."""
    import pillow_heif

    info = pillow_heif.libheif_info()
    encoder = f" (HEVC encoder: {info['HEIF']})" if info.get("HEIF") else ""
    return f"libheif: {info.get('libheif', 'unknown')}{encoder}"


def _cupy() -> str:
    """CuPy's version and the distribution that installed it (cupy-cuda12x, cupy-cuda13x, cupy …)."""
    if importlib.util.find_spec("cupy") is None:
        return "cupy: not installed"
    try:
        import cupy
    except Exception as exc:  # a broken install: CUDA libraries missing
        return f"cupy: cannot be imported ({str(exc).splitlines()[0]})"
    distributions = metadata.packages_distributions().get("cupy", [])
    origin = f" ({', '.join(distributions)})" if distributions else ""
    return f"cupy: {cupy.__version__}{origin}"


def _gpus() -> list[str]:
    try:
        import pynvml
    except ImportError:
        return ["gpu: none found (nvidia-ml-py is not installed)"]
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return [f"gpu: none found (NVML: {exc})"]
    try:
        lines = [
            f"driver: {_text(pynvml.nvmlSystemGetDriverVersion())}",
            f"cuda (driver): {pynvml.nvmlSystemGetCudaDriverVersion_v2()}",
        ]
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            usage = pynvml.nvmlDeviceGetUtilizationRates(handle)
            lines.append(
                f"gpu {index}: {_text(pynvml.nvmlDeviceGetName(handle))}, memory {memory.used >> 20}/"
                f"{memory.total >> 20} MiB used, utilisation {usage.gpu}%"
            )
        return lines
    finally:
        pynvml.nvmlShutdown()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
