"""Fixtures of the pipeline tests."""

import pytest
from helpers.pipeline import report_lines


@pytest.fixture(autouse=True)
def outputs_verify_clean(tmp_path):
    """Every photo a test's pipeline run writes must verify with no error and no warning."""
    yield
    from gpu_depth.verify import verify

    written = {
        line["output"]
        for report in tmp_path.rglob("report*.jsonl")
        for line in report_lines(report)[0]
        if line["status"] == "ok"
    }
    for path in sorted(written)[:300]:  # the 2,000-item run's outputs are alike: 300 are plenty
        problems = [f for f in verify(path) if f.severity != "info"]
        assert not problems, (path, problems)
