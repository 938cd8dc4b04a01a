#!/usr/bin/env bash
# Issue 18's device checks in one run on an NVIDIA machine, from the repository root, nothing installed:
#   1. machine: nvidia-smi, Python, NumPy, CuPy and CUDA versions;
#   2. NVRTC: the kernel module compiled and loaded (fails fast, with the versions, if CUDA/CuPy cannot);
#   3. the `gpu` tests on the device (CuPy backend = NumPy backend, byte for byte; a skip is a failure here);
#   4. bench/bench_gpu.py (the issue's speed figures) and `gpu-depth info`.
# Every stage has its own time box (about 6 minutes in all, so one 8-minute call leaves room); the full
# logs stream into $OUT (else ./device-check) line by line as they are written, so a killed run keeps them.
# Needs python3 with numpy, cupy, pytest and hypothesis (nvidia-ml-py for NVML figures).
#
#   bash bench/device_check.sh
set -uo pipefail
out=${OUT:-device-check}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
status=0

stage() {  # stage NAME SECONDS COMMAND...: run with a time box, log to $out/NAME.txt as it goes
    local name=$1 seconds=$2
    shift 2
    echo "== $name (time box ${seconds}s)" | tee -a "$out/summary.txt"
    timeout --kill-after=10 "$seconds" "$@" 2>&1 | tee "$out/$name.txt"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 124 ] && echo "== $name: timed out after ${seconds}s" | tee -a "$out/summary.txt"
    echo "== $name: exit $rc" | tee -a "$out/summary.txt"
    return "$rc"
}

stage machine 30 bash -c '
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python3 -c "import sys, numpy; print(\"python\", sys.version.split()[0], \"numpy\", numpy.__version__)"
    python3 -c "import cupy; print(\"cupy\", cupy.__version__, \"from\", cupy.__file__); \
print(\"cuda runtime\", cupy.cuda.runtime.runtimeGetVersion(), \"driver\", cupy.cuda.runtime.driverGetVersion())"
' || status=1

stage nvrtc 90 python3 -c '
import cupy
from cupy.cuda import nvrtc
from gpu_depth.backends import kernel_plan as kp
from gpu_depth.backends.cupy_backend import kernel_directory, kernel_module
names = [n for text in kp.kernel_sources(kernel_directory()).values() for n in kp.kernel_names(text)]
module = kernel_module()
for name in names:
    module.get_function(name)
print(f"nvrtc {nvrtc.getVersion()}: {len(names)} kernels compiled and loaded on",
      cupy.cuda.runtime.getDeviceProperties(0)["name"])
'
if [ $? != 0 ]; then
    echo "device_check: the kernel module does not compile or load; see $out/nvrtc.txt and $out/machine.txt" \
        | tee -a "$out/summary.txt"
    exit 1
fi

stage tests 200 python3 -m pytest -q -p no:cacheprovider -rs tests/backends/test_cupy_backend.py \
    tests/backends/test_kernels.py::test_kernels_compile_with_nvrtc
tests=$?
if grep -q "skipped" "$out/tests.txt"; then  # here a skip means no usable device or NVRTC: a failed check
    echo "device_check: tests were skipped" | tee -a "$out/summary.txt"
    tests=1
fi
[ "$tests" = 0 ] || status=1

stage bench_gpu 150 python3 bench/bench_gpu.py || status=1
stage info 20 python3 -m gpu_depth info || status=1

echo "device_check: exit $status" | tee -a "$out/summary.txt"
exit "$status"
