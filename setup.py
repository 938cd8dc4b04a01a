"""The optional C codec of lossless JPEG (encoder and decoder); everything else is in pyproject.toml.  Without a
C compiler the package installs without it and codes with NumPy (slower, the same bytes and samples)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("gpu_depth.containers.jpeg._ljpeg", ["gpu_depth/containers/jpeg/_ljpeg.c"], optional=True),
    ]
)
