"""Our C extensions built with AddressSanitizer and UBSan, run by a child Python: any out-of-bounds access or
undefined behaviour aborts it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from . import ROOT

FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-O1"]
#: Loads the sanitized build (argv[1]) as the module its package imports as _compiled: ``compiled``.
LOADER = """
import importlib.machinery, importlib.util, sys
loader = importlib.machinery.ExtensionFileLoader({name!r}, sys.argv[1])
compiled = importlib.util.module_from_spec(importlib.util.spec_from_loader({name!r}, loader))
loader.exec_module(compiled)
"""


def run_sanitized(source: Path, folder: Path, script: str, *extra_flags: str) -> str:
    """``script`` run by a child Python after the sanitized build of ``source`` is loaded as ``compiled``
    (the tests' folders importable); its standard output.  Skips where gcc cannot build so."""
    compiler = shutil.which("gcc") or pytest.skip("gcc is not installed")
    library = folder / f"{source.stem}.so"
    include = sysconfig.get_paths()["include"]
    build = subprocess.run(
        [compiler, *FLAGS, *extra_flags, "-shared", "-fPIC", f"-I{include}", str(source), "-o", str(library)],
        capture_output=True,
    )
    if build.returncode != 0:
        pytest.skip(f"gcc cannot build with AddressSanitizer and UBSan here: {build.stderr.decode()[-300:]}")
    libasan = subprocess.run([compiler, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip("libasan.so not found")
    tests = ROOT / "tests"
    environment = {
        **os.environ,
        "LD_PRELOAD": libasan,
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        "PYTHONPATH": os.pathsep.join(str(path) for path in (ROOT, tests, *tests.glob("*/"), *tests.glob("*/*/"))),
    }
    code = LOADER.format(name=source.stem) + script
    run = subprocess.run([sys.executable, "-c", code, str(library)], env=environment, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    return run.stdout
