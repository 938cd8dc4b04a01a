"""GPU path speed: the CuPy backend against the device's own copy bandwidth and the NumPy path.

Measured in one run on one device (issue 18's goals):
  1. device-to-device copy bandwidth (cudaMemcpyAsync, bytes read + written), and pinned host↔device
     bandwidth both ways: the baselines;
  2. uint8 → hdis on a batch of 64 maps of 4032×3024 already on the device: the kernel alone and
     ``convert_device`` end to end, as a fraction of (1) (goal ≥ 80%, bytes read + written);
  3. host 768×576 maps → host rows, transfers included: maps/s (goal ≥ 20,000) and the ratio to the
     PCIe transfer floor of the same bytes (goal ≤ 1.5×);
  4. device-resident 4032×3024 maps (a model's output) → device rows, against the NumPy backend on
     this machine's CPU (goal ≥ 100×);
  5. 64 maps of 64 mappings (photos with their own zNear/zFar, fresh tables each time) in one call,
     against 64 one-map calls measured alternately in the same run: 768×576 host maps and device maps;
NVML utilisation and memory, sampled during each measurement, are printed beside the figures.
Without a usable GPU it says so and exits with status 0.
The pipeline's share (conversion stage < 5% of wall time) is bench/bench_pipeline.py's to measure.
Run: python bench/bench_gpu.py [--maps 64] [--small-maps 4096] [--mappings 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
from common import median_of

from gpu_depth import DepthMapping
from gpu_depth.backends import cupy_unavailable
from gpu_depth.backends.numpy_backend import NumpyBackend
from gpu_depth.core.formats import PixelFormat

BIG, SMALL = (4032, 3024), (768, 576)
MAPPING = DepthMapping("apple-gray", near=0.5, far=8.0)
HDIS = PixelFormat.HDIS


class Sampler:
    """NVML utilisation and memory of the device, sampled on a thread while a measurement runs."""

    def __init__(self, device, period: float = 0.02) -> None:
        self.period, self.samples, self._stop = period, [], threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            try:
                self._handle = pynvml.nvmlDeviceGetHandleByPciBusId(device.pci_bus_id)
            except pynvml.NVMLError:  # bus id spelt differently: CUDA and NVML orders usually agree
                self._handle = pynvml.nvmlDeviceGetHandleByIndex(device.id)
            self.total = pynvml.nvmlDeviceGetMemoryInfo(self._handle).total
        except Exception as exc:  # nvidia-ml-py missing, or NVML refuses
            self._nvml, self.reason = None, f"NVML not available ({exc})"

    def __enter__(self) -> Sampler:
        self.samples, self._stop = [], threading.Event()
        if self._nvml is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._nvml is not None:
            self._stop.set()
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            rates = self._nvml.nvmlDeviceGetUtilizationRates(self._handle)
            memory = self._nvml.nvmlDeviceGetMemoryInfo(self._handle)
            self.samples.append((rates.gpu, memory.used))
            time.sleep(self.period)

    def summary(self) -> str:
        if self._nvml is None:
            return self.reason
        if not self.samples:
            return "NVML: no sample (measurement shorter than the sampling period)"
        utilisation = [s[0] for s in self.samples]
        peak = max(s[1] for s in self.samples)
        return (
            f"NVML: utilisation mean {statistics.mean(utilisation):.0f}% max {max(utilisation)}%, "
            f"memory used peak {peak >> 20} of {self.total >> 20} MiB ({len(self.samples)} samples)"
        )


def device_seconds(cupy, func: Callable[[], object], repeat: int) -> float:
    """Median time between CUDA events around ``func`` on the current stream (after a warm-up)."""
    func()
    times = []
    for _ in range(repeat):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        func()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end) / 1e3)
    return statistics.median(times)


def copy_bandwidth(cupy, nbytes: int, repeat: int) -> float:
    """Device-to-device cudaMemcpyAsync, bytes read + written per second."""
    source, target = cupy.empty(nbytes, cupy.uint8), cupy.empty(nbytes, cupy.uint8)
    source.fill(7)
    stream = cupy.cuda.get_current_stream()
    kind = cupy.cuda.runtime.memcpyDeviceToDevice

    def copy() -> None:
        cupy.cuda.runtime.memcpyAsync(target.data.ptr, source.data.ptr, nbytes, kind, stream.ptr)

    return 2 * nbytes / device_seconds(cupy, copy, repeat)


def pcie_bandwidth(cupy, nbytes: int, repeat: int) -> tuple[float, float]:
    """Pinned host → device and device → host copies on the current stream: bytes per second each way."""
    import cupyx

    host, device = cupyx.empty_pinned(nbytes, np.uint8), cupy.empty(nbytes, cupy.uint8)
    host[:] = 7
    stream = cupy.cuda.get_current_stream()
    up = device_seconds(cupy, lambda: device.set(host, stream=stream), repeat)
    down = device_seconds(cupy, lambda: device.get(stream=stream, out=host, blocking=False), repeat)
    return nbytes / up, nbytes / down


def verdict(ok: bool) -> str:
    return "goal met" if ok else "GOAL MISSED"


def device_batch(cupy, backend, sampler: Sampler, copy: float, count: int, repeat: int) -> None:
    """uint8 → hdis on a batch already on the device: the kernel alone, then ``convert_device``."""
    from gpu_depth.backends import kernel_plan as kp
    from gpu_depth.backends.cupy_backend import BLOCKS_PER_SM, kernel_module

    width, height = BIG
    batch = cupy.asarray(np.random.default_rng(1).integers(0, 256, (count, height, width), dtype=np.uint8))
    plan = kp.plan_convert([(height, width)] * count, np.dtype("uint8"), HDIS, 1, None, packed=True)
    table = cupy.asarray(MAPPING.lookup_table("uint8", HDIS))
    mappings = [MAPPING] * count
    out, flat = cupy.empty(plan.out_size, HDIS.dtype), batch.ravel()
    module = kernel_module()
    blocks = BLOCKS_PER_SM * cupy.cuda.Device().attributes["MultiProcessorCount"]

    def launch(kernel: str, grid: tuple, block: tuple, kernel_args: tuple) -> None:
        module.get_function(kernel)(grid, block, kernel_args)

    moved = count * width * height * (1 + HDIS.bytes_per_pixel)  # bytes read + written
    with sampler:
        kernel = device_seconds(
            cupy, lambda: kp.run_convert(launch, cupy, plan, mappings, table, flat, out, blocks), repeat
        )
    print(
        f"uint8->hdis kernel, {count} x {width}x{height} on the device: {moved / kernel / 1e9:7.1f} GB/s = "
        f"{moved / kernel / copy:5.1%} of copy ({verdict(moved / kernel >= 0.8 * copy)})   [{sampler.summary()}]"
    )
    maps = list(batch)
    with sampler:
        whole = median_of(lambda: backend.convert_device(maps, MAPPING, HDIS), repeat)
    print(
        f"uint8->hdis convert_device, same batch: {moved / whole / 1e9:7.1f} GB/s = "
        f"{moved / whole / copy:5.1%} of copy ({verdict(moved / whole >= 0.8 * copy)}), "
        f"{count / whole:7.0f} maps/s   [{sampler.summary()}]"
    )
    ours = cupy.asnumpy(backend.convert_device(maps[:1], MAPPING, HDIS)[0])
    host = cupy.asnumpy(batch[0])
    numpy_seconds = median_of(lambda: NumpyBackend().convert([host], MAPPING, HDIS, 1, None), repeat)
    expected = NumpyBackend().convert([host], MAPPING, HDIS, 1, None)[0]
    print(f"same bits as the NumPy path: {ours.tobytes() == expected.tobytes()}")
    ratio = numpy_seconds / (whole / count)
    print(
        f"device-resident {width}x{height} maps: GPU {whole / count * 1e3:6.3f} ms/map, NumPy "
        f"{numpy_seconds * 1e3:7.2f} ms/map, ratio {ratio:6.1f}x ({verdict(ratio >= 100)})"
    )


def host_maps(
    backend, sampler: Sampler, pcie: tuple[float, float], count: int, small_count: int, numpy_count: int, repeat: int
) -> None:
    """Host maps → host rows, transfers included: 768×576 maps/s against the PCIe floor, 4032×3024 against NumPy."""
    rng = np.random.default_rng(2)
    width, height = SMALL
    distinct = [rng.integers(0, 256, (height, width), dtype=np.uint8) for _ in range(64)]  # more than the caches
    small = [distinct[i % len(distinct)] for i in range(small_count)]
    with sampler:
        seconds = median_of(lambda: backend.convert(small, MAPPING, HDIS, 1, None), repeat)
    floor = small_count * width * height * (1 / pcie[0] + HDIS.bytes_per_pixel / pcie[1])
    rate = small_count / seconds
    print(
        f"{width}x{height} host maps -> host rows: {rate:9.0f} maps/s ({verdict(rate >= 20_000)}), "
        f"{seconds / floor:4.2f}x the PCIe floor ({verdict(seconds <= 1.5 * floor)})   [{sampler.summary()}]"
    )
    width, height = BIG
    big = [rng.integers(0, 256, (height, width), dtype=np.uint8) for _ in range(count)]
    with sampler:
        gpu = median_of(lambda: backend.convert(big, MAPPING, HDIS, 1, None), repeat) / count
    few = big[:numpy_count]
    cpu = median_of(lambda: NumpyBackend().convert(few, MAPPING, HDIS, 1, None), repeat) / len(few)
    print(
        f"{width}x{height} host maps -> host rows: GPU {gpu * 1e3:6.2f} ms/map, NumPy {cpu * 1e3:7.2f} ms/map, "
        f"ratio {cpu / gpu:6.1f}x   [{sampler.summary()}]"
    )


def many_mappings(cupy, backend, sampler: Sampler, count: int, repeat: int) -> None:
    """``count`` 768×576 uint8 maps, each with its own zNear/zFar, new ones every run (as a pipeline's photos, so
    every table is built and uploaded): one call for all against one call per map, alternately, host and device maps."""
    rng = np.random.default_rng(3)
    width, height = SMALL
    hosts = [rng.integers(0, 256, (height, width), dtype=np.uint8) for _ in range(count)]
    devices = [cupy.asarray(m) for m in hosts]
    runs = iter(range(1 << 30))

    def fresh() -> list[DepthMapping]:
        run = next(runs)
        return [DepthMapping("apple-gray", near=0.2 + 1e-3 * run, far=4.0 + 0.1 * i) for i in range(count)]

    for label, maps, convert in (
        ("host maps -> host rows", hosts, backend.convert),
        ("device maps -> device rows", devices, backend.convert_device),
    ):
        expected = fresh()
        together = [cupy.asnumpy(r).tobytes() for r in convert(maps, expected, HDIS, 1, None)]
        alone = [cupy.asnumpy(convert([m], e, HDIS, 1, None)[0]).tobytes() for m, e in zip(maps, expected, strict=True)]
        numpy_rows = NumpyBackend().convert(hosts, expected, HDIS, 1, None)
        same = together == alone == [r.tobytes() for r in numpy_rows]

        def one_call(maps=maps, convert=convert) -> None:
            convert(maps, fresh(), HDIS, 1, None)
            cupy.cuda.get_current_stream().synchronize()

        def per_map(maps=maps, convert=convert) -> None:
            for values, mapping in zip(maps, fresh(), strict=True):
                convert([values], mapping, HDIS, 1, None)
            cupy.cuda.get_current_stream().synchronize()

        times: dict[str, list[float]] = {"one call": [], "one call per map": []}
        with sampler:
            for _ in range(repeat + 1):  # the first round warms up
                for name, func in (("one call", one_call), ("one call per map", per_map)):
                    started = time.perf_counter()
                    func()
                    times[name].append(time.perf_counter() - started)
        together_s, alone_s = (statistics.median(t[1:]) for t in times.values())
        print(
            f"{count} {width}x{height} {label}, {count} mappings: one call {count / together_s:8.0f} maps/s, "
            f"one call per map {count / alone_s:8.0f} maps/s, ratio {alone_s / together_s:5.2f}x; "
            f"same bits as one-map calls and NumPy: {same}   [{sampler.summary()}]"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=64, help="4032x3024 maps per batch")
    parser.add_argument("--small-maps", type=int, default=4096, help="768x576 host maps")
    parser.add_argument("--numpy-maps", type=int, default=4, help="4032x3024 maps the NumPy path converts")
    parser.add_argument("--mappings", type=int, default=64, help="768x576 maps of as many mappings in one call")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    reason = cupy_unavailable()
    if reason is not None:
        print(f"bench_gpu: no GPU to measure ({reason}); nothing measured")
        return 0
    import cupy

    from gpu_depth.backends.cupy_backend import CupyBackend

    device = cupy.cuda.Device()
    properties = cupy.cuda.runtime.getDeviceProperties(device.id)
    name = properties["name"].decode() if isinstance(properties["name"], bytes) else properties["name"]
    print(
        f"gpu: {name}, {properties['totalGlobalMem'] >> 30} GiB, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}"
    )
    print(f"cupy {cupy.__version__}; host: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    sampler, backend = Sampler(device), CupyBackend()
    width, height = BIG
    with sampler:
        copy = copy_bandwidth(cupy, args.maps * width * height * 3 // 2, args.repeat)
    print(f"device-to-device copy: {copy / 1e9:7.1f} GB/s (read + written)   [{sampler.summary()}]")
    pcie = pcie_bandwidth(cupy, 256 << 20, args.repeat)
    print(f"pinned host->device {pcie[0] / 1e9:6.1f} GB/s, device->host {pcie[1] / 1e9:6.1f} GB/s")
    device_batch(cupy, backend, sampler, copy, args.maps, args.repeat)
    host_maps(backend, sampler, pcie, args.maps, args.small_maps, args.numpy_maps, args.repeat)
    many_mappings(cupy, backend, sampler, args.mappings, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
