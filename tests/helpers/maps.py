"""Depth maps, mappings and calibrations the tests share."""

from dataclasses import replace

import numpy as np

from gpu_depth import CameraCalibration, DepthMapping

RANGED = {
    "apple-gray": DepthMapping("apple-gray", near=0.25, far=12.0),
    "inverted-gray": DepthMapping("inverted-gray", near=0.3, far=7.0),
    "inverse-gray": DepthMapping("inverse-gray", near=0.2, far=9.5),
    "relative-disparity": DepthMapping("relative-disparity", near=0.4, far=20.0),
}

#: KITTI's stereo rig (calibration of 2011_09_26): focal length in pixels, baseline in metres.
KITTI_RIG = {"focal_px": 721.5377, "baseline": 0.5372}
METRIC = {
    **{name: DepthMapping(name) for name in ("kitti", "mm16", "metric")},
    "disparity-px": DepthMapping("disparity-px", **KITTI_RIG, doffs=3.5),
}
#: The metric presets for integer maps: codes per metre (TUM's 5000) or per pixel (KITTI's 256).
SCALED = {
    "metric": DepthMapping("metric", depth_scale=5000),
    "disparity-px": DepthMapping("disparity-px", **KITTI_RIG, depth_scale=256),
}
# NaN with sign, payloads and signalling ones: NumPy (x86) keeps the payload of an input NaN, made quiet.
NAN_BITS = {
    "float16": np.array([0x7E00, 0xFE00, 0x7E55, 0xFD01, 0x7C01], np.uint16),
    "float32": np.array([0x7FC00000, 0xFFC00000, 0x7FC12345, 0xFFE00001, 0x7F800001], np.uint32),
    "float64": np.array([0x7FF8 << 48, 0xFFF8 << 48, (0x7FF8 << 48) + 0x12345678, 0x7FF0000000000001], np.uint64),
}
SPECIALS = np.array([0.0, -0.0, -1.5, np.inf, -np.inf, 1e-40, 1e-45, 3e38])


MAPPINGS = {**RANGED, **METRIC}
#: Presets of float maps (kitti and mm16 read integer codes only).
FLOAT_NAMES = [name for name in MAPPINGS if name not in ("kitti", "mm16")]


def mapping_for(name: str, dtype) -> DepthMapping:
    """The mapping of preset ``name`` for maps of ``dtype``: integer maps of metric presets need a scale."""
    return SCALED.get(name, MAPPINGS[name]) if np.dtype(dtype).kind == "u" else MAPPINGS[name]


def float_map(rng, shape, name, dtype) -> np.ndarray:
    """Random values of the kind the mapping takes, with NaN, zeros, negatives and extremes mixed in."""
    if name in RANGED and name != "relative-disparity":
        values = rng.random(shape)
        values.flat[:4] = [0.0, 1.0, np.nextafter(0, 1), np.nextafter(1, 0)]
        specials = np.array([0.0, -0.0, 1.0])
    else:
        values = rng.lognormal(1.0, 1.5, shape) * {"kitti": 256, "mm16": 1000}.get(name, 1.0)
        specials = SPECIALS
    cells = rng.choice(values.size, size=values.size // 5, replace=False)
    values.flat[cells] = rng.choice(specials, size=cells.size)
    with np.errstate(over="ignore"):
        values = values.astype(dtype)
    nans = NAN_BITS[np.dtype(dtype).name].view(dtype)
    values.flat[rng.choice(values.size, size=values.size // 10, replace=False)] = nans[0]
    values.flat[: nans.size] = nans
    return values


def tame(values: np.ndarray) -> np.ndarray:
    """The map without the huge and tiny values whose depth or disparity overflows."""
    with np.errstate(invalid="ignore"):  # signalling NaN
        wide = values.astype(np.float64)
    values[np.abs(wide) > 1e30] = 1.0
    values[(wide > 0) & (wide < 1e-30)] = 2.0
    return values


def mixed_maps(rng, dtype, count: int, exclude=()) -> tuple[list[np.ndarray], list[DepthMapping]]:
    """``count`` ragged maps of ``dtype``, each with a mapping of its own (iPhone photos with their own
    zNear/zFar): the presets ``dtype`` can mean but ``exclude`` in turn, ranges varied per map, tamed
    float values (every third map without NaN)."""
    integer = np.dtype(dtype).kind == "u"
    names = [name for name in MAPPINGS if (integer or name in FLOAT_NAMES) and name not in exclude]
    maps, mappings = [], []
    for index in range(count):
        name = names[index % len(names)]
        mapping = mapping_for(name, dtype)
        if name in RANGED:
            mapping = replace(mapping, near=mapping.near * (1 + index / 7), far=mapping.far + index)
        shape = tuple(int(n) for n in rng.integers(1, 30, 2))
        if integer:
            values = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
        else:
            values = tame(float_map(rng, shape, name, dtype))
            if index % 3 == 2:
                values[np.isnan(values)] = 0.5
        maps.append(values)
        mappings.append(mapping)
    return maps, mappings


CALIBRATION = CameraCalibration(
    intrinsic_matrix=(
        (3032.59423828125, 0.0, 1988.450927734375),
        (0.0, 3032.59423828125, 1512.30712890625),
        (0.0, 0.0, 1.0),
    ),
    reference_dimensions=(4032, 3024),
    lens_distortion_coefficients=(0.0, -0.94, 0.2),
    inverse_lens_distortion_coefficients=(0.0, 0.92, -0.19),
    lens_distortion_center=(1990.331298828125, 1515.21),
    pixel_size=0.0019,
)


def person(width: int = 96, height: int = 72, seed: int = 0) -> np.ndarray:
    """A soft-edged blob with noise: every code 0..255 occurs, as in a real matte's edges."""
    y, x = np.mgrid[0:height, 0:width]
    blob = np.exp(-(((x - width / 2) / (width / 4)) ** 2 + ((y - height / 2) / (height / 3)) ** 2))
    noise = np.random.default_rng(seed).integers(-20, 21, (height, width))
    return np.clip(np.rint(blob * 255) + noise, 0, 255).astype(np.uint8)
