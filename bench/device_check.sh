#!/usr/bin/env bash
# Issue 3's device checks in one run on an NVIDIA machine, from the repository root, with nothing installed:
# the `gpu` tests (CuPy backend = NumPy backend, byte for byte), then bench/bench_gpu.py and `gpu-depth info`.
# A skipped test counts as a failure here.  Needs python3 with numpy, cupy, nvidia-ml-py, pytest and hypothesis
# (the workplace's device image has them all).
# Logs go to $OUT (the device tool's folder that comes back), else ./device-check.
#
#   bash bench/device_check.sh
set -uo pipefail
out=${OUT:-device-check}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python3 -c "import cupy, numpy, sys; print(sys.version.split()[0], 'cupy', cupy.__version__, numpy.__version__)"
} 2>&1 | tee "$out/machine.txt"

pytest=(python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_cupy_backend.py)
timeout 360 "${pytest[@]}" 2>&1 | tail -n 40 | tee "$out/tests.txt"
tests=${PIPESTATUS[0]}
if grep -q " skipped" "$out/tests.txt"; then  # here a skip means no usable device: that is a failed check
    echo "device_check: gpu tests were skipped" | tee -a "$out/tests.txt"
    tests=1
fi
timeout 200 python3 bench/bench_gpu.py 2>&1 | tee "$out/bench_gpu.txt"
bench=${PIPESTATUS[0]}
python3 -c "import sys; from gpu_depth.cli import main; sys.exit(main(['info']))" 2>&1 | tee "$out/info.txt"

echo "tests exit $tests, bench exit $bench" | tee -a "$out/machine.txt"
exit $((tests != 0 || bench != 0))
