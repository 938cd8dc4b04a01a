"""What ``gpu-depth info`` reports: backend choice, GPU (through NVML), library versions."""

from __future__ import annotations

import platform
from importlib import metadata

from ..backends import cupy_unavailable

LIBRARIES = ("numpy", "pillow", "pillow-heif", "cupy-cuda12x", "nvidia-ml-py")


def describe() -> str:
    lines = [f"python: {platform.python_version()} ({platform.machine()})"]
    for name in LIBRARIES:
        try:
            lines.append(f"{name}: {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name}: not installed")
    reason = cupy_unavailable()
    lines.append("backend (auto): cupy" if reason is None else f"backend (auto): numpy, because {reason}")
    lines.extend(_gpus())
    return "\n".join(lines)


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
