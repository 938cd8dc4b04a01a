"""The stages one by one: whatever goes wrong with one item is that item's failure."""

import sys
from pathlib import Path

import numpy as np
import pytest

from gpu_depth.core.mapping import DepthMapping
from gpu_depth.pipeline import stages
from gpu_depth.pipeline.jobs import Job
from gpu_depth.pipeline.options import Options


@pytest.mark.parametrize("error", [MemoryError(), ZeroDivisionError("division by zero"), OSError(36, "too long")])
def test_any_exception_while_decoding_is_the_items_failure(tmp_path, monkeypatch, error):
    """Only DepthError was caught: anything else ended the whole run with a traceback."""

    def load(path):
        raise error

    monkeypatch.setattr(stages, "load_depth_file", load)
    item = stages.decode(
        stages.Item(Job(tmp_path / "a.jpg", tmp_path / "a.png"), tmp_path / "out.jpg"), Options(tmp_path)
    )
    assert item.status == "failed" and item.error.startswith(f"unexpected {type(error).__name__}")
    assert "\n" not in item.error


def test_a_conversion_that_raises_fails_only_its_item(tmp_path, monkeypatch):
    def convert(gray, *args, **kwargs):
        if isinstance(gray, list) or gray.shape == (1, 1):
            raise ValueError("bad map")
        return "converted"

    monkeypatch.setattr(stages, "convert", convert)
    batch = [stages.Item(Job(Path(f"{n}.jpg"), Path(f"{n}.png")), Path(f"o{n}.jpg")) for n in range(3)]
    for item, shape in zip(batch, [(2, 2), (1, 1), (2, 2)], strict=True):
        item.gray, item.size = np.zeros(shape, np.uint16), shape
    stages.convert_maps(batch, Options(tmp_path, near=0.5, far=10), "numpy")
    assert [item.status for item in batch] == [None, "failed", None]
    assert batch[1].error == "unexpected ValueError: bad map" and batch[0].depth == "converted"


def test_maps_of_many_mappings_convert_in_one_call_per_format(tmp_path, monkeypatch):
    """Photos with their own zNear/zFar: one backend call per pixel format, each map with its own mapping."""
    calls = []
    real = stages.convert

    def convert(grays, fmt, mappings, **kwargs):
        calls.append((fmt, list(mappings)))
        return real(grays, fmt, mappings, **kwargs)

    monkeypatch.setattr(stages, "convert", convert)
    ranges = [(0.5, 4.0), (1.0, 9.0), (None, None), (0.3, 2.0)]
    formats = [None, None, "fdep", None]
    batch = [
        stages.Item(Job(Path(f"{n}.jpg"), Path(f"{n}.png"), near=near, far=far, pixel_format=fmt), Path(f"o{n}.jpg"))
        for n, ((near, far), fmt) in enumerate(zip(ranges, formats, strict=True))
    ]
    for n, item in enumerate(batch):
        item.gray, item.size, item.map_size = np.full((2, 3), 40 * n, np.uint8), (3, 2), (3, 2)
    stages.convert_maps(batch, Options(tmp_path, near=0.7, far=12.0), "numpy")
    assert [(fmt, [(m.near, m.far) for m in mappings]) for fmt, mappings in calls] == [
        ("hdis", [(0.5, 4.0), (1.0, 9.0), (0.3, 2.0)]),
        ("fdep", [(0.7, 12.0)]),
    ]
    assert [item.details["mapping"] for item in batch] == [
        "apple-gray, near 0.5 m, far 4 m",
        "apple-gray, near 1 m, far 9 m",
        "apple-gray, near 0.7 m, far 12 m",
        "apple-gray, near 0.3 m, far 2 m",
    ]
    for item, (near, far) in zip(batch, [(0.5, 4.0), (1.0, 9.0), (0.7, 12.0), (0.3, 2.0)], strict=True):
        fmt = item.job.pixel_format or "hdis"
        alone = real(np.full((2, 3), 40 * batch.index(item), np.uint8), fmt, DepthMapping("apple-gray", near, far))
        assert item.status is None and item.depth == alone


