"""The optional C decoder of lossless JPEG; everything else is in pyproject.toml.  Without a C compiler the
package installs without it and decodes with NumPy (slower, the same samples)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("gpu_depth.containers.jpeg._ljpeg", ["gpu_depth/containers/jpeg/_ljpeg.c"], optional=True),
    ]
)
