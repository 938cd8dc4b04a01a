"""``gpu-depth verify``: why a photo will or will not show its depth (a Portrait) on Apple devices.

Each container's rules live beside its parser (``containers/<format>/rules.py``); this module finds
the container, runs its rules and reports.
"""

from __future__ import annotations

from . import containers
from .containers.rules import Finding, Findings
from .errors import DepthError
from .fileio import PathLike, read_file


def verify(path: PathLike) -> list[Finding]:
    """The findings for a HEIC, JPEG or DNG file; DepthError when it cannot be read."""
    data = read_file(path)
    try:
        return verify_bytes(data)
    except DepthError as exc:
        raise DepthError(f"{path}: {exc}") from exc


def verify_bytes(data: bytes) -> list[Finding]:
    """:func:`verify` on a file's bytes."""
    module = containers.sniff(data)
    if module is None:
        raise DepthError("not a HEIC, JPEG or DNG file")
    findings = Findings()
    containers.check(module, data, findings)
    return list(findings)


def has_errors(findings: list[Finding]) -> bool:
    return any(finding.severity == "error" for finding in findings)


def describe(path: PathLike, findings: list[Finding]) -> str:
    """The text report of one file: a verdict line, then one indented line per finding."""
    verdict = "depth will not be seen" if has_errors(findings) else "ok"
    return "\n".join([f"{path}: {verdict}", *(f"  {finding}" for finding in findings)])
