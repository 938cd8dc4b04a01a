"""Every reader on the lossless-JPEG worst cases, against ``gpu_depth.limits.READ_BUDGETS``.

A JPEG photo carries a depth map of one-bit codes (the fewest bits a sample can take: the most samples
a byte of data can make a reader decode): 4096x2048 in 1 MB and 8192x8192 (the 64-Mpix limit) in 8 MB.
Each reader runs in a fresh process; its CPU seconds and the peak memory it added are printed with the
file's budget.  ``--numpy`` decodes with NumPy (as where the package was built without a C compiler).

    python bench/budget_ljpeg.py [--numpy]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_depth import DepthData, limits
from gpu_depth.containers.jpeg import plugin as jpeg

READERS = {
    "read_depth": "from gpu_depth import read_depth; read_depth(path)",
    "verify": "from gpu_depth.verify import verify; verify(path)",
    "inspect": "from gpu_depth.cli.main import main; main(['inspect', '--json', str(path)])",
    "attach (replace)": "from gpu_depth import attach_depth; attach_depth(path, depth, out, replace=True)",
}

CASE = """
import resource, sys, time
from pathlib import Path
import numpy as np
from unittest import mock
from gpu_depth import DepthData
from gpu_depth.containers.jpeg import ljpeg
def high_water():  # MiB; ru_maxrss would carry over the parent's from before the exec
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024
path, out = Path(sys.argv[1]), Path(sys.argv[2])
depth = DepthData.from_array(np.full((48, 64), 1.5), "hdis")
patch = mock.patch.object(ljpeg, "_compiled", None) if sys.argv[3] == "numpy" else mock.MagicMock()
before, peak = resource.getrusage(resource.RUSAGE_SELF), high_water()
with patch:
    {code}
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
print(json.dumps([cpu, high_water() - peak]))
"""


def photo_with_map(height: int, width: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(buffer, "JPEG", quality=90)
    return jpeg.attach_depth(buffer.getvalue(), DepthData.from_array(np.full((height, width), 1.5), "hdis"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numpy", action="store_true", help="decode with NumPy, not the compiled decoder")
    args = parser.parse_args()
    decoder = "numpy" if args.numpy else "compiled"
    print(f"| file | reader ({decoder}) | CPU (s) | peak added (MiB) | budget |")
    print("|---|---|---:|---:|---|")
    with tempfile.TemporaryDirectory() as folder:
        for height, width in ((2048, 4096), (8192, 8192)):
            path = Path(folder) / f"map-{width}x{height}.jpg"
            path.write_bytes(photo_with_map(height, width))
            memory, cpu_budget = limits.read_budget(path.stat().st_size)
            for name, code in READERS.items():
                script = "import json\n" + CASE.replace("{code}", code)
                run = subprocess.run(
                    [sys.executable, "-c", script, str(path), str(Path(folder) / "out.jpg"), decoder],
                    capture_output=True,
                    text=True,
                )
                if run.returncode:
                    print(f"| {path.name} | {name} | failed: {run.stderr.strip().splitlines()[-1]} | | |")
                    continue
                cpu, peak = json.loads(run.stdout.strip().splitlines()[-1])
                over = cpu > cpu_budget or peak > memory / 2**20
                budget = f"{cpu_budget:g} s, {memory >> 20} MiB" + (" **over**" if over else "")
                size = f"{path.name} ({path.stat().st_size / 2**20:.1f} MiB)"
                print(f"| {size} | {name} | {cpu:.2f} | {peak:.0f} | {budget} |")


if __name__ == "__main__":
    main()
