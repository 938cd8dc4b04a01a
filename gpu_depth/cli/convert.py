"""``gpu-depth convert``: gather the jobs, run the pipeline, write the report, choose the exit code."""

from __future__ import annotations

import argparse
import functools
import json
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .. import __version__
from ..backends import select_backend
from ..core import orientation
from ..core.mapping import DepthMapping
from ..errors import DepthError
from ..pipeline import stages
from ..pipeline.jobs import (
    Job,
    pair_folders,
    parse_intrinsics,
    parse_shard,
    read_manifest,
    searched,
    shard_from_environment,
)
from ..pipeline.local import run
from ..pipeline.options import Options
from ..pipeline.report import Progress, Report, described
from ..pipeline.stages import in_shard

#: Which end of the map is near, for the presets where it is a question.
NEAR_END = {
    "apple-gray": "black = near",
    "inverted-gray": "white = near",
    "inverse-gray": "black = near, linear in disparity",
    "relative-disparity": "larger = nearer",
}


def run_convert(args: argparse.Namespace) -> int:
    """Everything that can be checked before any item is (options, inputs, containers) raises DepthError (exit
    2) before anything is written; then the run, its report and summary.  Exit 0, or 1 when items failed or
    nothing matched, or 130 on Ctrl-C (the rest is done by ``--resume``)."""
    out = args.out or args.out_dir
    if out is None:
        raise DepthError("name the output folder (OUT or --out)")
    options = _options(args, out)
    jobs, unmatched = _jobs(args, out)
    _check_containers(jobs, options)
    for line in unmatched:
        print(f"gpu-depth: unmatched: {line}", file=sys.stderr)
    if not jobs:
        print(f"gpu-depth: nothing to convert: {_looked_for(args)}", file=sys.stderr)
        return 1
    if args.engine == "local":  # the backend in use, for the progress line
        options = replace(options, backend=select_backend(options.backend).name)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DepthError(f"{out}: cannot create the output folder: {exc.strerror or exc}") from exc
    report = Report(args.report or out / _report_name(options.shard), _run_header(options))
    total = sum(in_shard(job, options) for job in jobs)
    progress = Progress(total, options.backend, not args.quiet, args.progress_interval)
    tally = Tally()
    signals: list[int] = []

    def on_result(line: dict) -> None:
        report.write(line)
        progress.advance(line["status"], line.get("backend"))
        tally.add(line)
        if line["status"] == "failed":  # named once, whether the error names the photo or not
            error = line["error"]
            progress.write(f"gpu-depth: {error if error.startswith(line['photo']) else line['photo'] + ': ' + error}")
        elif line.get("warning"):
            progress.write(f"gpu-depth: {line['photo']}: warning: {line['warning']}")

    def on_signal(number: int) -> None:
        signals.append(number)
        again = "; Ctrl-C again stops now" if number == signal.SIGINT else ""
        progress.write(f"gpu-depth: interrupted: finishing the items in flight{again}")

    try:
        summary = _engine(args)(jobs, options, on_result, on_signal=on_signal)
    except KeyboardInterrupt:
        signals.append(signal.SIGINT)
        progress.write("gpu-depth: stopped now; the items in flight were not finished")
        summary = tally.summary(options.backend)
    finally:
        progress.close()
    summary.update(
        run_id=report.run_id,
        unmatched=len(unmatched),
        mapping=_described(options),
        depth_m=tally.metres.span(),
        larger_than_photo=tally.larger,
    )
    report.write({"summary": summary})
    report.close()
    _print_summary(summary, report, tally)
    if args.json and not report.to_stdout:
        print(json.dumps(summary), flush=True)
    if summary["interrupted"]:
        return 130 if signal.SIGINT in signals else 1
    return 1 if summary["failed"] else 0


def _print_summary(summary: dict, report: Report, tally: Tally) -> None:
    where = "stdout" if report.to_stdout else str(report.path)
    print(
        f"gpu-depth: {summary['ok']} converted, {summary['skipped']} skipped, {summary['failed']} failed, "
        f"{summary['unmatched']} unmatched in {summary['seconds']:.1f}s with the {summary['backend']} backend; "
        f"report: {where}",
        file=sys.stderr,
    )
    print(f"gpu-depth: mapping {summary['mapping']}{tally.metres.text()}", file=sys.stderr)
    if tally.larger:
        print(f"gpu-depth: {tally.larger} stored maps are larger than their photo (--depth-size)", file=sys.stderr)
    if tally.kept_mattes:
        print(
            f"gpu-depth: {tally.kept_mattes} outputs keep their photo's own mattes (mattes_kept in the report; "
            "--drop-mattes drops them)",
            file=sys.stderr,
        )
    if summary["interrupted"]:
        print("gpu-depth: interrupted — rerun with --resume to convert the rest", file=sys.stderr)


