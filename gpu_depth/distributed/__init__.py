"""Engines that spread ``gpu-depth convert`` beyond one process: Ray (``pip install 'gpu_depth[ray]'``)."""

from .ray_engine import run_ray

__all__ = ["run_ray"]
