"""What a conversion run can be told: one frozen option bag shared by every stage and runner."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Options:
    """Everything ``gpu-depth convert`` can be told, with its defaults."""

    out: Path
    container: str = "same"  # heic, jpeg, dng or same (the photo's own)
    pixel_format: str = "hdis"
    preset: str = "apple-gray"
    near: float | None = None
    far: float | None = None
    depth_scale: float | None = None  # integer codes per metre (metric) or per pixel (disparity-px)
    focal_px: float | None = None  # disparity-px: focal length (pixels), baseline (metres), disparity offset (pixels)
    baseline: float | None = None
    doffs: float = 0.0
    holes: str = "fill"  # fill (core.holes.fill_holes, marked filtered) or keep (stored as holes, unfiltered)
    intrinsics: tuple[float, float, float, float] | None = None  # fx, fy, cx, cy in the depth map's pixels
    depth_size: int | tuple[int, int] | None = 768  # longest side, (width, height), or None: the map's own size
    stretch: bool = False
    backend: str = "auto"
    batch_size: int = 16
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    resume: bool = False  # skip items whose output exists and holds depth
    overwrite: bool = False  # replace existing outputs (else an existing output fails its item)
    shard: tuple[int, int] | None = None  # (index, count): do only the outputs of that shard
    quality: int = 90
    encoder_preset: str = "medium"
    #: Container options by the keyword each plugin's ``attach_depth`` takes (its ``ATTACH_OPTIONS``), e.g.
    #: ``{"gdepth": True, "coding": "baseline"}``; each container receives the ones it declares.
    attach: Mapping[str, Any] = field(default_factory=dict)
    encoder_threads: int | None = None  # x265 threads per encode; None: the local runner shares out the cores
    mattes: Path | None = None  # folder of mattes, paired with the photos by stem (pipeline.mattes)
    matte_suffix: str = ""
    matte_kind: str = "portrait-effects"
    drop_mattes: bool = False  # drop the photos' own mattes
