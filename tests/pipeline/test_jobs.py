import json

import pytest

from gpu_depth import DepthError
from gpu_depth.pipeline.jobs import Job, pair_folders, parse_shard, read_manifest, shard, shard_from_environment


def touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")


def test_pairing_by_stem_with_suffix_lists_the_unmatched(tmp_path):
    touch(tmp_path / "p", "a.heic", "b.jpg", "c.jpg", "notes.txt")
    touch(tmp_path / "d", "a_depth.png", "b_depth.tif", "b_depth.npy", "zz_depth.png")
    jobs, unmatched = pair_folders(tmp_path / "p", tmp_path / "d", "_depth")
    assert jobs == [Job(tmp_path / "p" / "a.heic", tmp_path / "d" / "a_depth.png")]
    assert any("b.jpg: several depth maps match" in line for line in unmatched)
    assert any("c.jpg: no depth map c_depth.*" in line for line in unmatched)
    assert any("zz_depth.png: no photo" in line for line in unmatched)
    assert not any("notes.txt" in line for line in unmatched)


def test_csv_and_json_lines_manifests(tmp_path):
    (tmp_path / "m.csv").write_text("photo,depth,near,far,format\nimg/a.jpg,d/a.png,0.5,9,fdep\nb.heic,b.png,,,\n")
    jobs = read_manifest(tmp_path / "m.csv")
    assert jobs[0] == Job(tmp_path / "img/a.jpg", tmp_path / "d/a.png", 0.5, 9.0, "fdep")
    assert jobs[1] == Job(tmp_path / "b.heic", tmp_path / "b.png")
    lines = [json.dumps({"photo": "a.jpg", "depth": "a.png", "near": 1}), "", json.dumps({"photo": "b.jpg"})]
    (tmp_path / "m.jsonl").write_text("\n".join(lines))
    with pytest.raises(DepthError, match=r"m.jsonl:3: missing depth"):
        read_manifest(tmp_path / "m.jsonl")


@pytest.mark.parametrize(
    ("text", "message"),
    [("a,b\n1,2\n", "needs a header with photo and depth"), ("photo,depth,near\na,b,x\n", ":2: near and far")],
)
def test_bad_manifests(tmp_path, text, message):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(DepthError, match=message):
        read_manifest(tmp_path / "m.csv")


def test_shards_cover_every_job_exactly_once():
    from pathlib import Path

    jobs = [Job(Path(f"p/{i}.jpg"), Path(f"d/{i}.png")) for i in range(500)]
    parts = [shard(jobs, i, 7) for i in range(7)]
    assert sorted(j.photo for part in parts for j in part) == sorted(j.photo for j in jobs)
    assert all(40 < len(part) < 110 for part in parts)
    assert shard(list(reversed(jobs)), 3, 7) == list(reversed(parts[3]))


def test_shard_from_environment():
    assert shard_from_environment({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}) == (2, 4)
    assert shard_from_environment({"AWS_BATCH_JOB_ARRAY_INDEX": "0", "AWS_BATCH_JOB_ARRAY_SIZE": "3"}) == (0, 3)
    assert shard_from_environment({"JOB_COMPLETION_INDEX": "1", "GPU_DEPTH_SHARD_COUNT": "2"}) == (1, 2)
    assert shard_from_environment({}) is None
    assert parse_shard("3/8") == (3, 8)
    with pytest.raises(DepthError, match="0 <= I < N"):
        shard([], 8, 8)


def test_pairing_takes_every_depth_format_the_loader_reads(tmp_path):
    names = ["a.pfm", "b.npz", "c.dpt", "d.exr", "e.pgm", "f.npy"]
    touch(tmp_path / "p", "a.ppm", "b.webp", "c.jpg", "d.jpg", "e.jpg", "f.jpg")
    touch(tmp_path / "d", *names)
    jobs, unmatched = pair_folders(tmp_path / "p", tmp_path / "d")
    assert [job.depth.name for job in jobs] == names and not unmatched


def test_manifest_depth_scale_and_intrinsics_columns(tmp_path):
    (tmp_path / "m.csv").write_text(
        'photo,depth,depth_scale,intrinsics\na.jpg,a.png,5000,"525,525,319.5,239.5"\nb.jpg,b.png,,\n'
    )
    a, b = read_manifest(tmp_path / "m.csv")
    assert (a.depth_scale, a.intrinsics) == (5000.0, (525.0, 525.0, 319.5, 239.5))
    assert (b.depth_scale, b.intrinsics) == (None, None)
    (tmp_path / "m.jsonl").write_text(json.dumps({"photo": "a", "depth": "b", "intrinsics": [1, 2, 3, 4]}) + "\n")
    assert read_manifest(tmp_path / "m.jsonl")[0].intrinsics == (1.0, 2.0, 3.0, 4.0)
    for bad in ('"525,525,319.5"', '"0,1,2,3"', '"a,b,c,d"'):
        (tmp_path / "bad.csv").write_text(f"photo,depth,intrinsics\na.jpg,a.png,{bad}\n")
        with pytest.raises(DepthError, match=r"bad.csv:2: intrinsics must be fx,fy,cx,cy"):
            read_manifest(tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text("photo,depth,depth_scale\na.jpg,a.png,lots\n")
    with pytest.raises(DepthError, match="depth_scale must be a number"):
        read_manifest(tmp_path / "bad.csv")
