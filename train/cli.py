"""`lr-train`: not yet implemented (its issue is open); the command exists for --help and scripts."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lr-train", description=__doc__)
    p.parse_args(argv)
    print("lr-train: not yet implemented in this release", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
