"""How ``gpu-depth convert`` reads its option values."""

import pytest

from gpu_depth import DepthError
from gpu_depth.cli.convert import parse_size


def test_parse_size():
    assert parse_size("768x576") == (768, 576) and parse_size("native") is None
    with pytest.raises(DepthError, match="768x576"):
        parse_size("big")
