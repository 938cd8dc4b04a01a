"""CUDA sources of the gpu_depth kernels (package data, loaded by gpu_depth.backends.cupy_backend)."""
