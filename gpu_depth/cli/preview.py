"""A picture for people: the photo beside its colour-mapped depth, with a colour bar in m or 1/m, and
its portrait matte (else its first matte) in gray when it has one."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .. import containers
from ..api import read_depth, read_mattes
from ..core.auxiliary import DEFAULT_KIND
from ..core.orientation import to_displayed
from ..errors import DepthError
from ..fileio import read_file, write_atomic

HEIGHT = 512
BAR = 24
# Turbo-like ramp: far/low values dark blue, through green and yellow, to dark red.
_STOPS = np.array(
    [[48, 18, 59], [70, 131, 246], [27, 229, 181], [164, 252, 60], [251, 185, 56], [228, 70, 14], [122, 4, 3]],
    dtype=np.float64,
)


def colour_map(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """RGB uint8 of ``values`` on the ramp from ``low`` to ``high``; NaN is black."""
    t = np.clip((values - low) / (high - low), 0, 1) if high > low else np.zeros_like(values)
    position = np.nan_to_num(t) * (len(_STOPS) - 1)
    index = np.minimum(position.astype(int), len(_STOPS) - 2)
    frac = (position - index)[..., None]
    rgb = _STOPS[index] * (1 - frac) + _STOPS[index + 1] * frac
    rgb[np.isnan(values)] = 0
    return rgb.astype(np.uint8)


def _orientation(path: Path) -> int:
    data = read_file(path)
    module = containers.sniff(data)
    return module.orientation(data) if module is not None else 1


def _matte_panel(path: Path, height: int):
    """The portrait matte (else the first matte) as shown, ``height`` tall, or None without mattes."""
    from PIL import Image

    mattes = read_mattes(path)
    if not mattes:
        return None
    matte = next((m for m in mattes if m.kind.name == DEFAULT_KIND), mattes[0])
    pixels = to_displayed(matte.pixels, _orientation(path))
    width = max(1, round(pixels.shape[1] * height / pixels.shape[0]))
    return Image.fromarray(pixels, "L").resize((width, height)).convert("RGB")


def write_preview(path: Path, out: Path) -> None:
    """Write a PNG: photo | depth | colour bar labelled with the range and unit."""
    from PIL import Image, ImageDraw, ImageOps
    from pillow_heif import register_heif_opener

    depth = read_depth(path)
    if depth is None:
        raise DepthError(f"{path}: no depth to preview")
    register_heif_opener()
    try:
        photo = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    except OSError as exc:
        raise DepthError(f"{path}: cannot decode the photo: {exc}") from exc
    values = to_displayed(depth.array.astype(np.float64), _orientation(path))  # both panels as shown
    finite = values[np.isfinite(values)]
    low, high = float(finite.min()), float(finite.max())
    depth_image = Image.fromarray(colour_map(values, low, high))
    scale = HEIGHT / photo.height
    photo = photo.resize((max(1, round(photo.width * scale)), HEIGHT))
    depth_image = depth_image.resize((max(1, round(values.shape[1] * HEIGHT / values.shape[0])), HEIGHT), Image.NEAREST)
    ramp = np.linspace(high, low, HEIGHT)[:, None].repeat(BAR, axis=1)
    matte = _matte_panel(path, HEIGHT)
    extra = matte.width if matte is not None else 0
    canvas = Image.new("RGB", (photo.width + depth_image.width + BAR + 90 + extra, HEIGHT), "white")
    if matte is not None:
        canvas.paste(matte, (photo.width + depth_image.width + BAR + 90, 0))
    canvas.paste(photo, (0, 0))
    canvas.paste(depth_image, (photo.width, 0))
    canvas.paste(Image.fromarray(colour_map(ramp, low, high)), (photo.width + depth_image.width, 0))
    unit = ("1/m" if depth.pixel_format.is_disparity else "m") if depth.metadata.accuracy else "(unknown units)"
    draw = ImageDraw.Draw(canvas)
    x = photo.width + depth_image.width + BAR + 4
    draw.text((x, 2), f"{high:.3g} {unit}", fill="black")
    draw.text((x, HEIGHT - 14), f"{low:.3g} {unit}", fill="black")
    draw.text((x, HEIGHT // 2), depth.pixel_format.quantity, fill="black")
    stream = io.BytesIO()
    canvas.save(stream, format="PNG")
    write_atomic(out, stream.getvalue())
