"""The one way in and out of files: JSONL/JSON input whose errors name file, line and field, output paths
checked before any paid request, atomic writes with the user's umask, and resumable JSONL output.

Input rules (every command): a UTF-8 BOM and CRLF line ends are accepted; a line that is not UTF-8 or not
a JSON object is an error for that line only (the good lines are kept); a missing file, a directory and
an empty file are refused with one message; duplicate ids are refused (the command reading them says if
it has another policy). Output rules (`check_paths`, run by every command before anything is sent): each
written path (outputs, caches) must be writable and must be neither another written path nor any path the
command reads, links resolved; files are created with the user's umask (``tempfile.mkstemp`` alone gives
0600) and hold no registered secret (`lr_eval.redaction`).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import math
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .errors import UserError
from .redaction import redact

T = TypeVar("T")
R = TypeVar("R")
BOM = b"\xef\xbb\xbf"


class InputError(UserError, ValueError):
    """A bad input file or record; the message names the file, the line (when there is one) and the field."""

    def __init__(self, path: str | Path, line: int | None, field: str | None, problem: str):
        where = str(path) + (f" line {line}" if line is not None else "") + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.field, self.problem = str(path), line, field, problem


class OutputPathError(UserError):
    """An output or cache path that cannot be written (or would overwrite an input)."""


# ---------------------------------------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------------------------------------

def check_input_file(path: str | Path) -> Path:
    """The path of a readable regular file, or an InputError saying what it is instead."""
    p = Path(path)
    if p.is_dir():
        raise InputError(p, None, None, "is a directory, expected a file")
    if not p.exists():
        raise InputError(p, None, None, "no such file")
    if not os.access(p, os.R_OK):
        raise InputError(p, None, None, "not readable (permission denied)")
    return p


def _decode(raw: bytes, path: str | Path, n: int) -> str | InputError:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return InputError(path, n, None, f"not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})")


def _raw_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    p = check_input_file(path)
    with open(p, "rb") as f:
        yield from enumerate(f, 1)


def read_lines(path: str | Path, lines: Iterable[tuple[int, bytes]] | None = None
               ) -> Iterator[tuple[int, str | InputError]]:
    """(line number, text or the InputError of a line that is not UTF-8); BOM and CRLF accepted, blank lines
    skipped, streamed (constant memory). `lines`: the raw (number, bytes) lines, default the file's."""
    for n, raw in _raw_lines(path) if lines is None else lines:
        if n == 1 and raw.startswith(BOM):
            raw = raw[len(BOM):]
        text = _decode(raw, path, n)
        if isinstance(text, str) and not text.strip():
            continue
        yield n, text


def read_jsonl(path: str | Path, allow_empty: bool = False, lines: Iterable[tuple[int, bytes]] | None = None
               ) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    """Yield (line number, record or the InputError of that line); a file without any record is an error
    unless `allow_empty`."""
    any_line = False
    for n, text in read_lines(path, lines):
        any_line = True
        if isinstance(text, InputError):
            yield n, text
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as e:
            yield n, InputError(path, n, None, f"not valid JSON ({e.msg} at column {e.colno})")
            continue
        if not isinstance(rec, dict):
            yield n, InputError(path, n, None, f"expected a JSON object, got {type(rec).__name__}")
            continue
        yield n, rec
    if not any_line and not allow_empty:
        raise InputError(path, None, None, "empty file: no records")


