"""Faults while converting: a full disk, a bad output folder, SIGTERM part-way. Nothing partial, nothing lost."""

import json
import os
import resource
import shutil
import signal
import subprocess
import time

from helpers.pipeline import CONVERT as COMMAND
from helpers.pipeline import make_dataset, report_lines

from gpu_depth import read_depth
from gpu_depth.fileio import TEMP_SUFFIX


def snapshot(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_report_matches_disk(out, items):
    ok = {line["output"] for line in items if line["status"] == "ok"}
    on_disk = {str(p) for p in out.glob("p*.jpg")}
    assert ok == on_disk
    assert all(read_depth(p) is not None for p in on_disk)
    assert not list(out.glob(f".*{TEMP_SUFFIX}"))


def test_disk_full_fails_items_cleanly(tmp_path):
    photos, depths = make_dataset(tmp_path, 6, size=(640, 480))
    inputs = snapshot(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    limit = 40_000  # bytes: smaller than each output, larger than the report

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    run = subprocess.run(
        [*COMMAND, "--photos", str(photos), "--depth", str(depths), "--out", str(out)],
        preexec_fn=small_disk,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    items, (summary,) = report_lines(out / "report.jsonl")
    assert summary["failed"] == 6 and all("File too large" in line["error"] for line in items)
    assert sum("File too large" in line for line in run.stderr.splitlines()) == 6
    assert [p.name for p in out.iterdir()] == ["report.jsonl"]  # no partial output, no temporary file
    assert snapshot(tmp_path / "photos") | snapshot(tmp_path / "depth") == inputs


def test_output_folder_that_cannot_be_made(tmp_path):
    photos, depths = make_dataset(tmp_path, 1)
    (tmp_path / "file").write_text("not a folder")
    run = subprocess.run(
        [*COMMAND, "--photos", str(photos), "--depth", str(depths), "--out", str(tmp_path / "file" / "out")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "cannot create the output folder" in run.stderr


def test_vanished_photo_fails_that_item_only(tmp_path):
    make_dataset(tmp_path, 3)
    manifest = tmp_path / "m.jsonl"
    rows = [{"photo": f"photos/p000{i}.jpg", "depth": f"depth/p000{i}.png"} for i in range(3)]
    (tmp_path / "photos" / "p0001.jpg").unlink()
    manifest.write_text("\n".join(json.dumps(row) for row in rows))
    out = tmp_path / "out"
    assert subprocess.run([*COMMAND, "--manifest", str(manifest), "--out", str(out)]).returncode == 1
    items, _ = report_lines(out / "report.jsonl")
    assert [line["status"] for line in items].count("ok") == 2
    assert_report_matches_disk(out, items)


def test_sigterm_finishes_items_in_flight_and_writes_the_report(tmp_path):
    photos, depths = make_dataset(tmp_path, 80, size=(320, 240))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [*COMMAND, "--batch-size", "4", "--photos", str(photos), "--depth", str(depths), "--out", str(out)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while len(list(out.glob("p*.jpg"))) < 8 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    items, (summary,) = report_lines(out / "report.jsonl")
    assert summary["interrupted"] and 8 <= summary["ok"] < 80
    assert_report_matches_disk(out, items)
    assert "Traceback" not in stderr


def test_a_report_that_cannot_be_written_ends_the_run_with_one_line(tmp_path):
    """A full disk under --report gave a traceback."""
    photos, depths = make_dataset(tmp_path, 3)
    run = subprocess.run(
        [
            *COMMAND,
            "--photos",
            str(photos),
            "--depth",
            str(depths),
            "--out",
            str(tmp_path / "out"),
            "--report",
            "/dev/full",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "/dev/full: cannot write the report: No space left on device" in run.stderr


def test_the_output_folder_gone_ends_the_run_with_one_line(tmp_path):
    photos, depths = make_dataset(tmp_path, 80, size=(320, 240))
    out = tmp_path / "out"
    command = [*COMMAND, "--batch-size", "4", "--photos", str(photos), "--depth", str(depths), "--out", str(out)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("p*.jpg"))) < 8 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    out.rename(tmp_path / "moved")
    _, stderr = process.communicate(timeout=120)
    shutil.rmtree(tmp_path / "moved")  # its report names outputs at paths that are gone
    assert process.returncode == 2
    assert "Traceback" not in stderr and stderr.splitlines()[-1].endswith(
        "the output folder has gone; stopping the run"
    )


def test_a_truncated_report_is_written_anew(tmp_path):
    """A truncated last line got the next record glued on; a resumed run appended a second summary."""
    photos, depths = make_dataset(tmp_path, 2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.jsonl").write_text('{"photo": "p0000.jpg", "sta')
    command = [*COMMAND, "--photos", str(photos), "--depth", str(depths), "--out", str(out)]
    assert subprocess.run([*command, "--resume"]).returncode == 0
    items, summaries = report_lines(out / "report.jsonl")
    assert [line["status"] for line in items] == ["ok", "ok"] and len(summaries) == 1
