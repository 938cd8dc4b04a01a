"""Without real CuPy, the stream simulator (tests/fake_cupy) stands in for it, so the CuPy backend runs."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("cupy") is None:
    sys.path.insert(0, str(Path(__file__).parent / "fake_cupy"))
