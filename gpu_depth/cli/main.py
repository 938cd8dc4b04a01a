"""The ``gpu-depth`` command line: a thin layer over the library.

Exit codes: 0 success; 1 some items or files failed (each named on stderr), nothing matched, or the
reader of the output went away; 2 bad usage or a fatal error (one line on stderr); 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..core.auxiliary import KINDS as MATTE_KINDS
from ..core.formats import PixelFormat
from ..core.mapping import Preset
from ..errors import DepthError

EPILOG = """examples:
  gpu-depth convert --example out/
  gpu-depth convert --photos photos/ --depth depth/ --depth-suffix _depth --near 0.3 --far 12 --out out/
  gpu-depth convert --manifest pairs.csv --preset kitti --container heic --depth-size 768x576 --out out/
  gpu-depth inspect out/*.heic
  gpu-depth verify out/*.heic out/*.jpg
"""


#: What ``extract`` writes into a folder.
EXTRACT_FORMATS = ("npy", "png", "tif")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help with each option's default (where it has one), and examples kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or action.help is None:
            return action.help or ""
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line naming the option, and exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _command(commands, name: str, summary: str, examples: Sequence[str]) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` shows the defaults and ``examples``."""
    epilog = "examples:\n" + "\n".join(f"  gpu-depth {name} {example}" for example in examples)
    return commands.add_parser(name, help=summary, description=summary, epilog=epilog, formatter_class=_HelpFormatter)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        status = args.run(args)
        sys.stdout.flush()
        return status
    except DepthError as exc:
        print(f"gpu-depth: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of the output (head, less) has gone: stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # or Python complains again at exit
        return 1
    except KeyboardInterrupt:
        print("gpu-depth: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gpu-depth",
        description="Convert depth maps to Apple depth/disparity and attach them to HEIC, JPEG and DNG photos.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gpu-depth {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _convert_parser(_command(commands, "convert", "attach depth maps to photos, in bulk", CONVERT_EXAMPLES))
    inspect = _command(commands, "inspect", "what depth a file holds", ["IMG_1.heic", "out/*.jpg --json"])
    inspect.add_argument("files", nargs="+", type=Path, help="HEIC, JPEG or DNG files")
    inspect.add_argument("--json", action="store_true", help="one JSON object per file")
    inspect.set_defaults(run=_inspect)
    extract = _command(
        commands,
        "extract",
        "save files' depth as .npy, 16-bit .png or float .tif",
        ["IMG_1.heic --out IMG_1.npy", "out/*.heic --out maps/ --format png"],
    )
    extract.add_argument("files", nargs="+", type=Path, help="HEIC, JPEG or DNG files")
    extract.add_argument(
        "--out", type=Path, required=True, help="output file (one input; its suffix picks the format) or folder"
    )
    extract.add_argument(
        "--format", choices=EXTRACT_FORMATS, default="npy", help="format of the files written into an --out folder"
    )
    extract.add_argument(
        "--aux", choices=list(MATTE_KINDS), help="save this matte (8-bit .png or .npy; folder: STEM-KIND.png)"
    )
    extract.set_defaults(run=_extract)
    preview = _command(
        commands, "preview", "PNG of the photo beside its colour-mapped depth", ["IMG_1.heic --out IMG_1.png"]
    )
    preview.add_argument("file", type=Path, help="a HEIC, JPEG or DNG file with depth")
    preview.add_argument("--out", type=Path, help="default: FILE's stem + -preview.png in the current folder")
    preview.set_defaults(run=_preview)
    _command(commands, "info", "backend, GPU and library versions", [""]).set_defaults(run=_info)
    verify = _command(
        commands,
        "verify",
        "why a photo's depth will or will not show on Apple devices",
        ["IMG_1.heic", "out/*.heic out/*.jpg --json"],
    )
    verify.add_argument("files", nargs="+", type=Path, help="HEIC, JPEG or DNG files")
    verify.add_argument("--json", action="store_true", help="one JSON object per file")
    verify.set_defaults(run=_verify)
    completion = _command(
        commands, "completion", "print a shell completion script (needs shtab)", ["bash > ~/.gpu-depth.bash"]
    )
    completion.add_argument("shell", choices=("bash", "zsh", "tcsh"), help="the shell to complete in")
    completion.set_defaults(run=_completion, parser=parser)
    return parser


#: x265's presets, fastest first (--encoder-preset).
X265_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
CONVERT_EXAMPLES = (
    "--example out/",
    "--photos photos/ --depth depth/ --depth-suffix _depth --near 0.3 --far 12 --out out/",
    "-r --photos photos/ --depth depth/ --preset relative-disparity --near 0.5 --far 20 --out out/ --resume",
    "--manifest pairs.csv --preset kitti --container heic --out out/ --report - --quiet",
    "--photo IMG_1.jpg --depth IMG_1.png --near 0.5 --far 8 --out out/ --json",
)


def _convert_parser(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("out_dir", nargs="?", type=Path, metavar="OUT", help="output folder (or --out)")
    sources = sub.add_argument_group("inputs (one of)")
    sources.add_argument("--photos", type=Path, help="folder of photos, paired with --depth FOLDER by file stem")
    sources.add_argument("--depth", type=Path, help="folder of depth maps (with --photos) or one map (with --photo)")
    sources.add_argument("--depth-suffix", default="", help="depth map stem = photo stem + this (e.g. _depth)")
    sources.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="--photos/--depth: also pair the photos in subfolders with the maps in the same subfolders of --depth; "
        "outputs keep the subfolders under --out",
    )
    sources.add_argument("--manifest", type=Path, help="CSV or JSON Lines: photo, depth[, near, far, format]")
    sources.add_argument("--photo", type=Path, help="one photo (with --depth FILE)")
    sources.add_argument("--example", action="store_true", help="convert the built-in procedural example")
    sub.add_argument("--out", type=Path, help="output folder")
    mapping = sub.add_argument_group("depth values")
    mapping.add_argument(
        "--preset",
        choices=[p.value for p in Preset],
        help="how the maps' values read (default: metric with --depth-scale, else apple-gray). apple-gray: black = "
        "near, white = far (Apple's); inverted-gray: white = near (Facebook 3D photos); visualised Depth Anything/"
        "MiDaS PNGs: relative-disparity (white = near); see README",
    )
    mapping.add_argument("--near", type=float, help="zNear in metres, > 0 (gray and relative presets)")
    mapping.add_argument("--far", type=float, help="zFar in metres, > --near (gray and relative presets)")
    mapping.add_argument(
        "--depth-scale",
        type=float,
        help="integer maps: codes per metre (TUM 5000, mm 1000, KITTI 256), or per pixel (disparity-px); 0 = invalid",
    )
    mapping.add_argument("--focal-px", type=float, help="disparity-px: focal length in pixels")
    mapping.add_argument("--baseline", type=float, help="disparity-px: stereo baseline in metres")
    mapping.add_argument(
        "--doffs", type=float, default=0.0, help="disparity-px: disparity offset in pixels (Middlebury)"
    )
    mapping.add_argument(
        "--holes",
        choices=("fill", "keep"),
        default="fill",
        help="invalid pixels: fill from the farther valid neighbour (filtered), or keep them as holes (unfiltered)",
    )
    mapping.add_argument(
        "--intrinsics", help="fx,fy,cx,cy of the depth map's camera in its pixels (written to the XMP)"
    )
    output = sub.add_argument_group("outputs")
    output.add_argument(
        "--container",
        choices=("heic", "jpeg", "dng", "same"),
        default="same",
        help="container of the outputs; same keeps each photo's (PNG, TIFF and WebP photos need another)",
    )
    output.add_argument(
        "--pixel-format",
        choices=[f.fourcc for f in PixelFormat],
        default="hdis",
        help="what the map holds: half/float disparity (1/m) or depth (m); iPhones write hdis",
    )
    output.add_argument(
        "--depth-size",
        default="768",
        help="stored map size: a longest side (768, an iPhone's: the photo's aspect, never larger than the photo), "
        "WIDTHxHEIGHT (e.g. 768x576, turned to the photo's orientation), or native (the map's own size)",
    )
    output.add_argument(
        "--fit",
        choices=("error", "stretch"),
        default="error",
        help="what to do when the map's aspect ratio differs from the photo's",
    )
    output.add_argument("--quality", type=int, default=90, help="quality 0-100 when a photo must be re-encoded")
    output.add_argument(
        "--encoder-preset", choices=X265_PRESETS, default="medium", help="x265 preset when re-encoding to HEIC"
    )
    output.add_argument("--gdepth", action="store_true", help="JPEG outputs also carry Google's GDepth (Android)")
    output.add_argument("--replace", action="store_true", help="replace depth a photo already has (Apple's or GDepth)")
    output.add_argument(
        "--depth-xmp",
        choices=("imageio", "iphone"),
        default="imageio",
        help="what the depth XMP says beyond the map (Quality, Filtered, PortraitScore…): as macOS ImageIO writes a "
        "custom map, or as an iPhone Portrait capture",
    )
    output.add_argument(
        "--exif-portrait",
        action="store_true",
        help="also set the photo's Exif CustomRendered to 8 (Portrait), as iPhones do (HEIC and JPEG outputs)",
    )
    output.add_argument(
        "--jpeg-depth",
        choices=("lossless", "baseline"),
        default="lossless",
        help="JPEG outputs: 16-bit lossless map (exact) or 8-bit baseline (iPhone's filtered maps, ±1 code)",
    )
    output.add_argument(
        "--heic-depth-codec",
        choices=("hevc", "jpeg"),
        default="hevc",
        help="HEIC outputs: 8-bit monochrome HEVC map (every HEIF reader), or 16-bit lossless JPEG (see README)",
    )
    output.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs (without it an existing output fails its item)",
    )
    output.add_argument("--resume", action="store_true", help="skip items whose output exists and holds depth")
    mattes = sub.add_argument_group("mattes (HEIC, JPEG and DNG outputs)")
    mattes.add_argument("--matte", type=Path, help="folder of 8-bit mattes (255 = subject), paired by photo stem")
    mattes.add_argument("--matte-suffix", default="", help="matte stem = photo stem + this (e.g. _matte)")
    mattes.add_argument(
        "--matte-kind", choices=list(MATTE_KINDS), default="portrait-effects", help="the kind of the --matte images"
    )
    mattes.add_argument(
        "--drop-mattes", action="store_true", help="drop the photos' own mattes (kept by default, listed in the report)"
    )
    running = sub.add_argument_group("running")
    running.add_argument(
        "--backend", choices=("auto", "cupy", "numpy"), default="auto", help="conversion on the GPU (cupy) or CPU"
    )
    running.add_argument(
        "--batch-size",
        type=int,
        default=16,
        help="maps converted per backend call (the GPU's, or NumPy's with one worker)",
    )
    running.add_argument("--workers", type=int, help="encoder processes, or a local Ray's CPUs (default: all cores)")
    running.add_argument("--engine", choices=("local", "ray"), default="local", help="run here, or on Ray (extra: ray)")
    running.add_argument("--ray-address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    running.add_argument("--shard", help="I/N: do shard I of N (default: from Slurm/AWS Batch/Kubernetes variables)")
    reporting = sub.add_argument_group("reporting")
    reporting.add_argument(
        "--report",
        type=Path,
        help="JSON Lines report, written anew each run; - for stdout (default: OUT/report[.shard-I-of-N].jsonl)",
    )
    reporting.add_argument("--json", action="store_true", help="print the run's summary as one JSON line on stdout")
    reporting.add_argument("--quiet", action="store_true", help="no progress (errors and the summary still print)")
    reporting.add_argument(
        "--progress-interval",
        type=float,
        default=30.0,
        help="seconds between progress lines when stderr is not a terminal (a batch job's log)",
    )
    sub.set_defaults(run=_convert)


def _convert(args: argparse.Namespace) -> int:
    from .convert import run_convert

    return run_convert(args)


def _inspect(args: argparse.Namespace) -> int:
    """One table (or, with --json, one JSON object of the same keys) per file; a file that cannot be read is
    named on stderr, and its JSON object has only ``file`` and ``error`` set."""
    from ..api import auxiliary_images, read_depth

    failed = 0
    for path in args.files:
        try:
            depth = read_depth(path)
            auxiliary = auxiliary_images(path)
            summary = {"file": str(path), **_location(path), **_describe(depth), "auxiliary": auxiliary, "error": None}
        except DepthError as exc:
            print(f"gpu-depth: {exc}", file=sys.stderr)
            failed += 1
            if args.json:
                print(json.dumps({**dict.fromkeys(INSPECT_KEYS), "file": str(path), "depth": False, "error": str(exc)}))
            continue
        print(json.dumps(summary) if args.json else _table(summary))
    return 1 if failed else 0


def _location(path: Path) -> dict:
    """The container and where in it the depth is (item, MP entry, IFD), as verify finds it."""
    from .. import containers
    from ..fileio import read_file
    from ..verify import verify_bytes

    data = read_file(path)
    where = next((f.where for f in verify_bytes(data) if f.rule.endswith(".depth-found")), None)
    return {"container": containers.sniff(data).NAME, "location": where}


#: The keys of ``inspect --json``'s objects, the same for every file.
INSPECT_KEYS = (
    "file", "container", "location", "depth", "pixel_format", "quantity", "width", "height", "bytes_per_row", "min",
    "max", "invalid_pixels", "accuracy", "filtered", "quality", "depth_data_version", "calibration", "auxiliary",
    "error",
)  # fmt: skip


def _describe(depth) -> dict:
    """What ``inspect`` says of a file's depth (every key None where it has none)."""
    if depth is None:
        return {"depth": False, **dict.fromkeys(INSPECT_KEYS[4:-2])}
    import numpy as np

    values = depth.array
    finite = values[np.isfinite(values)]
    meta = depth.metadata
    return {
        "depth": True,
        "pixel_format": depth.pixel_format.fourcc,
        "quantity": depth.pixel_format.quantity,
        "width": depth.width,
        "height": depth.height,
        "bytes_per_row": depth.bytes_per_row,
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "invalid_pixels": int(values.size - finite.size),
        "accuracy": meta.accuracy,
        "filtered": meta.filtered,
        "quality": meta.quality,
        "depth_data_version": meta.version,
        "calibration": meta.calibration is not None,
    }


def _table(summary: dict) -> str:
    images = ", ".join(f"{a['type']} {a['width']}x{a['height']}" for a in summary["auxiliary"]) or "none"
    if not summary["depth"]:
        return f"{summary['file']}: no depth ({summary['container']}); auxiliary images: {images}"
    summary = {key: value for key, value in summary.items() if key not in ("depth", "error")}
    width = max(map(len, summary))
    shown = {key: "unknown" if value is None else value for key, value in summary.items()}  # the file does not say
    shown["auxiliary"] = images
    return "\n".join(f"{key:<{width}}  {value}" for key, value in shown.items()) + "\n"


def _extract(args: argparse.Namespace) -> int:
    """One file to ``--out`` when it names a file; else each file to ``--out/STEM.FORMAT``
    (``STEM-KIND.png`` or ``.npy`` with ``--aux``), failures named."""
    from ..api import read_auxiliary, read_depth
    from ..depthmaps import save_depth, save_matte

    to_folder = len(args.files) > 1 or args.out.is_dir() or not args.out.suffix
    if to_folder:
        _make_folder(args.out, "--out")
    failed = 0
    for path in args.files:
        name = f"{path.stem}-{args.aux}.{'npy' if args.format == 'npy' else 'png'}" if args.aux else None
        target = (args.out / (name or f"{path.stem}.{args.format}")) if to_folder else args.out
        try:
            if args.aux:
                matte = read_auxiliary(path, args.aux)
                if matte is None:
                    raise DepthError(f"{path}: no {args.aux} matte to extract (--aux)")
                save_matte(matte, target)
            else:
                depth = read_depth(path)
                if depth is None:
                    raise DepthError(f"{path}: no depth to extract")
                save_depth(depth, target)
        except DepthError as exc:
            print(f"gpu-depth: {exc}", file=sys.stderr)
            failed += 1
            continue
        if to_folder:
            print(target)
    return 1 if failed else 0


def _make_folder(folder: Path, flag: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DepthError(f"{flag} {folder}: cannot create the folder: {exc.strerror or exc}") from exc


def _preview(args: argparse.Namespace) -> int:
    from .preview import write_preview

    out = args.out or Path(args.file.stem + "-preview.png")  # the current folder, never the input's
    write_preview(args.file, out)
    print(out)
    return 0


def _completion(args: argparse.Namespace) -> int:
    try:
        import shtab
    except ImportError:
        raise DepthError("completion needs shtab: pip install 'gpu_depth[completion]'") from None
    print(shtab.complete(args.parser, shell=args.shell))
    return 0


def _info(args: argparse.Namespace) -> int:
    from .info import describe

    print(describe())
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Exit 0: no file has an error; 1: some file has; 2: some file cannot be read."""
    from ..verify import describe, has_errors, verify

    status = 0
    for path in args.files:
        try:
            findings = verify(path)
        except DepthError as exc:
            print(f"gpu-depth: {exc}", file=sys.stderr)
            if args.json:
                print(json.dumps({"file": str(path), "error": str(exc)}))
            status = 2
            continue
        status = max(status, int(has_errors(findings)))
        if args.json:
            items = [finding.to_dict() for finding in findings]
            print(json.dumps({"file": str(path), "ok": not has_errors(findings), "findings": items}))
        else:
            print(describe(path, findings))
    return status
