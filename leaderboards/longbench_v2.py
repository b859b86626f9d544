"""Our ``longreward_longbench_v2*`` results as the LongBench v2 section reads them, and its published rows.

The tasks report ``result.py``'s figures (``overall``, ``easy``, ``hard``, ``short``, ``medium``, ``long``:
100 x accuracy rounded to one decimal) as lm-eval metrics; their logged samples carry, under each of those
keys, the item ``[difficulty, length, correct]``. :func:`view` turns a run into one task per (variant,
breakdown), ``<task>@<breakdown>``, with metric ``score``: from the samples when they were logged (each item's
correct x 100, so the board can bootstrap an interval; the mean must round to the reported figure, else the
samples are not used), else the reported figure alone.

Published rows: ``data/longbench_v2_published.json`` (the official leaderboard's rows for the models of the
LongReward paper's tables, read at a pinned commit), or a file in the same format (``--published-longbench-v2``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lr_eval.jsonl import InputError, read_json, read_jsonl
from lr_eval.suite import FAMILY

from .reader import Run, Sample, TaskResult

FAMILY_V2 = FAMILY["longbench_v2"]
#: ``result.py``'s columns, in its order, with their labels.
BREAKDOWNS: dict[str, str] = {"overall": "Overall", "easy": "Easy", "hard": "Hard", "short": "Short",
                              "medium": "Medium", "long": "Long"}
#: the two settings the official leaderboard publishes (w/o CoT, w/ CoT) and our task of each.
SETTINGS: dict[str, str] = {"plain": "w/o CoT", "cot": "w/ CoT"}
PUBLISHED_FILE = Path(__file__).parent / "data" / "longbench_v2_published.json"


def _samples(run: Run, tr: TaskResult) -> list[Sample] | None:
    """One sample per logged question, valued per breakdown it falls in (correct x 100), or None when the
    samples were not logged or do not hold ``result.py``'s items."""
    if not tr.samples_file:
        return None
    path = run.path / tr.samples_file
    out = []
    for n, row in read_jsonl(path):
        if isinstance(row, InputError):
            raise row
        if row.get("filter", tr.filter) != tr.filter:
            continue
        item = row.get("overall")
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[2], (int, float))):
            raise InputError(path, n, "overall", "expected result.py's item [difficulty, length, correct]")
        difficulty, length, correct = item
        values: dict[str, float | None] = {"overall": 100.0 * correct,
                                           ("easy" if difficulty == "easy" else "hard"): 100.0 * correct,
                                           (length if length in ("short", "medium") else "long"): 100.0 * correct}
        out.append(Sample(row.get("doc_id"), row.get("doc_hash"), values))
    return out


def view(run: Run) -> Run:
    """The run as the LongBench v2 section reads it: ``<task>@<breakdown>``, metric ``score`` (0-100)."""
    tasks: dict[str, TaskResult] = {}
    for name, tr in run.tasks.items():
        if not name.startswith(FAMILY_V2.prefix + "_"):
            continue
        samples = _samples(run, tr)
        for b in BREAKDOWNS:
            reported = tr.metrics.get(b)
            if reported is not None and math.isnan(reported):
                reported = None  # result.py divides by zero there: no question of that breakdown was run
            picked = [dataclasses.replace(s, values={"score": s.values[b]}) for s in samples or [] if b in s.values]
            use = bool(picked) and reported is not None and \
                round(sum(s.values["score"] or 0.0 for s in picked) / len(picked), 1) == round(reported, 1)
            value = sum(s.values["score"] or 0.0 for s in picked) / len(picked) if use else reported
            if value is None:
                continue
            tasks[f"{name}@{b}"] = TaskResult(f"{name}@{b}", {"score": value}, {"score": None},
                                              n=len(picked) if use else tr.n, higher_is_better={"score": True},
                                              samples=picked if use else None, results_file=tr.results_file,
                                              samples_file=tr.samples_file)
    return dataclasses.replace(run, tasks=tasks, groups={})


# ----------------------------------------------------------------------------------------- published rows


@dataclass(frozen=True)
class Published:
    """The published table: where it was read, how each setting was measured, and its rows."""

    source: str
    url: str
    commit: str
    protocol: dict[str, str]
    rows: list[dict[str, Any]]
    path: Path


def _need(obj: Any, key: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise InputError(path, None, f"{where}{key}", "missing")
    if not isinstance(obj[key], kind) or isinstance(obj[key], bool):
        raise InputError(path, None, f"{where}{key}", f"expected {getattr(kind, '__name__', 'a number')}, "
                                                      f"got {type(obj[key]).__name__}")
    return obj[key]


def load_published(path: Path | None = None) -> Published:
    """Read and check a published-rows file (default: the packaged one); an error names the file and field."""
    path = path or PUBLISHED_FILE
    data = read_json(path)
    source, url, commit = (_need(data, k, str, path, "") for k in ("source", "url", "commit"))
    protocol = _need(data, "protocol", dict, path, "")
    rows = _need(data, "rows", list, path, "")
    for i, row in enumerate(rows):
        where = f"rows[{i}]."
        _need(row, "model", str, path, where)
        _need(row, "note", str, path, where)
        settings = [s for s in SETTINGS if s in row] if isinstance(row, dict) else []
        if not settings:
            raise InputError(path, None, f"{where}plain", f"missing: a row gives {' or '.join(SETTINGS)}")
        for s in settings:
            _need(protocol, s, str, path, "protocol.")
            for b in BREAKDOWNS:
                v = _need(row[s], b, (int, float), path, f"{where}{s}.")
                if not 0 <= v <= 100:
                    raise InputError(path, None, f"{where}{s}.{b}", f"{v} is not a percentage (0-100)")
    return Published(source, url, commit, protocol, rows, path)


def published_rows(table: Published) -> list[dict[str, Any]]:
    """Section rows ``{"label", "values": {column key: value}, "notes"}`` of the LongBench v2 section."""
    out = []
    for row in table.rows:
        values = {column_key(s, b): float(row[s][b]) for s in SETTINGS if s in row for b in BREAKDOWNS}
        notes = [f"{table.source}, {table.url}", row["note"]]
        out.append({"label": f"{row['model']} · official leaderboard", "values": values, "notes": notes})
    return out


def column_key(setting: str, breakdown: str) -> str:
    """The section's column of one (setting, breakdown): ``lb2_plain_overall``, ``lb2_cot_easy`` ..."""
    return f"lb2_{setting}_{breakdown}"
