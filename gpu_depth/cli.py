"""The ``gpu-depth`` command line: a thin layer over the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import DepthError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except DepthError as exc:
        print(f"gpu-depth: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpu-depth",
        description="Convert depth maps to Apple depth/disparity and attach them to HEIC, JPEG and DNG photos.",
    )
    parser.add_argument("--version", action="version", version=f"gpu-depth {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="backend, GPU and library versions")
    info.set_defaults(run=_info)
    return parser


def _info(args: argparse.Namespace) -> int:
    from .sysinfo import describe

    print(describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
