"""Type-check the package as it is installed: ``lr_eval`` with its part folders mapped in.

pyproject's ``[tool.setuptools.package-dir]`` maps ``reward/`` to ``lr_eval.reward`` (and so on); mypy cannot
follow setuptools' editable-install finder, so this script lays the installed tree out as links under
``build/typecheck/`` and runs mypy there (config: ``[tool.mypy]`` in pyproject.toml; cache kept, so a rerun
checks only what changed). Exit status is mypy's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "typecheck"


def lay_out() -> None:
    """``build/typecheck/lr_eval/``: a link to each core file, and one to each part folder under its package name."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    core = TREE / "lr_eval"
    core.mkdir(parents=True, exist_ok=True)
    wanted = {p.name: p for p in (ROOT / mapping["lr_eval"]).iterdir()
              if p.suffix == ".py" or (p / "__init__.py").is_file()}
    wanted.update({name.split(".", 1)[1]: ROOT / folder for name, folder in mapping.items() if name != "lr_eval"})
    for link in core.iterdir():
        if link.name not in wanted or link.resolve() != wanted[link.name]:
            link.unlink()
    for name, target in wanted.items():
        if not (core / name).is_symlink():
            (core / name).symlink_to(target)


if __name__ == "__main__":
    lay_out()
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
           "--cache-dir", str(ROOT / ".mypy_cache"), "-p", "lr_eval", *sys.argv[1:]]
    sys.exit(subprocess.run(cmd, cwd=TREE, env={**os.environ, "MYPYPATH": ""}).returncode)