def _run_header(options: Options) -> dict:
    return {"gpu_depth": __version__, "argv": sys.argv[1:], "options": described(options)}


class Tally:
    """What the driver saw of the run's items: counts, the metre range, maps larger than their photo, outputs
    keeping the photo's own mattes; the
    summary of a run stopped at once (a second Ctrl-C) comes from it."""

    def __init__(self) -> None:
        self.counts = {"ok": 0, "failed": 0, "skipped": 0}
        self.metres = MetreRange()
        self.larger = 0
        self.kept_mattes = 0
        self.start = time.perf_counter()

    def add(self, line: dict) -> None:
        self.counts[line["status"]] += 1
        self.metres.add(line.get("depth_m"))
        self.larger += line.get("warning") is not None and line["status"] == "ok"
        self.kept_mattes += bool(line.get("mattes_kept"))

    def summary(self, backend: str) -> dict:
        return stages.summary(self.counts, True, backend, time.perf_counter() - self.start)


def _looked_for(args: argparse.Namespace) -> str:
    if args.photos:
        return searched(args.photos, args.depth, args.depth_suffix, args.recursive)
    return f"the manifest {args.manifest} lists no item"


def _check_containers(jobs: list[Job], options: Options) -> None:
    """Every photo can become an output: with ``--container same`` it must be HEIC, JPEG or DNG."""
    for job in jobs:
        try:
            stages.output_path(job, options)
        except DepthError:
            kind = job.photo.suffix.lstrip(".").upper() or "suffix-less"
            raise DepthError(
                f"{job.photo}: {kind} photos cannot keep their container: give --container heic, jpeg or dng"
            ) from None


def _options(args: argparse.Namespace, out: Path) -> Options:
    extra = {} if args.workers is None else {"workers": args.workers}
    near, far = args.near, args.far
    if args.example and near is None and far is None:
        from ..pipeline.example import FAR, NEAR

        near, far = NEAR, FAR
    _check_numbers(args, near, far)
    if args.ray_address and args.engine != "ray":
        raise DepthError("--ray-address needs --engine ray")
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
        overwrite=args.overwrite or args.example,  # the example's outputs are remade each time
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


def _check_numbers(args: argparse.Namespace, near: float | None, far: float | None) -> None:
    """The numeric options' ranges, each error naming its flag."""
    if args.batch_size < 1 or (args.workers is not None and args.workers < 1):
        raise DepthError("--batch-size and --workers must be at least 1")
    if not 0 <= args.quality <= 100:
        raise DepthError(f"--quality must be 0-100, got {args.quality}")
    if args.progress_interval <= 0:
        raise DepthError(f"--progress-interval must be more than 0 seconds, got {args.progress_interval:g}")
    for flag, value in (("--near", near), ("--far", far)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise DepthError(f"{flag} must be a distance in metres above 0, got {value:g}")
    if near is not None and far is not None and near >= far:
        raise DepthError(f"--near ({near:g} m) must be less than --far ({far:g} m)")


def _mapping(options: Options) -> DepthMapping:
    rig = {"focal_px": options.focal_px, "baseline": options.baseline, "doffs": options.doffs}
    return DepthMapping(options.preset, options.near, options.far, depth_scale=options.depth_scale, **rig)


def _described(options: Options) -> str:
    """The run's mapping in words; a manifest that gives near/far/depth_scale per row has one per item."""
    end = f" ({NEAR_END[options.preset]})" if options.preset in NEAR_END else ""
    try:
        return _mapping(options).describe() + end
    except DepthError:
        return f"{options.preset}{end}, per manifest row (each item's is in the report)"


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
    return pair_folders(args.photos, args.depth, args.depth_suffix, args.recursive, skip=out)


def _engine(args: argparse.Namespace) -> Callable[[list[Job], Options, Callable[[dict], None]], dict]:
    if args.engine == "local":
        return run
    from ..pipeline.ray_engine import run_ray

    return functools.partial(run_ray, address=args.ray_address, num_cpus=args.workers)


def _report_name(selected: tuple[int, int] | None) -> str:
    return f"report.shard-{selected[0]}-of-{selected[1]}.jsonl" if selected else "report.jsonl"


def parse_size(text: str) -> int | tuple[int, int] | None:
    """``--depth-size``: ``"768"`` → 768 (the longest side); ``"768x576"`` → (768, 576); ``"native"`` → None."""
    try:
        if text.isdigit() and int(text) > 0:
            return int(text)
        return None if text == "native" else orientation.parse_size(text)
    except DepthError as exc:
        raise DepthError(
            f"--depth-size must be a longest side (e.g. 768), WIDTHxHEIGHT (e.g. 768x576) or 'native', got {text!r}"
        ) from exc
