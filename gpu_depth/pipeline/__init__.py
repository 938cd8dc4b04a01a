"""The bulk conversion pipeline behind ``gpu-depth convert``: jobs (which photo goes with which map),
options, the stages every runner shares, the local runner and the Ray runner, the report, and the
built-in example dataset."""

from .local import run
from .options import Options

__all__ = ["Options", "run"]
