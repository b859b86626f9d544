"""docs/tasks-quickstart.md names every environment variable the code reads, in its one table (issue 21 §3)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from lr_eval.config import JudgeConfig

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "tasks-quickstart.md"
PARTS = ("lr_eval", "reward", "tasks", "train", "leaderboards", "testing")
CODE = [*(p for d in PARTS for p in (ROOT / d).rglob("*.py")), ROOT / "setup.py"]
#: os.environ.get("X"), os.environ["X"], os.getenv("X"), and the names our settings keep in constants ("LR_...")
_READ = re.compile(r"""(?:environ(?:\.get)?\(|environ\[|getenv\()\s*['"]([A-Z][A-Z0-9_]+)['"]""")
_LR_NAME = re.compile(r"""['"](LR_[A-Z0-9_]+)['"]""")


def _table_names() -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## Environment variables"):]
    names = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_<>]+)`", line.split("|")[1]))
    return names


def test_every_variable_the_code_reads_is_in_the_table() -> None:
    read: set[str] = set()
    for path in CODE:
        text = path.read_text(encoding="utf-8")
        read |= set(_READ.findall(text)) | set(_LR_NAME.findall(text))
    documented = _table_names()
    # the judge settings are read as LR_JUDGE_<FIELD> for every JudgeConfig field (one row, fields listed)
    judge = {f"LR_JUDGE_{f.name.upper()}" for f in dataclasses.fields(JudgeConfig)}
    judge_row = next(line for line in DOC.read_text(encoding="utf-8").splitlines() if "`LR_JUDGE_<SETTING>`" in line)
    assert all(f"`{name.removeprefix('LR_JUDGE_')}`" in judge_row for name in judge)
    missing = sorted(n for n in read - judge if n not in documented)
    assert missing == [], f"read by the code, not in docs/tasks-quickstart.md's table: {missing}"
    assert {"LR_EVAL_CACHE_DIR", "HF_HUB_OFFLINE", "WORLD_SIZE"} <= read  # the scan finds what it should
