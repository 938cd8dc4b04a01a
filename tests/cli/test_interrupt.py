"""Ctrl-C through the console script: the first says so at once and lets only the items in flight finish; a
second stops now; either way the summary says to rerun with --resume, the exit code is 130, and the rerun
finishes the rest.  ``inspect`` interrupted is one line, no traceback."""

import signal
import subprocess
import sys
import threading
import time

from helpers.pipeline import CONVERT, make_dataset, report_lines

from gpu_depth import read_depth
from gpu_depth.fileio import TEMP_SUFFIX

COUNT = 40


class Running:
    """``gpu-depth convert`` in the background, its stderr collected line by line."""

    def __init__(self, command):
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self.reader.start()

    def wait_for(self, found, timeout=120):
        deadline = time.monotonic() + timeout
        while not found():
            assert time.monotonic() < deadline and self.process.poll() is None, self.lines
            time.sleep(0.05)

    def finish(self):
        status = self.process.wait(timeout=300)
        self.reader.join(timeout=10)
        return status


def start(tmp_path):
    photos, depths = make_dataset(tmp_path, COUNT, size=(320, 240))
    out = tmp_path / "out"
    command = [*CONVERT, "--workers", "1", "--batch-size", "2", "--container", "heic"]
    command += ["--photos", str(photos), "--depth", str(depths), "--out", str(out)]
    running = Running(command)
    report = out / "report.jsonl"
    running.wait_for(lambda: report.exists() and len(report.read_text().splitlines()) >= 2)  # one item done
    return running, command, out


def check_rerun(command, out):
    assert subprocess.run([*command, "--resume"], capture_output=True).returncode == 0
    _, (summary,) = report_lines(out / "report.jsonl")
    assert summary["ok"] + summary["skipped"] == COUNT and summary["failed"] == 0
    assert not list(out.glob(f".*{TEMP_SUFFIX}"))


def test_first_ctrl_c_finishes_the_items_in_flight(tmp_path):
    running, command, out = start(tmp_path)
    running.process.send_signal(signal.SIGINT)
    running.wait_for(lambda: any("interrupted: finishing the items in flight" in line for line in running.lines))
    assert running.finish() == 130
    items, (summary,) = report_lines(out / "report.jsonl")
    assert summary["interrupted"] and 1 <= summary["ok"] < COUNT and summary["failed"] == 0
    assert all(read_depth(line["output"]) is not None for line in items)
    assert sorted(p.name for p in out.glob("*.heic")) == sorted(line["output"].rsplit("/", 1)[1] for line in items)
    assert "gpu-depth: interrupted — rerun with --resume to convert the rest\n" in running.lines
    assert "Traceback" not in "".join(running.lines)
    check_rerun(command, out)


def test_second_ctrl_c_stops_now(tmp_path):
    running, command, out = start(tmp_path)
    running.process.send_signal(signal.SIGINT)
    running.wait_for(lambda: any("Ctrl-C again stops now" in line for line in running.lines))
    running.process.send_signal(signal.SIGINT)
    assert running.finish() == 130
    assert "gpu-depth: stopped now; the items in flight were not finished\n" in running.lines
    items, (summary,) = report_lines(out / "report.jsonl")
    assert summary["interrupted"] and summary["ok"] == len(items) < COUNT
    assert all(read_depth(line["output"]) is not None for line in items)
    assert "gpu-depth: interrupted — rerun with --resume to convert the rest\n" in running.lines
    assert "Traceback" not in "".join(running.lines)
    check_rerun(command, out)


def test_inspect_interrupted_is_one_line(tmp_path):
    photos, depths = make_dataset(tmp_path, 1, size=(320, 240))
    out = tmp_path / "out"
    subprocess.run([*CONVERT, "--photos", str(photos), "--depth", str(depths), "--out", str(out)], check=True)
    command = [sys.executable, "-m", "gpu_depth", "inspect", *[str(out / "p0000.jpg")] * 5000]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.readline()  # it has started reading the files
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and err == "gpu-depth: interrupted\n"
