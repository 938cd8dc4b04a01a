"""File-level API: read depth from a photo, attach depth to a photo (the ImageIO analogues)."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import containers, limits
from .core.auxiliary import Matte, kind_of
from .core.depthdata import DepthData
from .core.orientation import depth_size, to_displayed, to_stored
from .core.orientation import displayed_size as turned
from .core.quantize import StoredDepth
from .errors import DepthError, ExistingDepth
from .fileio import PathLike, read_file, write_atomic


def read_depth(path: PathLike, kind: str | None = None) -> DepthData | None:
    """The depth/disparity map a HEIC, JPEG or DNG file carries, or None when it has none.

    ``kind``: None returns the native format (as stored in the file's XMP); ``"disparity"`` or
    ``"depth"`` converts to that quantity at the native precision.
    """
    if kind not in (None, "disparity", "depth"):
        raise DepthError(f"kind must be 'disparity', 'depth' or None, got {kind!r}")
    data = read_file(path)
    module = _container_of(data, path)
    try:
        depth = module.read_depth(data)
    except DepthError as exc:
        raise DepthError(f"{path}: {exc}") from exc
    if depth is None or kind is None or depth.pixel_format.quantity == kind:
        return depth
    return depth.converting(depth.pixel_format.with_quantity(kind == "disparity"))


def read_mattes(path: PathLike) -> list[Matte]:
    """Every portrait and semantic matte a HEIC, JPEG or DNG carries, in file order."""
    data = read_file(path)
    module = _container_of(data, path)
    if not hasattr(module, "read_mattes"):
        return []
    try:
        return module.read_mattes(data)
    except DepthError as exc:
        raise DepthError(f"{path}: {exc}") from exc


def auxiliary_images(path: PathLike) -> list[dict]:
    """Every auxiliary image of a HEIC, JPEG or DNG (depth, mattes, gain maps …), nothing decoded: its
    ``type`` (``depth``, a matte kind, else the file's own word for it), ``width`` and ``height``."""
    data = read_file(path)
    module = _container_of(data, path)
    if not hasattr(module, "auxiliary_images"):
        return []
    try:
        return [{"type": kind, "width": w, "height": h} for kind, w, h in module.auxiliary_images(data)]
    except DepthError as exc:
        raise DepthError(f"{path}: {exc}") from exc


def read_auxiliary(path: PathLike, kind: str = "portrait-effects") -> Matte | None:
    """The ``CGImageSourceCopyAuxiliaryDataInfoAtIndex`` analogue for mattes: the file's first matte of
    ``kind`` (a name of :data:`gpu_depth.core.auxiliary.KINDS` or its URN), or None.  Its
    ``dictionary_representation()`` gives Data, DataDescription and Metadata; depth is :func:`read_depth`'s."""
    wanted = kind_of(kind)
    return next((matte for matte in read_mattes(path) if matte.kind == wanted), None)


def attach_auxiliary(
    photo: PathLike,
    kind: str,
    image: np.ndarray | Matte,
    out: PathLike,
    *,
    replace: bool = False,
    orientation: str = "stored",
    fit: str = "error",
    **attach_options: Any,
) -> Path:
    """Write ``out``: ``photo`` (HEIC, JPEG or DNG, kept in its container) with the 8-bit matte ``image``
    (0 = background … 255 = subject) attached as ``kind``, written atomically.  A matte of that kind
    in the photo is an error unless ``replace``; ``orientation`` and ``fit`` are those of :func:`attach`."""
    data = read_file(photo)
    target = _container_of(data, photo)
    with _about(photo):
        matte = _matte(kind, image)
        if not hasattr(target, "attach_auxiliary"):
            raise DepthError(f"a {target.NAME} photo takes no mattes")
        turn = target.orientation(data)
        stored = turned(*target.displayed_size(data), turn)
        [matte] = _placed([matte], stored, turn, orientation, fit)
        _check_options(attach_options)
        options = {k: v for k, v in attach_options.items() if k in target.AUXILIARY_OPTIONS}
        result = target.attach_auxiliary(data, [matte], replace=replace, **options)
    write_atomic(out, result, protect=(photo,))
    return Path(out)


@contextmanager
def _about(photo: PathLike) -> Iterator[None]:
    """Errors of attaching to ``photo`` name it (and, for existing depth or mattes, how to replace them)."""
    try:
        yield
    except ExistingDepth as exc:
        raise ExistingDepth(f"{photo}: {exc}; pass replace=True to replace it") from exc
    except DepthError as exc:
        raise DepthError(f"{photo}: {exc}") from exc


def _check_options(options: Mapping[str, Any]) -> None:
    """Refuse keyword options no container's attach takes."""
    known = frozenset().union(*(containers.plugin(name).ATTACH_OPTIONS for name in containers.PLUGINS))
    if unknown := sorted(set(options) - known - {"encoder_threads"}):
        raise DepthError(f"unknown attach option(s): {', '.join(unknown)}")


def attach_depth(
    photo: PathLike,
    depth: DepthData,
    out: PathLike,
    *,
    container: str | None = None,
    replace: bool = False,
    orientation: str = "stored",
    fit: str = "error",
    quality: int = 90,
    encoder_preset: str = "medium",
    mattes: Mapping[str, np.ndarray | Matte] | None = None,
    drop_mattes: bool = False,
    **attach_options: Any,
) -> Path:
    """Write ``out``: ``photo`` with ``depth`` (and ``mattes``, kind → 8-bit image) attached, written atomically.

    ``container``: ``heic``, ``jpeg`` or ``dng``; by default the one ``out``'s suffix names, else the
    photo's own.  A photo already in that container keeps its coded bytes; another is re-encoded
    with ``quality`` (and, for HEIC, the x265 ``encoder_preset``).  ``orientation``, ``fit``,
    ``replace`` and the container options (``attach_options``) are those of :func:`attach`.
    """
    if not isinstance(depth, DepthData):
        raise DepthError(f"depth must be DepthData, got {type(depth).__name__}")
    data = read_file(photo)
    target = containers.plugin(container) if container else _by_suffix(out) or containers.sniff(data)
    if target is None:
        raise DepthError(f"{photo}: unknown photo format; name the output container")
    with _about(photo):
        result = attach(
            data,
            photo,
            depth,
            target,
            replace=replace,
            orientation=orientation,
            fit=fit,
            quality=quality,
            encoder_preset=encoder_preset,
            mattes=mattes,
            drop_mattes=drop_mattes,
            **attach_options,
        )
    write_atomic(out, result, protect=(photo,))
    return Path(out)


def attach(
    data: bytes,
    path: PathLike,
    depth: DepthData | StoredDepth,
    target: containers.Plugin,
    *,
    replace: bool = False,
    orientation: str = "stored",
    fit: str = "error",
    quality: int = 90,
    encoder_preset: str = "medium",
    encoder_threads: int | None = None,
    xmp_profile: str = "imageio",
    mattes: Mapping[str, np.ndarray | Matte] | None = None,
    drop_mattes: bool = False,
    parsed: Any = None,
    **options: Any,
) -> bytes:
    """The one attach path (:func:`attach_depth` and ``gpu-depth convert``): the photo ``data`` (read from
    ``path``) in the ``target`` container with ``depth`` attached.

    ``orientation``: ``"stored"`` (the default) takes the map as the photo stores its pixels, which is
    how files keep it and :func:`read_depth` returns it, so reading and attaching back stores the same
    map; ``"displayed"`` takes it as the photo is shown (a model's output, the CLI's maps) and turns
    it into the stored orientation.  ``fit``: ``"error"`` refuses a map whose aspect ratio differs from
    the photo's (in that orientation), ``"stretch"`` stores it anyway.  ``xmp_profile``: what the depth XMP
    says where the map's metadata does not (:data:`~gpu_depth.core.metadata.WRITE_PROFILES`: ``"imageio"``,
    as macOS ImageIO writes a custom map, or ``"iphone"``, as an iPhone Portrait capture).  Existing depth (Apple's or a
    GDepth, also in a photo of another container that would be re-encoded) raises
    :class:`ExistingDepth` unless ``replace``.  ``options``: the container's ``ATTACH_OPTIONS``;
    those of other containers are ignored.

    ``mattes`` (kind → 8-bit image or :class:`Matte`) are placed like the depth
    map and written in the same pass, replacing the photo's mattes of their kinds.  The photo's other
    mattes are kept (also into another container) unless ``drop_mattes``.

    ``parsed``: the photo ``data`` as its container's ``parse`` gives it, when the caller has parsed it
    already (the pipeline's worker, for its report); it is parsed here otherwise, once for the whole attach.

    ``depth``: a float map, which the container quantises as its ``storage`` says; or (the pipeline's worker)
    a :class:`~gpu_depth.core.quantize.StoredDepth` that the conversion stage stored so already, in the
    photo's stored orientation (with ``"displayed"``, re-turned here if the copy in ``target`` is turned
    otherwise than the photo it was stored for), which is attached without quantising again.
    """
    if orientation not in ("stored", "displayed"):
        raise DepthError(f"orientation must be 'stored' or 'displayed', got {orientation!r}")
    if fit not in ("error", "stretch"):
        raise DepthError(f"fit must be 'error' or 'stretch', got {fit!r}")
    _check_options(options)
    if isinstance(depth, StoredDepth):
        depth = depth.with_metadata(depth.metadata.for_writing(xmp_profile))
    else:
        depth = dataclasses.replace(depth, metadata=depth.metadata.for_writing(xmp_profile))
    source = containers.sniff(data)
    if source is not None and source is not target and not replace and _has_depth(source, data):
        raise ExistingDepth(f"the {source.NAME} photo already has depth, which its {target.NAME} copy would drop")
    new = [_matte(kind, image) for kind, image in (mattes or {}).items()]
    carried = _carried_mattes(source, target, data, new) if not drop_mattes else []
    if (new or carried) and not hasattr(target, "attach_auxiliary"):
        raise DepthError(f"a {target.NAME} photo takes no mattes")
    photo = in_container(data, path, target, quality, encoder_preset, encoder_threads)
    if photo is not data or parsed is None:
        parsed = target.parse(photo)
    turn = target.orientation(photo, parsed)
    if carried and (was := source.orientation(data)) != turn:  # the copy stores its pixels turned otherwise
        carried = [Matte(m.kind, to_stored(to_displayed(m.pixels, was), turn), m.version) for m in carried]
    stored = turned(*target.displayed_size(photo, parsed), turn)  # the photo's size as its pixels are stored
    new = _placed(new, stored, turn, orientation, fit) + carried
    if isinstance(depth, StoredDepth):
        depth = depth.turned(turn) if orientation == "displayed" else depth
    elif orientation == "displayed" and turn != 1:
        depth = DepthData.from_array(to_stored(depth.array, turn), depth.pixel_format, metadata=depth.metadata)
    size = (depth.width, depth.height)
    if fit == "error" and not _fits(size, stored):
        shown = turned(*stored, turn)
        hint = " (it fits the displayed photo: pass orientation='displayed')" if _fits(size, shown) else ""
        raise DepthError(
            f"the {size[0]}x{size[1]} depth map has another aspect ratio than the photo's stored "
            f"{stored[0]}x{stored[1]}{hint}; fit='stretch' stores it anyway"
        )
    if options.get("exif_portrait") and "exif_portrait" not in target.ATTACH_OPTIONS:
        raise DepthError(f"exif_portrait (--exif-portrait) is for HEIC and JPEG photos, not {target.NAME}")
    chosen = {**options, "encoder_threads": encoder_threads}
    if hasattr(target, "attach_auxiliary"):
        chosen |= {"mattes": new, "drop_mattes": drop_mattes}
    return target.attach_depth(
        photo,
        depth,
        replace=replace,
        parsed=parsed,
        **{k: v for k, v in chosen.items() if k in target.ATTACH_OPTIONS or k in ("mattes", "drop_mattes")},
    )


def _matte(kind: str, image: np.ndarray | Matte) -> Matte:
    if not isinstance(image, (Matte, np.ndarray)):
        raise DepthError(f"a {kind} matte must be a 2-D uint8 array or a Matte, got {type(image).__name__}")
    return Matte.of(kind, image)


def _carried_mattes(source, target, data: bytes, new: list[Matte]) -> list[Matte]:
    """The photo's mattes a re-encode into ``target`` would lose, but for the kinds ``new`` replaces."""
    if source is None or source is target or not hasattr(source, "read_mattes"):
        return []
    kinds = {matte.kind for matte in new}
    return [matte for matte in source.read_mattes(data) if matte.kind not in kinds]


def _placed(mattes: list[Matte], stored: tuple[int, int], turn: int, orientation: str, fit: str) -> list[Matte]:
    """``mattes`` in the photo's stored orientation (turned from the displayed one when asked), each
    refused unless its aspect ratio is that of the photo's ``stored`` size (``fit="error"``)."""
    placed = []
    for matte in mattes:
        if orientation == "displayed" and turn != 1:
            matte = Matte(matte.kind, to_stored(matte.pixels, turn), matte.version)
        if fit == "error" and not _fits((matte.width, matte.height), stored):
            raise DepthError(
                f"the {matte.width}x{matte.height} {matte.kind.name} matte has another aspect ratio than the "
                f"photo's stored {stored[0]}x{stored[1]}; fit='stretch' stores it anyway"
            )
        placed.append(matte)
    return placed


def in_container(
    data: bytes,
    path: PathLike,
    target: containers.Plugin,
    quality: int,
    encoder_preset: str,
    encoder_threads: int | None = None,
) -> bytes:
    """The photo's bytes in the ``target`` container: as they are, or re-encoded from another format."""
    if containers.sniff(data) is target:
        return data
    image = decode_photo(path, data)
    return target.encode_photo(image, quality=quality, encoder_preset=encoder_preset, encoder_threads=encoder_threads)


def _has_depth(module: containers.Plugin, data: bytes) -> bool:
    """Whether the photo has depth its own container reads (a plain TIFF, sniffed as DNG, has none)."""
    try:
        return module.read_depth(data) is not None
    except DepthError:
        return False


def _fits(size: tuple[int, int], photo: tuple[int, int]) -> bool:
    try:
        depth_size(size, photo)
    except DepthError:
        return False
    return True


def _container_of(data: bytes, path: PathLike):
    module = containers.sniff(data)
    if module is None:
        raise DepthError(f"{path}: not a HEIC, JPEG or DNG file")
    return module


def _by_suffix(path: PathLike):
    suffix = Path(path).suffix.lower()
    try:
        return containers.plugin(suffix[1:]) if suffix else None
    except DepthError:
        return None


def decode_photo(path: PathLike, data: bytes | None = None):
    """Open the photo at ``path`` (whose bytes are ``data`` when already read) of any format Pillow (with
    pillow-heif) reads, for re-encoding.

    Pillow reads from the bytes in memory: its plugins read what a length field says (a PNG IDAT of
    4 GiB), which a file object allocates before reading and a BytesIO bounds by the data.
    """
    from PIL import Image, UnidentifiedImageError
    from pillow_heif import register_heif_opener

    register_heif_opener()
    data = read_file(path) if data is None else data
    try:
        image = Image.open(io.BytesIO(data))
        limits.check_tiles(image, len(data))
        image.load()
    except (
        OSError,
        UnidentifiedImageError,
        ValueError,
        SyntaxError,  # Pillow's PNG plugin: "broken PNG file"
        EOFError,  # pillow-heif: "Decoder plugin generated an error: Unexpected end of file"
        RuntimeError,  # pillow-heif: libheif's security limits
        Image.DecompressionBombError,
    ) as exc:
        raise DepthError(f"{path}: cannot decode the photo: {exc}") from exc
    return image
