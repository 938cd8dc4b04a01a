"""Shared test helpers: the real iPhone samples beside the checkout, and referee tools."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

#: The checkout's root folder.
ROOT = Path(__file__).resolve().parents[2]
#: Real iPhone Portrait files (../shared/samples beside the checkout); tests skip when absent.
SAMPLES = Path(os.environ.get("GPU_DEPTH_SAMPLES", ROOT.parent / "shared" / "samples"))


def sample(name: str) -> Path:
    """Path of a real sample file, skipping the test when the samples are not beside the checkout."""
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample {name} not found in {SAMPLES}")
    return path


def tool(name: str) -> str:
    """Path of an independent referee program (heif-info, exiftool …), skipping when not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path
