"""``python -m gpu_depth``: the ``gpu-depth`` command line."""

import sys

from .cli.main import main

sys.exit(main())
