"""Runs `lr-train dpo` several times in one `accelerate launch` (tests/test_dpo_distributed.py,
benchmarks/engine_check.py): a launch costs seconds of imports, so the runs share one.  argv[1] is a
JSON list of {"argv": [...], "kill_after": step|null}; with kill_after, rank 0 SIGKILLs itself once that step is logged
(a crash mid-run, not a clean stop).

DeepSpeed on CPU (DS_ACCELERATOR=cpu): accelerate 1.15 selects DeepSpeed there but counts one process
per rank (num_processes 1, process_index 0) although torch.distributed holds the whole group; the
worker corrects those counts from the group before the trainer starts. Nothing else is changed."""

from __future__ import annotations

import json
import os
import signal
import sys

import torch

from lr_eval.train import metrics_log
from lr_eval.train.cli import main


def _deepspeed_on_cpu() -> None:
    import torch.distributed as dist
    from accelerate import PartialState

    PartialState(cpu=False)  # DeepSpeed's launch: this joins the process group
    shared = PartialState._shared_state
    shared.update(num_processes=dist.get_world_size(), process_index=dist.get_rank(),
                  local_process_index=int(os.environ["LOCAL_RANK"]))


def _kill_after(step: int) -> None:
    log = metrics_log.MetricsLogger.log

    def log_then_die(self, record):
        log(self, record)
        if record["step"] >= step:
            os.kill(os.getpid(), signal.SIGKILL)

    metrics_log.MetricsLogger.log = log_then_die


if __name__ == "__main__":
    torch.set_num_threads(1)
    if os.environ.get("ACCELERATE_USE_DEEPSPEED") == "true" and not torch.cuda.is_available():
        _deepspeed_on_cpu()
    for run in json.loads(sys.argv[1]):
        if run.get("kill_after"):
            _kill_after(run["kill_after"])
        code = main(["dpo", *run["argv"]])
        if code:
            sys.exit(code)
