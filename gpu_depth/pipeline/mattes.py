"""Mattes in a conversion run (``convert --matte DIR``): each photo's matte file, paired by stem as depth
maps are, loaded in the worker that attaches it, and what the report says about the photo's own mattes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import containers
from ..core.auxiliary import KINDS
from ..depthmaps import SUFFIXES, load_matte
from ..errors import DepthError
from .jobs import Job
from .options import Options


def matte_file(photo: Path, folder: Path, suffix: str) -> Path | None:
    """``folder/STEM{suffix}.ext`` for the photo's stem (any depth-map suffix), or None; two is an error."""
    stem = photo.stem + suffix
    found = sorted(p for p in folder.glob(f"{stem}.*") if p.suffix.lower() in SUFFIXES and p.stem == stem)
    if len(found) > 1:
        raise DepthError(f"--matte {folder}: several mattes match {photo.name}: {', '.join(p.name for p in found)}")
    return found[0] if found else None


def _own_mattes(data: bytes, parsed: Any) -> list[str]:
    """The kinds of the photo's own mattes (none where its container cannot say: the attach reports that)."""
    source = containers.sniff(data)
    try:
        own = source.auxiliary_images(data, parsed) if hasattr(source, "auxiliary_images") else []
    except DepthError:
        return []
    return [kind for kind, _, _ in own if kind in KINDS]


def matte_arguments(
    job: Job, data: bytes, target: containers.Plugin, options: Options, parsed: Any = None
) -> tuple[dict, dict]:
    """(keyword arguments of :func:`gpu_depth.api.attach`, report fields) for one item: its matte (the
    manifest's, or one ``--matte DIR`` holds in the photo's subfolder) and ``--drop-mattes``; the report lists
    the photo's own mattes that are kept (``mattes_kept``), so a re-depthed photo's old matte is never kept
    silently.  ``parsed``: the photo ``data`` as its container's ``parse`` gives it, or None."""
    path = job.matte
    if path is None and options.mattes is not None:
        path = matte_file(job.photo, options.mattes / job.folder, options.matte_suffix)
    mattes = {options.matte_kind: load_matte(path)} if path is not None else {}
    kept = [] if options.drop_mattes else [k for k in _own_mattes(data, parsed) if k not in mattes]
    fields = {"matte": str(path) if path else None, "mattes_kept": kept}
    if path is None and options.mattes is None and not options.drop_mattes and not kept:
        fields = {}
    if not hasattr(target, "attach_auxiliary"):
        if mattes:
            raise DepthError(f"--matte: a {target.NAME} output takes no mattes")
        return {}, fields
    return {"mattes": mattes, "drop_mattes": options.drop_mattes}, fields
