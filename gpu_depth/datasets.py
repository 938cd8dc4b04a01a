"""What a depth file's path says about its encoding, where a public dataset's layout tells it.

The bits cannot tell some encodings apart: KITTI depth and KITTI stereo disparity are both uint16 codes
× 256, TUM RGB-D's 5000 codes per metre look like millimetres.  Their folders can: KITTI's disparity
maps live in ``disp_occ_0``/``disp_noc`` …, Middlebury's are ``disp0.pfm``, TUM's sequences are
``rgbd_dataset_freiburg…``.  :func:`check_path` refuses a preset the path contradicts, naming the one
that fits, so such a choice fails instead of writing plausible wrong metres.
"""

from __future__ import annotations

import re
from pathlib import Path

from .core.mapping import UNITS_PER_METRE, DepthMapping, Preset
from .errors import DepthError

#: Presets that read the map as depth (metres, or codes of them).
DEPTH_PRESETS = frozenset({Preset.KITTI, Preset.MILLIMETRES, Preset.METRIC})
#: A path part naming disparity: disp, disp0.pfm, disp_occ_0, disp_noc, disparity, disparities (not display).
DISPARITY_PART = re.compile(r"disp(arit(y|ies))?($|[\d_.\-])", re.IGNORECASE)
#: TUM RGB-D sequences, and the codes per metre of their depth PNGs.
TUM_PART = re.compile(r"rgbd_dataset_freiburg", re.IGNORECASE)
TUM_UNITS_PER_METRE = 5000.0


def check_path(path: str | Path, mapping: DepthMapping) -> None:
    """Raise DepthError when ``path`` names an encoding ``mapping`` cannot mean."""
    parts = Path(path).parts
    disparity = next((part for part in parts if DISPARITY_PART.match(part)), None)
    if mapping.preset in DEPTH_PRESETS and disparity is not None:
        raise DepthError(
            f"{path}: {disparity!r} names a disparity map, but --preset {mapping.preset.value} reads depth; "
            "for stereo disparity in pixels use --preset disparity-px --focal-px F --baseline B "
            "(KITTI's PNGs: --depth-scale 256)"
        )
    scale = mapping.depth_scale or UNITS_PER_METRE.get(mapping.preset)
    if scale not in (None, TUM_UNITS_PER_METRE) and any(TUM_PART.match(part) for part in parts):
        raise DepthError(
            f"{path}: TUM RGB-D depth holds {TUM_UNITS_PER_METRE:g} codes per metre, not {scale:g}: "
            f"use --preset metric --depth-scale {TUM_UNITS_PER_METRE:g}"
        )
