"""``python -m lr_eval``: the ``lr-eval`` command, for an interpreter whose scripts folder is not on PATH."""

import sys

from lr_eval.cli import main

sys.exit(main())