def test_a_worker_that_dies_fails_its_items_and_a_fresh_pool_goes_on(tmp_path):
    """A worker killed by the system broke the pool: every later item raised BrokenProcessPool and the run ended."""
    from helpers.pipeline import dying_encode

    from gpu_depth.pipeline import local

    names = ["a", "die", "b", "c", "d", "e"]
    finished = {}
    encoders = local._Encoders(1, dying_encode)
    try:
        for name in names:
            item = stages.Item(Job(Path(f"{name}.jpg"), Path(f"{name}.png")), tmp_path / f"{name}.jpg")
            encoders.submit(item, Options(tmp_path), lambda done: finished.setdefault(done.job.photo.stem, done))
        encoders.drain(lambda done: finished.setdefault(done.job.photo.stem, done))
    finally:
        encoders.shutdown()
    assert sorted(finished) == sorted(names)
    assert finished["die"].status == "failed" and "worker process writing it died" in finished["die"].error
    assert [finished[name].status for name in ("d", "e")] == ["ok", "ok"]


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_workers_reuse_the_memory_their_items_free():
    """glibc mapped each item's large buffers afresh and returned them: ~5 ms of page faults an item in a worker."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from helpers.pipeline import page_faults_per_item

    from gpu_depth.pipeline import local

    encoders = local._Encoders(1, stages.encode)
    try:
        in_worker = encoders.pool.submit(page_faults_per_item).result()
    finally:
        encoders.shutdown()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as plain:
        by_default = plain.submit(page_faults_per_item).result()
    assert by_default > 50  # the loop does fault under glibc's defaults: the check below can fail
    assert in_worker < 5


def test_with_numpy_several_workers_do_every_stage_and_write_the_same_bytes(tmp_path, monkeypatch):
    """A driver converting every map held several NumPy workers back (~170 items/s at most on 2 cores, whatever
    their number); each worker now decodes, converts and encodes its own items.  One worker leaves the conversion
    to the driver, beside it.  Both ways write the same files."""
    from helpers.pipeline import make_dataset

    from gpu_depth.pipeline import local
    from gpu_depth.pipeline.jobs import pair_folders

    photos, depths = make_dataset(tmp_path, 6)
    jobs, _ = pair_folders(photos, depths)
    in_driver = []
    monkeypatch.setattr(
        local, "convert_batch", lambda batch, *rest: in_driver.append(batch) or stages.convert_batch(batch, *rest)
    )
    outputs = {}
    for workers in (1, 2):
        options = Options(tmp_path / f"out{workers}", near=0.5, far=10, workers=workers, backend="numpy")
        lines = []
        summary = local.run(jobs, options, lines.append)
        assert summary["ok"] == 6 and {line["status"] for line in lines} == {"ok"}
        assert all(line["convert_s"] > 0 and line["decode_s"] > 0 for line in lines)
        outputs[workers] = {path.name: path.read_bytes() for path in options.out.iterdir() if path.suffix == ".jpg"}
        assert (len(in_driver) > 0) == (workers == 1)
        in_driver.clear()
    assert len(outputs[2]) == 6 and outputs[1] == outputs[2]


def test_after_sigterm_only_the_items_in_flight_finish(tmp_path):
    """SIGTERM let the batches decoded ahead still convert and write (Slurm SIGKILLs 30 s later)."""
    import os
    import signal

    from helpers.pipeline import make_dataset

    from gpu_depth.pipeline import local
    from gpu_depth.pipeline.jobs import pair_folders

    photos, depths = make_dataset(tmp_path, 40)
    lines = []

    def on_result(line):
        lines.append(line)
        if len(lines) == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    options = Options(tmp_path / "out", near=0.5, far=10, batch_size=4, workers=1, backend="numpy")
    before = signal.getsignal(signal.SIGTERM)
    summary = local.run(pair_folders(photos, depths)[0], options, on_result)
    assert summary["interrupted"] and signal.getsignal(signal.SIGTERM) is before
    assert 1 <= len(lines) <= 1 + local._Encoders.IN_FLIGHT * options.workers  # the first, those already in flight
    assert len(list(options.out.glob("p*.jpg"))) == len(lines)


def test_progress_names_the_backend_that_converted_the_items():
    """A Ray run knows its backend only from its items (the driver asked for auto)."""
    import io

    from gpu_depth.pipeline.report import Progress

    stream = io.StringIO()
    progress = Progress(2, "auto", interval=3600, stream=stream)
    progress.advance("ok", "numpy")
    progress.advance("failed")  # a failed item was converted by none
    progress.close()
    (line,) = stream.getvalue().splitlines()
    assert "2/2 items (100%), 1 failed," in line and line.endswith("backend numpy")


@pytest.mark.parametrize("codec", ["hevc", "jpeg"])
def test_the_worker_parses_a_heic_photo_once(tmp_path, monkeypatch, codec):
    """Its report's mattes, the attach's orientation and size, and the attach itself parsed it four times."""
    from helpers.pipeline import make_dataset
    from PIL import Image
    from pillow_heif import from_pillow

    from gpu_depth.containers.heic import isobmff
    from gpu_depth.pipeline.jobs import pair_folders

    photos, depths = make_dataset(tmp_path, 1)
    jpeg = next(photos.iterdir())
    from_pillow(Image.open(jpeg)).save(jpeg.with_suffix(".heic"), quality=80)
    jpeg.unlink()
    (tmp_path / "out").mkdir()
    options = Options(tmp_path / "out", near=0.5, far=10, container="heic", attach={"depth_codec": codec})
    [job], _ = pair_folders(photos, depths)
    [item] = stages.plan([job], options, lambda done: None)
    stages.convert_batch([stages.decode(item, options)], options, "numpy")
    size, parse, sizes = job.photo.stat().st_size, isobmff.parse_file, []
    monkeypatch.setattr(isobmff, "parse_file", lambda data: sizes.append(len(data)) or parse(data))
    assert stages.encode(item, options).status == "ok", item.error
    assert sizes.count(size) == 1


def test_an_item_is_reported_once_its_output_is_committed_and_a_failed_commit_fails_it_alone(tmp_path, monkeypatch):
    """Workers leave the fsync + rename to the driver's threads and go on: nothing is reported before it."""
    import os

    from helpers.pipeline import make_dataset

    from gpu_depth.fileio import TEMP_SUFFIX
    from gpu_depth.pipeline import local
    from gpu_depth.pipeline.jobs import pair_folders

    photos, depths = make_dataset(tmp_path, 6)
    jobs, _ = pair_folders(photos, depths)
    out = tmp_path / "out"
    commit, committed, fsync = stages.commit_temp, set(), os.fsync

    def commit_and_note(temp, path):
        commit(temp, path)
        committed.add(path)

    def fsync_but_p0003(descriptor):  # the driver's commit threads run it (the workers are other processes)
        if ".p0003.jpg." in os.readlink(f"/proc/self/fd/{descriptor}"):
            raise OSError(5, "Input/output error")
        fsync(descriptor)

    monkeypatch.setattr(stages, "commit_temp", commit_and_note)
    monkeypatch.setattr(os, "fsync", fsync_but_p0003)
    lines = []

    def on_result(line):
        lines.append(line)
        output = Path(line["output"])
        assert (line["status"] == "ok") == (output in committed) == output.exists()

    summary = local.run(jobs, Options(out, near=0.5, far=10, workers=2), on_result)
    assert (summary["ok"], summary["failed"]) == (5, 1)
    assert [line["error"] for line in lines if line["status"] == "failed"] == [
        f"{out}/p0003.jpg: write failed: Input/output error"
    ]
    assert sorted(p.name for p in out.iterdir()) == [f"p000{i}.jpg" for i in range(6) if i != 3]
    assert not list(out.glob(f".*{TEMP_SUFFIX}"))


