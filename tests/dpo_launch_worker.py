"""Runs `lr-train dpo` several times in one `accelerate launch` (tests/test_dpo_distributed.py,
benchmarks/engine_check.py): a launch costs seconds of imports, so the runs share one.  argv[1] is a
JSON list of {"argv": [...], "kill_after": step|null}; with kill_after, rank 0 SIGKILLs itself once that step is logged
(a crash mid-run, not a clean stop)."""

from __future__ import annotations

import json
import os
import signal
import sys

import torch

from lr_eval.train import metrics_log
from lr_eval.train.cli import main


def _kill_after(step: int) -> None:
    log = metrics_log.MetricsLogger.log

    def log_then_die(self, record):
        log(self, record)
        if record["step"] >= step:
            os.kill(os.getpid(), signal.SIGKILL)

    metrics_log.MetricsLogger.log = log_then_die


if __name__ == "__main__":
    torch.set_num_threads(1)
    for run in json.loads(sys.argv[1]):
        if run.get("kill_after"):
            _kill_after(run["kill_after"])
        code = main(["dpo", *run["argv"]])
        if code:
            sys.exit(code)
