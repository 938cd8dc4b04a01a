import json

import pytest

from gpu_depth import DepthError
from gpu_depth.pipeline.jobs import Job, pair_folders, parse_shard, read_manifest, shard_from_environment, shard_of


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
    [
        ("a,b\n1,2\n", "needs a header with photo and depth"),
        ("photo,depth,near\na,b,x\n", ":2: near is not a finite decimal number"),
    ],
)
def test_bad_manifests(tmp_path, text, message):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(DepthError, match=message):
        read_manifest(tmp_path / "m.csv")


def test_shards_spread_names_and_fold_case():
    counts = [0] * 7
    for i in range(500):
        counts[shard_of(f"{i}.jpg", 7)] += 1
    assert all(40 < count < 110 for count in counts)
    assert shard_of("IMG_1.JPG", 7) == shard_of("img_1.jpg", 7)


def test_shard_from_environment():
    assert shard_from_environment({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}) == (2, 4)
    assert shard_from_environment({"AWS_BATCH_JOB_ARRAY_INDEX": "0", "AWS_BATCH_JOB_ARRAY_SIZE": "3"}) == (0, 3)
    assert shard_from_environment({"JOB_COMPLETION_INDEX": "1", "GPU_DEPTH_SHARD_COUNT": "2"}) == (1, 2)
    assert shard_from_environment({}) is None
    assert parse_shard("3/8") == (3, 8)
    with pytest.raises(DepthError, match="0 <= I < N"):
        parse_shard("8/8")


@pytest.mark.parametrize(
    "environ",
    [{"SLURM_ARRAY_TASK_ID": "2"}, {"JOB_COMPLETION_INDEX": "0"}],
)
def test_an_array_index_without_its_count_is_an_error(environ):
    """Every task of the array converted everything into the same folder."""
    with pytest.raises(DepthError, match=r"is set but .* is not"):
        shard_from_environment(environ)


@pytest.mark.parametrize("text", ["1_0/2_0", "1/", "/2", "1/2/3", "١/٢", "1/" + "9" * 40])
def test_shard_flags_are_plain_decimals(text):
    """Python's int() read "1_0/2_0" as 10/20."""
    with pytest.raises(DepthError, match="--shard"):
        parse_shard(text)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"photo": "a.jpg", "depth": "a.png", "format": ["hdis"]}, "format must be a pixel format name"),
        ({"photo": "a.jpg", "depth": "a.png", "near": True}, "near must be a number"),
        ({"photo": "a.jpg", "depth": "a.png", "far": "1_0"}, "far is not a finite decimal number"),
        ({"photo": ["a.jpg"], "depth": "a.png"}, "not a path: photo"),
    ],
)
def test_json_manifest_values_of_the_wrong_type(tmp_path, row, message):
    """``"format": ["hdis"]`` raised TypeError and aborted the run; ``"near": true`` was taken as 1.0."""
    (tmp_path / "m.jsonl").write_text(json.dumps(row))
    with pytest.raises(DepthError, match=message):
        read_manifest(tmp_path / "m.jsonl")


def test_csv_manifest_with_a_byte_order_mark(tmp_path):
    """Excel saves UTF-8 CSVs with a BOM: the header's first column was "\ufeffphoto" and the manifest refused."""
    (tmp_path / "m.csv").write_bytes("photo,depth\na.jpg,a.png\n".encode("utf-8-sig"))
    assert read_manifest(tmp_path / "m.csv") == [Job(tmp_path / "a.jpg", tmp_path / "a.png")]


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
    with pytest.raises(DepthError, match="depth_scale is not a finite decimal number"):
        read_manifest(tmp_path / "bad.csv")
