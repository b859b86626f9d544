"""JSONL input/output with errors that name the file, line and field."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .errors import UserError

T = TypeVar("T")


class InputError(UserError, ValueError):
    """A bad input record; the message names file, line and field."""

    def __init__(self, path: str | Path, line: int, field: str | None, problem: str):
        where = f"{path} line {line}" + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.field, self.problem = str(path), line, field, problem


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    """Yield (line number, record or the InputError for that line); blank lines are skipped."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                yield n, InputError(path, n, None, f"not valid JSON ({e.msg} at column {e.colno})")
                continue
            if not isinstance(rec, dict):
                yield n, InputError(path, n, None, f"expected a JSON object, got {type(rec).__name__}")
                continue
            yield n, rec


def read_unique(path: str | Path, parse: Callable[[dict[str, Any], int], tuple[str, T]],
                error_id: Callable[[dict[str, Any]], Any]) -> tuple[list[T], list[dict[str, Any]]]:
    """(items, error records ``{"id", "line", "error"}``): `parse` turns a record and its line number into
    (id, item) or raises InputError; a repeated id is an error too. A bad line never stops the others;
    `error_id` names the id of a bad record."""
    items: list[T] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, rec in read_jsonl(path):
        try:
            if isinstance(rec, InputError):
                raise rec
            rid, item = parse(rec, n)
            if rid in seen:
                raise InputError(path, n, "id", f"duplicate id {rid!r}")
            seen.add(rid)
            items.append(item)
        except InputError as e:
            errors.append({"id": error_id(rec) if isinstance(rec, dict) else None, "line": n, "error": str(e)})
    return items, errors


def require(rec: dict[str, Any], field: str, kind: type | tuple[type, ...], path: str | Path, line: int,
            optional: bool = False) -> Any:
    """Fetch a field and check its type, raising an InputError that names it."""
    if field not in rec or rec[field] is None:
        if optional:
            return None
        raise InputError(path, line, field, "missing")
    value = rec[field]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        names = "/".join(t.__name__ for t in _tuple(kind))
        raise InputError(path, line, field, f"expected {names}, got {type(value).__name__}")
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def write_jsonl_atomic(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Write all records to a temporary file and rename it into place (no half-written output)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def read_done_ids(path: str | Path) -> dict[str, dict[str, Any]]:
    """Records of an earlier (possibly interrupted) output file, by id, for resuming."""
    done: dict[str, dict[str, Any]] = {}
    p = Path(path)
    if not p.exists():
        return done
    with open(p, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash: recompute it
            if isinstance(rec, dict) and "id" in rec and "error" not in rec:
                done[str(rec["id"])] = rec
    return done
