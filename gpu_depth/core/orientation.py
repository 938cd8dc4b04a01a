"""Orientation and size of depth maps relative to their photo.

Orientation codes are Exif's (1-8): how the stored pixels are turned for display.  Depth maps are
assumed to match the *displayed* photo (what a model sees); they are stored like the photo's pixels,
as iPhones store them, so a reader applying the photo's orientation sees them aligned.
"""

from __future__ import annotations

import numpy as np

from ..errors import DepthError
from ..limits import check_pixels

#: Relative aspect-ratio difference tolerated between a depth map and its photo.
ASPECT_TOLERANCE = 0.01

_TO_STORED = {
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: np.transpose,
    6: lambda a: np.rot90(a, 1),
    7: lambda a: np.rot90(a, 2).T,
    8: lambda a: np.rot90(a, -1),
}


def to_stored(array: np.ndarray, orientation: int) -> np.ndarray:
    """Undo Exif ``orientation``: the displayed-orientation ``array`` as the photo stores its pixels."""
    if orientation not in _TO_STORED:
        raise DepthError(f"unknown orientation {orientation}; expected 1-8")
    return np.ascontiguousarray(_TO_STORED[orientation](array))


def to_displayed(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply Exif ``orientation``: the stored ``array`` as the photo is shown (:func:`to_stored` undone;
    each orientation is its own inverse but for the two quarter turns)."""
    return to_stored(array, {6: 8, 8: 6}.get(orientation, orientation))


def orientation_of(steps: list[tuple[str, int]]) -> int:
    """The Exif orientation equal to HEIF transforms applied in order: ``("irot", quarter turns
    anticlockwise)`` and ``("imir", axis)`` where axis 0 mirrors left-right, 1 top-bottom."""
    probe = np.arange(6).reshape(2, 3)
    shown = probe
    for kind, value in steps:
        shown = np.rot90(shown, value) if kind == "irot" else (np.flipud(shown) if value else np.fliplr(shown))
    return next(code for code, undo in _TO_STORED.items() if np.array_equal(undo(shown), probe))


def displayed_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """(width, height) after applying ``orientation`` to a stored width × height image."""
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def depth_size(
    depth: tuple[int, int],
    photo: tuple[int, int],
    requested: int | tuple[int, int] | None = None,
    stretch: bool = False,
) -> tuple[int, int]:
    """The (width, height) a depth map of size ``depth`` is resampled to for a photo displayed at ``photo``.

    ``requested``: a longest side (768, an iPhone's), giving the photo's aspect ratio and never more pixels
    than the photo; or a (width, height) such as 768x576, turned to the photo's orientation; without it the
    map keeps its size.  A map whose aspect ratio differs from the photo's is an error unless ``stretch``.
    """
    check_pixels(*photo, "the photo")
    if isinstance(requested, int):
        longest = min(requested, max(photo))
        requested = tuple(max(1, round(side * longest / max(photo))) for side in photo)
    portrait = photo[1] > photo[0]
    if requested is not None and (requested[1] > requested[0]) != portrait and requested[0] != requested[1]:
        requested = (requested[1], requested[0])
    target = requested or depth
    for name, size in (("depth map", depth), ("requested size", target)):
        if not stretch and not _same_aspect(size, photo):
            raise DepthError(
                f"{name} {size[0]}x{size[1]} has another aspect ratio than the photo {photo[0]}x{photo[1]}"
            )
    if stretch and requested is None:
        target = (depth[0], max(1, round(depth[0] * photo[1] / photo[0])))
    check_pixels(*target, "the depth map's stored size")
    return target


def parse_size(text: str) -> tuple[int, int]:
    """``"768x576"`` → (768, 576)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise DepthError(f"size must look like 768x576, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise DepthError(f"size must be positive, got {text!r}")
    return width, height


def _same_aspect(size: tuple[int, int], photo: tuple[int, int]) -> bool:
    return abs(size[0] * photo[1] - size[1] * photo[0]) <= ASPECT_TOLERANCE * size[1] * photo[0] + photo[0]