def read_json(path: str | Path) -> Any:
    """A whole JSON document (BOM accepted); errors name the line and column."""
    p = check_input_file(path)
    raw = p.read_bytes()
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise InputError(p, line, None, f"not UTF-8 (byte 0x{raw[e.start]:02x})") from None
    if not text.strip():
        raise InputError(p, None, None, "empty file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(p, e.lineno, None, f"not valid JSON ({e.msg} at column {e.colno})") from None


def read_unique(path: str | Path, parse: Callable[[dict[str, Any], int], tuple[str, T]],
                error_id: Callable[[dict[str, Any]], Any]) -> tuple[list[T], list[dict[str, Any]]]:
    """(items, error records ``{"id", "line", "error"}``) of a whole file; see `iter_unique`."""
    items: list[T] = []
    errors: list[dict[str, Any]] = []
    for _, item, error in iter_unique(path, parse, error_id):
        if error is not None:
            errors.append(error)
        else:
            items.append(item)  # type: ignore[arg-type]  # item is set whenever error is None
    return items, errors


def iter_unique(path: str | Path, parse: Callable[[dict[str, Any], int], tuple[str, T]],
                error_id: Callable[[dict[str, Any]], Any],
                lines: Iterable[tuple[int, dict[str, Any] | InputError]] | None = None
                ) -> Iterator[tuple[int, T | None, dict[str, Any] | None]]:
    """Stream (line, item, None) or (line, None, error record ``{"id", "line", "error"}``): `parse` turns a
    record and its line number into (id, item) or raises InputError; a repeated id is an error (the first
    is kept). A bad line never stops the others; `error_id` names the id of a bad record. Memory: the ids.
    `lines`: the records to read (default ``read_jsonl(path)``)."""
    seen: set[str] = set()
    for n, rec in read_jsonl(path) if lines is None else lines:
        try:
            if isinstance(rec, InputError):
                raise rec
            rid, item = parse(rec, n)
            if rid in seen:
                raise InputError(path, n, "id", f"duplicate id {rid!r} (each id may appear once)")
            seen.add(rid)
            yield n, item, None
        except InputError as e:
            yield n, None, {"id": error_id(rec) if isinstance(rec, dict) else None, "line": n, "error": str(e)}


def require(rec: dict[str, Any], field: str, kind: type | tuple[type, ...], path: str | Path, line: int,
            optional: bool = False) -> Any:
    """Fetch a field and check its type (a float must be finite), raising an InputError that names it."""
    if field not in rec or rec[field] is None:
        if optional:
            return None
        raise InputError(path, line, field, "missing")
    value = rec[field]
    check_type(value, kind, path, line, field)
    return value


def check_type(value: Any, kind: type | tuple[type, ...], path: str | Path, line: int | None, field: str) -> None:
    """An InputError naming `field` unless `value` is of `kind` (bool is not an int; NaN/inf are not numbers)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = "/".join(t.__name__ for t in kinds)
        raise InputError(path, line, field, f"expected {names}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(path, line, field, f"expected a finite number, got {value}")


# ---------------------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------------------

def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


PathMap = Mapping[str, "str | Path | None"]


def _clash(a: Path, b: Path) -> bool:
    """The same file: one path resolves (links followed) to the other, or both name one inode."""
    return _same(a, b) or a.resolve() == b.resolve()


def check_paths(writes: PathMap, reads: PathMap = {}) -> dict[str, Path]:  # noqa: B006 - read only
    """The one path rule of every command, run before anything is sent or computed: each path the command
    writes (outputs, judge cache, embedding cache, sample cache...) must be writable and must be neither
    another written path nor any path it reads (input, data, references...), links resolved. `writes` and
    `reads` map what a path is (named in the message, e.g. "--cache") to the path; None entries are skipped.
    Returns the written paths, checked. Raises OutputPathError."""
    out = {what: Path(p).expanduser() for what, p in writes.items() if p is not None}
    ins = {what: Path(p).expanduser() for what, p in reads.items() if p is not None}
    names = list(out)
    for i, what in enumerate(names):
        for other in names[:i]:
            if _clash(out[what], out[other]):
                raise OutputPathError(f"{what} {out[what]} is also the {other} {out[other]}: choose another {what}")
        for other, q in ins.items():
            if _clash(out[what], q):
                raise OutputPathError(f"{what} {out[what]} is also the {other} {q}, which it would replace: "
                                      f"choose another {what}")
    for what, p in out.items():
        check_output_path(p, what=what)
    return out


def check_output_path(path: str | Path, inputs: Iterable[str | Path] = (), what: str = "output") -> Path:
    """Check, before any request is sent, that `path` can be written as a file and is none of `inputs`;
    its parent folders are created. Raises OutputPathError."""
    p = Path(path).expanduser()
    for inp in inputs:
        q = Path(inp).expanduser()
        if _clash(p, q):
            raise OutputPathError(f"{what} {p} is also an input: choose another {what} path")
    if p.is_dir():
        raise OutputPathError(f"{what} {p} is a directory, expected a file path")
    check_dir_writable(p.parent, what=f"{what} folder")
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputPathError(f"{what} {p} is not writable (permission denied)")
    return p


def check_dir_writable(path: str | Path, what: str = "output folder") -> Path:
    """Create the folder `path` if needed and prove a file can be created in it. Raises OutputPathError."""
    p = Path(path).expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=p, prefix=".write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputPathError(f"{what} {p} is not writable ({e.strerror or e})") from None
    return p


def _file_mode() -> int:
    """0o666 minus the process umask: what `open(..., "w")` would create."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic(path: str | Path, write: Callable[[Any], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())  # mkstemp creates 0600; the user's umask decides
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def dumps(rec: Any) -> str:
    """One record as it is written: JSON, with no registered secret in it (`lr_eval.redaction`)."""
    return redact(json.dumps(rec, ensure_ascii=False), generic=False)


def write_jsonl_atomic(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Write all records to a temporary file and rename it into place (no half-written output)."""
    def write(f: Any) -> None:
        for rec in records:
            f.write(dumps(rec) + "\n")
    _atomic(path, write)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a whole text file (a JSON report, a results file) through a temporary file and a rename."""
    _atomic(path, lambda f: f.write(redact(text, generic=False)))


# ---------------------------------------------------------------------------------------------------------
# resumable output
# ---------------------------------------------------------------------------------------------------------

KEY_FIELD = "input_key"


def content_key(record: Any, options: Any) -> str:
    """The identity of one unit of work: a hash of its input record and of the options that change its result.
    A changed record or option gives another key, so an old result is never reused for it."""
    blob = json.dumps([record, options], sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


class ResumableJsonl:
    """A JSONL output that an interrupted run resumes from, keyed by `content_key` (field ``input_key``).

    Opening it indexes the finished records already there (key → file offset: a few dozen bytes per
    record, never the records); a malformed line (a crash mid-write) or a record `reusable` rejects is
    ignored and recomputed. `append` writes and fsyncs each new record at once; `finish` rewrites the
    file atomically in the order given (input order), streaming. Records without a key are never reused.
    """

    def __init__(self, path: str | Path, reusable: Callable[[dict[str, Any]], bool] | None = None):
        self.path = Path(path)
        self.index: dict[str, int] = {}     # reusable records: from earlier runs, or appended now
        self.written: dict[str, int] = {}   # every record appended by this run (failed ones too)
        self.reusable = reusable or (lambda rec: "error" not in rec)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.touch()
        self._fh = open(self.path, "r+b")  # noqa: SIM115 - closed in close()
        self._scan()

    def _scan(self) -> None:
        end = 0
        self._fh.seek(0)
        while True:
            offset = self._fh.tell()
            raw = self._fh.readline()
            if not raw:
                break
            if not raw.endswith(b"\n"):
                break  # cut by a crash: dropped below, recomputed
            end = self._fh.tell()
            try:
                rec = json.loads(raw.decode("utf-8").lstrip("\ufeff"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(rec, dict) and isinstance(rec.get(KEY_FIELD), str) and self.reusable(rec):
                self.index[rec[KEY_FIELD]] = offset
        self._fh.truncate(end)
        self._fh.seek(end)

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def get(self, key: str) -> dict[str, Any] | None:
        """The record of `key` (appended by this run, else a reusable one), read from the file, or None."""
        offset = self.written.get(key, self.index.get(key))
        if offset is None:
            return None
        here = self._fh.tell()
        self._fh.seek(offset)
        rec: dict[str, Any] = json.loads(self._fh.readline().decode("utf-8").lstrip("\ufeff"))
        self._fh.seek(here)
        return rec

    def append(self, rec: dict[str, Any]) -> None:
        """Write one finished record and sync it: a killed run keeps it."""
        self._fh.seek(0, os.SEEK_END)
        offset = self._fh.tell()
        self._fh.write((dumps(rec) + "\n").encode("utf-8"))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        if isinstance(rec.get(KEY_FIELD), str):
            self.written[rec[KEY_FIELD]] = offset
            if self.reusable(rec):
                self.index[rec[KEY_FIELD]] = offset

    def finish(self, order: Iterable[str | dict[str, Any]]) -> None:
        """Rewrite the file as `order` says: a key copies its record, a dict is written as it is."""
        def write(f: Any) -> None:
            for entry in order:
                rec = self.get(entry) if isinstance(entry, str) else entry
                if rec is not None:
                    f.write(dumps(rec) + "\n")
        _atomic(self.path, write)
        self.close()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


class JsonlIndex(Mapping[str, dict[str, Any]]):
    """A JSONL file validated whole and readable by id: id → file offset, never the records themselves.

    `check(record, path, line)` returns the record's id (None: a record that has none and is skipped) or
    raises InputError; a bad line or a repeated id raises (strict: for commands that pay nothing, where a
    fixed file and a rerun cost nothing). `keep` False: validate only.
    """

    def __init__(self, path: str | Path, check: Callable[[dict[str, Any], str | Path, int], str | None],
                 keep: bool = True):
        self.path = Path(path)
        self._offsets: dict[str, int] = {}
        seen: set[str] = set()
        for n, rec, offset in _records_at(self.path):
            if isinstance(rec, InputError):
                raise rec
            rid = check(rec, path, n)
            if rid is None:
                continue
            if rid in seen:
                raise InputError(path, n, "id", f"duplicate id {rid!r} (each id may appear once)")
            seen.add(rid)
            if keep:
                self._offsets[rid] = offset

    def __getitem__(self, rid: str) -> dict[str, Any]:
        with open(self.path, "rb") as f:
            f.seek(self._offsets[rid])
            raw = f.readline()
        return dict(json.loads(raw.decode("utf-8").removeprefix("\ufeff")))  # a line this file checked: an object

    def __iter__(self) -> Iterator[str]:
        return iter(self._offsets)

    def __len__(self) -> int:
        return len(self._offsets)


def _records_at(path: Path) -> Iterator[tuple[int, dict[str, Any] | InputError, int]]:
    """(line, record or InputError, byte offset) of every non-blank line: `read_jsonl` with offsets."""
    at = [0]  # the offset of the line read last: read_jsonl yields each record right after reading its line

    def lines() -> Iterator[tuple[int, bytes]]:
        with open(check_input_file(path), "rb") as f:
            for n in itertools.count(1):
                at[0] = f.tell()
                raw = f.readline()
                if not raw:
                    return
                yield n, raw

    for n, rec in read_jsonl(path, lines=lines()):
        yield n, rec, at[0]


class JsonlRecords:
    """The records a command wrote, read lazily from its JSONL file (results too large to hold). The file's
    digest is taken now: iterating after the file changed raises, and two of them are equal when their
    files held the same bytes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.digest = self._digest()

    def _digest(self) -> str:
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._digest() != self.digest:
            raise RuntimeError(f"{self.path} changed since it was written")
        for _, rec in read_jsonl(self.path, allow_empty=True):
            if isinstance(rec, dict):
                yield rec

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JsonlRecords):
            return self.digest == other.digest
        return isinstance(other, Iterable) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # unhashable, like list (mypy wants a method)


async def run_window(items: Iterable[T], work: Callable[[int, T], Awaitable[R]], window: int,
                     on_done: Callable[[int, T, R], None]) -> None:
    """Run `work(i, item)` for every item with at most `window` running, pulling items lazily (memory is
    bounded by the window, not the number of items); `on_done(i, item, result)` as each finishes. The first
    exception cancels the rest and is raised."""
    source = enumerate(items)
    running: dict[asyncio.Future[R], tuple[int, T]] = {}

    def start() -> bool:
        try:
            i, item = next(source)
        except StopIteration:
            return False
        running[asyncio.ensure_future(work(i, item))] = (i, item)
        return True

    try:
        while len(running) < max(1, window) and start():
            pass
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                i, item = running.pop(fut)
                on_done(i, item, fut.result())
                start()
    finally:
        for fut in running:
            fut.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
