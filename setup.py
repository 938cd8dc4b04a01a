"""The optional C parts: the lossless-JPEG codec (encoder and decoder), the area resampler's integral and the
lossless HEVC coder of depth maps and mattes; everything else is in pyproject.toml.  Without a C compiler the
package installs without them and does the same in NumPy (slower, the same bytes, samples and values), and x265
codes the lossless maps and mattes (also lossless, other bytes)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gpu_depth.containers.jpeg._ljpeg",
            ["gpu_depth/containers/jpeg/_ljpeg.c"],
            depends=["gpu_depth/_buffers.h"],
            optional=True,
        ),
        Extension(
            "gpu_depth.containers.heic._hevc_lossless",
            ["gpu_depth/containers/heic/_hevc_lossless.c"],
            depends=["gpu_depth/_buffers.h"],
            optional=True,
        ),
        # no fused multiply-add: each product is rounded before its sum, as NumPy rounds it
        Extension(
            "gpu_depth.core._resample",
            ["gpu_depth/core/_resample.c"],
            depends=["gpu_depth/_buffers.h"],
            optional=True,
            extra_compile_args=["-ffp-contract=off"],
        ),
    ]
)
