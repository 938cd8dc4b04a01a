"""``gpu-depth convert``: gather the jobs, run the pipeline, write the report, choose the exit code."""

from __future__ import annotations

import argparse
import functools
import math
import sys
from collections.abc import Callable
from pathlib import Path

from ..core import orientation
from ..core.mapping import DepthMapping
from ..errors import DepthError
from ..pipeline.jobs import Job, pair_folders, parse_intrinsics, parse_shard, read_manifest, shard_from_environment
from ..pipeline.local import run
from ..pipeline.options import Options
from ..pipeline.report import Progress, Report
from ..pipeline.stages import in_shard


def run_convert(args: argparse.Namespace) -> int:
    out = args.out or args.out_dir
    if out is None:
        raise DepthError("name the output folder (OUT or --out)")
    options = _options(args, out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DepthError(f"{out}: cannot create the output folder: {exc.strerror or exc}") from exc
    jobs, unmatched = _jobs(args, out)
    report = Report(args.report or out / _report_name(options.shard))
    for line in unmatched:
        print(f"gpu-depth: unmatched: {line}", file=sys.stderr)
    total = sum(in_shard(job, options) for job in jobs)
    progress = Progress(total, options.backend, enabled=False if args.quiet else None)
    metres = MetreRange()
    kept_mattes = [0]

    def on_result(line: dict) -> None:
        report.write(line)
        progress.advance()
        metres.add(line.get("depth_m"))
        kept_mattes[0] += bool(line.get("mattes_kept"))
        if line["status"] == "failed":
            print(f"gpu-depth: {line['photo']}: {line['error']}", file=sys.stderr)

    try:
        summary = _engine(args)(jobs, options, on_result)
    finally:
        progress.close()
    summary.update(unmatched=len(unmatched), mapping=_described(options), depth_m=metres.span())
    report.write({"summary": summary})
    report.close()
    print(
        f"gpu-depth: {summary['ok']} converted, {summary['skipped']} skipped, {summary['failed']} failed, "
        f"{len(unmatched)} unmatched in {summary['seconds']:.1f}s with the {summary['backend']} backend; "
        f"report: {report.path}",
        file=sys.stderr,
    )
    print(f"gpu-depth: mapping {summary['mapping']}{metres.text()}", file=sys.stderr)
    if kept_mattes[0]:
        print(
            f"gpu-depth: {kept_mattes[0]} outputs keep their photo's own mattes (mattes_kept in the report; "
            "--drop-mattes drops them)",
            file=sys.stderr,
        )
    return 1 if summary["failed"] or summary["interrupted"] else 0


def _options(args: argparse.Namespace, out: Path) -> Options:
    extra = {} if args.workers is None else {"workers": args.workers}
    near, far = args.near, args.far
    if args.example and near is None and far is None:
        from ..pipeline.example import FAR, NEAR

        near, far = NEAR, FAR
    if args.batch_size < 1 or (args.workers is not None and args.workers < 1):
        raise DepthError("--batch-size and --workers must be at least 1")
    preset = args.preset or ("metric" if args.depth_scale is not None else "apple-gray")
    intrinsics = parse_intrinsics(args.intrinsics) if args.intrinsics else None
    options = Options(
        out=out,
        container=args.container,
        pixel_format=args.pixel_format,
        preset=preset,
        near=near,
        far=far,
        depth_scale=args.depth_scale,
        focal_px=args.focal_px,
        baseline=args.baseline,
        doffs=args.doffs,
        holes=args.holes,
        intrinsics=intrinsics,
        depth_size=parse_size(args.depth_size),
        stretch=args.fit == "stretch",
        backend=args.backend,
        batch_size=args.batch_size,
        resume=args.resume,
        shard=parse_shard(args.shard) if args.shard else shard_from_environment(),
        quality=args.quality,
        encoder_preset=args.encoder_preset,
        attach={
            "gdepth": args.gdepth,
            "coding": args.jpeg_depth,
            "depth_codec": args.heic_depth_codec,
            "replace": args.replace,
            "xmp_profile": args.depth_xmp,
            "exif_portrait": args.exif_portrait,
        },
        mattes=_matte_folder(args.matte),
        matte_suffix=args.matte_suffix,
        matte_kind=args.matte_kind,
        drop_mattes=args.drop_mattes,
        **extra,
    )
    if not args.manifest:  # a manifest may give near/far/depth_scale per item; otherwise check them now
        _mapping(options)
    return options


def _matte_folder(folder: Path | None) -> Path | None:
    if folder is not None and not folder.is_dir():
        raise DepthError(f"--matte {folder}: not a folder")
    return folder


def _mapping(options: Options) -> DepthMapping:
    rig = {"focal_px": options.focal_px, "baseline": options.baseline, "doffs": options.doffs}
    return DepthMapping(options.preset, options.near, options.far, depth_scale=options.depth_scale, **rig)


def _described(options: Options) -> str:
    """The run's mapping in words; a manifest that gives near/far/depth_scale per row has one per item."""
    try:
        return _mapping(options).describe()
    except DepthError:
        return f"{options.preset}, per manifest row (each item's is in the report)"


class MetreRange:
    """The nearest and farthest depth (m) of the converted maps, for the summary."""

    def __init__(self) -> None:
        self.near, self.far = math.inf, -math.inf

    def add(self, span: list | None) -> None:
        if span:
            self.near = min(self.near, span[0])
            self.far = max(self.far, math.inf if span[1] is None else span[1])

    def span(self) -> list[float | None] | None:
        return None if self.near > self.far else [self.near, None if math.isinf(self.far) else self.far]

    def text(self) -> str:
        span = self.span()
        if span is None:
            return ""
        far = "infinity" if span[1] is None else f"{span[1]:.4g} m"
        return f"; depth {span[0]:.4g} m to {far}"


def _jobs(args: argparse.Namespace, out: Path) -> tuple[list[Job], list[str]]:
    chosen = [name for name in ("photos", "manifest", "photo", "example") if getattr(args, name)]
    if len(chosen) != 1:
        raise DepthError(
            "give exactly one input: --photos with --depth, --manifest, --photo with --depth, or --example"
        )
    if args.example:
        from ..pipeline.example import write_example

        photos, depths = write_example(out / "example-inputs")
        return pair_folders(photos, depths)
    if args.manifest:
        return read_manifest(args.manifest), []
    if args.depth is None:
        raise DepthError(f"--{chosen[0]} needs --depth")
    if args.photo:
        return [Job(args.photo, args.depth)], []
    return pair_folders(args.photos, args.depth, args.depth_suffix)


def _engine(args: argparse.Namespace) -> Callable[[list[Job], Options, Callable[[dict], None]], dict]:
    if args.engine == "local":
        if args.ray_address:
            raise DepthError("--ray-address needs --engine ray")
        return run
    from ..pipeline.ray_engine import run_ray

    return functools.partial(run_ray, address=args.ray_address, num_cpus=args.workers)


def _report_name(selected: tuple[int, int] | None) -> str:
    return f"report.shard-{selected[0]}-of-{selected[1]}.jsonl" if selected else "report.jsonl"


def parse_size(text: str) -> tuple[int, int] | None:
    """``--depth-size``: ``"768x576"`` → (768, 576); ``"native"`` → None."""
    try:
        return None if text == "native" else orientation.parse_size(text)
    except DepthError as exc:
        raise DepthError(f"--depth-size must be WIDTHxHEIGHT (e.g. 768x576) or 'native', got {text!r}") from exc
