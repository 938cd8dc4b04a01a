"""Progress through the console script: a bar on a terminal (a pseudo-terminal here), timestamped lines at a
steady interval in a pipe (a batch job's log), each item's error on a line of its own."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

from helpers.pipeline import make_dataset

COMMAND = [sys.executable, "-m", "gpu_depth", "convert", "--workers", "1", "--batch-size", "2", "--backend", "numpy"]
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ gpu-depth: (\d+)/(\d+) items \((\d+)%\), (\d+) failed, ")


def dataset(tmp_path, count=8):
    photos, depths = make_dataset(tmp_path, count)
    (depths / "p0001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return [*COMMAND, "--photos", str(photos), "--depth", str(depths), "--near", "0.5", "--far", "10"]


def in_terminal(command):
    """Run ``command`` with stderr on a pseudo-terminal; its exit code and everything it wrote there."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 24 rows, 120 columns
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process has closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=300), b"".join(chunks).decode("utf-8", "replace")


def test_bar_on_a_terminal(tmp_path):
    status, text = in_terminal([*dataset(tmp_path), "--out", str(tmp_path / "out")])
    assert status == 1
    segments = [part.strip() for part in re.split(r"[\r\n]", text) if part.strip()]
    bars = [part for part in segments if "%|" in part]
    assert bars, text
    last = bars[-1]
    assert re.search(r"100%\|.*\| 8/8 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+(item/s|s/item), 1 failed, backend numpy\]", last)
    errors = [part for part in segments if "cannot decode the depth map" in part]
    assert len(errors) == 1 and errors[0].startswith("gpu-depth: ") and "%|" not in errors[0]  # a line of its own
    assert not STAMP.match(last)


def test_timestamped_lines_in_a_pipe(tmp_path):
    command = [*dataset(tmp_path, 12), "--out", str(tmp_path / "out"), "--progress-interval", "0.2"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    progress = [STAMP.match(line) for line in lines if STAMP.match(line)]
    assert len(progress) >= 2, lines  # at least one while running and the last one
    assert [int(m[2]) for m in progress] == [12] * len(progress)
    done = [int(m[1]) for m in progress]
    assert done == sorted(done) and done[-1] == 12 and progress[-1][3] == "100" and progress[-1][4] == "1"
    assert all(line.endswith("backend numpy") for line in lines if STAMP.match(line))
    errors = [line for line in lines if "cannot decode the depth map" in line]
    assert len(errors) == 1 and errors[0].startswith("gpu-depth: ")
    assert "%|" not in run.stderr and "\r" not in run.stderr


def test_quiet_prints_no_progress(tmp_path):
    command = [*dataset(tmp_path, 3), "--out", str(tmp_path / "out"), "--progress-interval", "0.1", "--quiet"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and not any(STAMP.match(line) for line in run.stderr.splitlines())
