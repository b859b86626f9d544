"""`lr-eval` subcommands contributed by the tasks part (registered via the `lr_eval.commands` entry point)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alpacaeval-metrics", add_help=False,
                       help="AlpacaEval 2 win rates and length-controlled win rate from annotations")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_alpacaeval_metrics)

    from .agreement import register as register_agreement
    from .longrewardbench_cli import register as register_longrewardbench
    from .mtbench_cli import register as register_mtbench
    from .rejudge import register as register_rejudge

    register_rejudge(sub)
    register_mtbench(sub)
    register_agreement(sub)
    register_longrewardbench(sub)


def _alpacaeval_metrics(a: argparse.Namespace) -> int:
    from .alpacaeval_metrics import main

    return main(a.args)
