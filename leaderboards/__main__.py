"""``python -m lr_eval.leaderboards``: the ``lr-leaderboard`` command, for an interpreter whose scripts folder is
not on PATH."""

import sys

from lr_eval.leaderboards.cli import main

sys.exit(main())
