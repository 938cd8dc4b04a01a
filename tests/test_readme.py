"""README's promises hold: its Python block runs as written."""

import re
import subprocess
import sys

from helpers import ROOT


def test_readme_python_block_runs(tmp_path):
    block = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block is not None and "attach_depth" in block[1]
    run = subprocess.run([sys.executable, "-c", block[1]], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "portrait.jpg").is_file()
