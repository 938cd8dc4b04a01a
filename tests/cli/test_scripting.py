"""What scripts rely on, through the console script: one report per run with its id and options, ``--report -``
on stdout, ``--json``, existing outputs kept unless --overwrite (or skipped by --resume), one JSON shape per
``inspect`` line."""

import json
import subprocess
import sys

from helpers.pipeline import CONVERT, make_dataset, report_lines

from gpu_depth.cli import main as cli
from gpu_depth.pipeline import stages


def command(tmp_path, *extra):
    photos, depths = tmp_path / "photos", tmp_path / "depth"
    if not photos.exists():
        make_dataset(tmp_path, 3)
    return [*CONVERT, "--photos", str(photos), "--depth", str(depths), "--out", str(tmp_path / "out"), *extra]


def run(arguments):
    return subprocess.run(arguments, capture_output=True, text=True, timeout=300)


def test_a_report_per_run_with_its_id_and_options(tmp_path):
    assert run(command(tmp_path)).returncode == 0
    assert run(command(tmp_path, "--resume")).returncode == 0
    lines = [json.loads(line) for line in (tmp_path / "out" / "report.jsonl").read_text().splitlines()]
    assert [next(iter(line)) for line in lines[:1] + lines[-1:]] == ["run", "summary"]
    assert sum("run" in line for line in lines) == 1 and len(lines) == 5  # this run's only: written anew
    header, summary = lines[0]["run"], lines[-1]["summary"]
    assert summary["run_id"] == header["id"] and len(header["id"]) == 32
    assert header["options"]["resume"] is True and header["options"]["near"] == 0.5
    assert header["argv"][-1] == "--resume" and {line["status"] for line in lines[1:-1]} == {"skipped"}


def test_report_to_stdout_and_json_summary(tmp_path):
    result = run(command(tmp_path, "--report", "-"))
    assert result.returncode == 0 and not (tmp_path / "out" / "-").exists()
    assert not (tmp_path / "out" / "report.jsonl").exists()
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert "run" in lines[0] and lines[-1]["summary"]["ok"] == 3 and len(lines) == 5
    assert "report: stdout" in result.stderr

    result = run(command(tmp_path, "--json", "--overwrite"))
    assert result.returncode == 0
    (line,) = result.stdout.splitlines()
    summary = json.loads(line)
    assert (summary["ok"], summary["failed"], summary["interrupted"]) == (3, 0, False)
    assert summary["mapping"] == "apple-gray, near 0.5 m, far 10 m (black = near)"


def test_an_existing_output_is_kept_unless_overwrite(tmp_path):
    assert run(command(tmp_path)).returncode == 0
    output = tmp_path / "out" / "p0001.jpg"
    output.write_bytes(b"mine")
    result = run(command(tmp_path))
    assert result.returncode == 1 and output.read_bytes() == b"mine"
    _, (summary,) = report_lines(tmp_path / "out" / "report.jsonl")
    assert summary["failed"] == 3
    assert f"output {output} exists: pass --overwrite to replace it, or --resume" in result.stderr
    result = run(command(tmp_path, "--resume"))  # redoes the one that does not hold depth, skips the others
    assert result.returncode == 0 and output.read_bytes() != b"mine"
    _, (summary,) = report_lines(tmp_path / "out" / "report.jsonl")
    assert (summary["ok"], summary["skipped"]) == (1, 2)
    assert run(command(tmp_path, "--overwrite")).returncode == 0
    assert report_lines(tmp_path / "out" / "report.jsonl")[1][0]["ok"] == 3


def test_resume_checks_outputs_without_decoding_their_maps(tmp_path, monkeypatch):
    assert run(command(tmp_path)).returncode == 0

    def no_decoding(*args, **kwargs):
        raise AssertionError("a map was decoded")

    monkeypatch.setattr("gpu_depth.containers.jpeg.plugin.decode_gray", no_decoding)
    monkeypatch.setattr("gpu_depth.containers.heic.plugin.decode_item", no_decoding)
    out = tmp_path / "out"
    assert stages.has_depth(out / "p0000.jpg")
    (out / "p0002.jpg").write_bytes((out / "p0002.jpg").read_bytes()[:-500])  # its depth image cut short
    assert not stages.has_depth(out / "p0002.jpg")
    assert not stages.has_depth(tmp_path / "photos" / "p0000.jpg")  # a photo without depth
    assert cli.main(["convert", *command(tmp_path, "--resume")[4:]]) == 0
    _, (summary,) = report_lines(out / "report.jsonl")
    assert (summary["ok"], summary["skipped"]) == (1, 2)


def test_inspect_json_has_one_shape(tmp_path, capsys):
    assert run(command(tmp_path)).returncode == 0
    files = [tmp_path / "out" / "p0000.jpg", tmp_path / "photos" / "p0000.jpg", tmp_path / "depth" / "p0000.png"]
    assert cli.main(["inspect", "--json", *map(str, files)]) == 1
    captured = capsys.readouterr()
    depth, plain, broken = (json.loads(line) for line in captured.out.splitlines())
    assert list(depth) == list(plain) == list(broken) == list(cli.INSPECT_KEYS)
    assert (depth["depth"], plain["depth"], broken["depth"]) == (True, False, False)
    assert depth["pixel_format"] == "hdis" and plain["pixel_format"] is None and broken["error"]
    assert captured.err.count("\n") == 1


def test_inspect_json_through_the_console_script(tmp_path):
    assert run(command(tmp_path)).returncode == 0
    result = run([sys.executable, "-m", "gpu_depth", "inspect", "--json", str(tmp_path / "out" / "p0000.jpg")])
    assert result.returncode == 0 and json.loads(result.stdout)["width"] == 64
