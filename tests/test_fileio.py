"""Reading with a bound and writing whole files: concurrent writers, readers, and what is not a regular file."""

import os
import subprocess
import sys
import threading
import time

import pytest
from helpers.pipeline import dead_pid

from gpu_depth import DepthError
from gpu_depth.fileio import (
    HOST,
    TEMP_SUFFIX,
    commit,
    read_file,
    read_ranges,
    remove_stale_temps,
    temp_path,
    temp_target,
    write_atomic,
    write_temp,
)


def test_concurrent_writers_of_one_file_never_show_a_partial_file(tmp_path):
    """Writers shared one fixed temp name without O_EXCL: 232 of 600 writes failed and a reader saw 89 partial files."""
    target = tmp_path / "out.jpg"
    contents = [bytes([n]) * (50_000 + 7_000 * n) for n in range(4)]
    errors, seen, stop = [], set(), threading.Event()

    def writer(data):
        for _ in range(40):
            try:
                write_atomic(target, data)
            except DepthError as exc:
                errors.append(exc)

    def reader():
        while not stop.is_set():
            if target.exists():
                seen.add(target.read_bytes())

    watching = threading.Thread(target=reader)
    watching.start()
    writers = [threading.Thread(target=writer, args=(data,)) for data in contents]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    watching.join()
    assert not errors
    assert seen and seen <= set(contents)
    assert target.read_bytes() in contents
    assert [p.name for p in tmp_path.iterdir()] == ["out.jpg"]


def test_temp_names_are_unique_and_name_their_target(tmp_path):
    first, second = temp_path(tmp_path / "a.b.jpg"), temp_path(tmp_path / "a.b.jpg")
    assert first != second and first.name.endswith(TEMP_SUFFIX)
    assert temp_target(first.name) == "a.b.jpg"
    assert temp_target("a.jpg") is None and temp_target(f".{TEMP_SUFFIX}") is None
    assert f".{os.getpid()}-{HOST}-" in first.name  # the writer: process and host


def test_stale_temps_of_dead_writers_of_this_host_are_removed_others_kept(tmp_path):
    dead = temp_path(tmp_path / "a.jpg", pid=dead_pid())
    live = temp_path(tmp_path / "b.jpg")  # this process's: still writing
    other_host = "0" * 8 if HOST != "0" * 8 else "1" * 8
    elsewhere = tmp_path / f".c.jpg.{dead_pid()}-{other_host}-abcdef{TEMP_SUFFIX}"
    unrelated = tmp_path / f".d.jpg.old{TEMP_SUFFIX}"
    for path in (dead, live, elsewhere, unrelated, tmp_path / "a.jpg"):
        path.write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == [dead]
    kept = {p.name for p in (live, elsewhere, unrelated, tmp_path / "a.jpg")}
    assert {p.name for p in tmp_path.iterdir()} == kept
    assert remove_stale_temps(tmp_path / "missing") == []


def test_write_atomic_never_replaces_a_protected_input(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"input")
    (tmp_path / "link.jpg").symlink_to(photo)
    with pytest.raises(DepthError, match="refusing to overwrite the input"):
        write_atomic(tmp_path / "link.jpg", b"output", protect=(photo,))
    assert photo.read_bytes() == b"input"


def test_only_regular_files_are_read(tmp_path):
    """/dev/zero was read until the OOM killer ended it; a FIFO hung the run."""
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero", tmp_path):
        with pytest.raises(DepthError, match=r"not a regular file|cannot read"):
            read_file(path)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    with pytest.raises(DepthError, match="file of 101 bytes exceeds the 100-byte limit"):
        read_file(big, limit=100)
    assert read_file(big, limit=101) == b"x" * 101


def test_a_killed_writer_not_yet_reaped_counts_as_gone(tmp_path):
    """Workers of a SIGKILLed driver stay zombies where nothing reaps orphans: their temps were kept."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        temp = temp_path(tmp_path / "a.jpg", pid=child.pid)
        temp.write_bytes(b"x")
        assert remove_stale_temps(tmp_path) == []  # still running
        child.kill()
        deadline = time.monotonic() + 5
        while not remove_stale_temps(tmp_path) and time.monotonic() < deadline:  # a zombie until waited for
            time.sleep(0.02)
        assert not temp.exists() and child.poll() is not None
    finally:
        child.kill()
        child.wait()


def test_a_written_temp_gets_its_name_only_when_committed_and_a_failed_commit_leaves_nothing(tmp_path, monkeypatch):
    """The pipeline writes in its workers and fsyncs + renames in its driver, while the workers go on."""
    target = tmp_path / "out.heic"
    target.write_bytes(b"old")
    temp = write_temp(target, b"new")
    assert temp.read_bytes() == b"new" and target.read_bytes() == b"old" and temp_target(temp.name) == "out.heic"
    commit(temp, target)
    assert target.read_bytes() == b"new" and not temp.exists()

    def broken(descriptor):
        raise OSError(5, "Input/output error")

    temp = write_temp(target, b"newer")
    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(DepthError, match=r"out\.heic: write failed: Input/output error"):
        commit(temp, target)
    assert target.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["out.heic"]


def test_read_ranges_reads_parts_of_a_regular_file_and_never_past_its_end(tmp_path):
    path = tmp_path / "photo.heic"
    path.write_bytes(b"0123456789")
    with read_ranges(path) as (read, size):
        assert size == 10 and read(2, 3) == b"234" and read(10, 0) == b""
        with pytest.raises(DepthError, match="3 bytes at offset 8 run past the end of its 10"):
            read(8, 3)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(DepthError, match="not a regular file"), read_ranges(tmp_path / "fifo"):
        pass