def test_the_report_gives_the_stored_maps_range_and_its_holes(tmp_path):
    from helpers.pipeline import make_dataset

    from gpu_depth import DepthData
    from gpu_depth.pipeline.jobs import pair_folders

    photos, depths = make_dataset(tmp_path, 1)
    (tmp_path / "out").mkdir()
    options = Options(tmp_path / "out", near=0.5, far=10)
    [item] = stages.plan(pair_folders(photos, depths)[0], options, lambda done: None)
    stages.convert_maps([stages.decode(item, options)], options, "numpy")
    array = item.depth.array.copy()
    array[0, :5], array[1, 0] = np.nan, 7.0  # five holes; a disparity of 7/m, nearer than any pixel
    item.depth = DepthData.from_array(array, item.depth.pixel_format, metadata=item.depth.metadata)
    stages.store_maps([item], options, "numpy")
    details = stages.encode(item, options).details
    values = array.astype(np.float64)
    assert (details["invalid_pixels"], details["min"], details["max"]) == (5, np.nanmin(values), 7.0)
    assert details["depth_m"] == [1 / 7.0, 1 / np.nanmin(values)]


def test_a_worker_doing_every_stage_reads_and_parses_the_photo_once_and_sends_none_of_it_back(tmp_path, monkeypatch):
    """Its decode parsed the photo's head for its size and orientation, and its encode the whole photo again;
    now the photo read whole for the one parse is what both use (the same output as the driver's way)."""
    import pickle

    from helpers.pipeline import make_dataset
    from PIL import Image
    from pillow_heif import from_pillow

    from gpu_depth.containers.heic import isobmff
    from gpu_depth.pipeline.jobs import pair_folders

    photos, depths = make_dataset(tmp_path, 1)
    jpeg = next(photos.iterdir())
    from_pillow(Image.open(jpeg)).save(jpeg.with_suffix(".heic"), quality=80)
    jpeg.unlink()

    def planned(way: str) -> tuple[stages.Item, Options]:
        options = Options(tmp_path / way, near=0.5, far=10)
        options.out.mkdir()
        [item] = stages.plan(pair_folders(photos, depths)[0], options, lambda done: None)
        return item, options

    item, options = planned("driver")
    stages.convert_batch([stages.decode(item, options)], options, "numpy")
    by_driver = stages.encode(item, options)
    item, options = planned("worker")
    parse, read, parses, reads = isobmff.parse_file, stages.read_file, [], []
    monkeypatch.setattr(isobmff, "parse_file", lambda data: parses.append(len(data)) or parse(data))
    monkeypatch.setattr(stages, "read_file", lambda path: reads.append(path) or read(path))
    by_worker = stages.every_stage(item, options)
    assert parses == [item.job.photo.stat().st_size] and reads == [item.job.photo]
    for done in (by_driver, by_worker):
        assert done.status == "ok", done.error
        assert done.photo is None and len(pickle.dumps(done)) < 4096  # what goes back to the driver
    assert by_driver.output.read_bytes() == by_worker.output.read_bytes()
