"""``python -m lr_eval.train``: the ``lr-train`` command, for an interpreter whose scripts folder is not on PATH."""

import sys

from lr_eval.train.cli import main

sys.exit(main())
