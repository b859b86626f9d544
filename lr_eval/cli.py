"""`lr-eval`: the command line. Subcommands of the parts (reward, tasks) plug in through the
`lr_eval.commands` entry-point group, so the core never imports them."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__, batch, demo
from .errors import UserError
from .plugins import load_plugins


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lr-eval", description="LongReward evaluation toolkit")
    parser.add_argument("--version", action="version", version=f"longreward-eval {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    batch.register(sub)
    demo.register(sub)
    for _, register in load_plugins("lr_eval.commands"):
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"lr-eval {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        # Bad input or configuration: one clear line, not a traceback.
        print(f"lr-eval {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; completed judge answers are in the cache, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
