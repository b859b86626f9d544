"""Content-addressed answer cache on SQLite.

WAL mode and one commit per answer: a crash or `kill -9` loses no completed
answer, and several processes can read and write the same file at once.

Processes sharing a cache also share the work: before sending a request, a
client *claims* its key (a row in `claims` with an owner and a lease that the
owner keeps renewing). Another process that needs the same answer waits for
it instead of paying again; a claim whose owner died stops being renewed,
expires, and is taken over, so that request is sent once more.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .jsonl import OutputPathError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    template TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""

_CLAIMS = """
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
)
"""

_BATCH = 500  # keys per lookup query (SQLite's parameter limit is 999 on old builds)


def open_sqlite(path: Path, what: str, schema: Sequence[str]) -> sqlite3.Connection:
    """A cache database in WAL mode with its tables, or one OutputPathError saying why it cannot be: a file
    that is not SQLite (an input given as --cache), a folder that cannot be written, a locked file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=60.0, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=60000")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for table in schema:
            db.execute(table)
    except sqlite3.DatabaseError as e:
        why = ("not an SQLite database: give a new or existing cache file" if "not a database" in str(e)
               else f"cannot be opened for writing ({e})")
        raise OutputPathError(f"{what} {path}: {why}") from None
    except OSError as e:
        raise OutputPathError(f"{what} {path}: cannot be created ({e.strerror or e})") from None
    return db


class ResponseCache:
    """Maps a request's content hash to the stored answer."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self._db = open_sqlite(self.path, "judge cache", (_SCHEMA, _CLAIMS))
        self._lock = threading.RLock()  # one transaction at a time on the shared connection
        # Claims of processes that died long ago and whose keys nobody asked for again.
        try:
            self._db.execute("DELETE FROM claims WHERE expires < ?", (time.time() - 86400,))
        except sqlite3.OperationalError as e:  # a read-only file
            raise OutputPathError(f"judge cache {self.path}: cannot be written ({e})") from None

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM answers WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored answers among `keys`, in a few queries rather than one per key."""
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH):
            part = unique[start:start + _BATCH]
            rows = self._db.execute(f"SELECT key, value FROM answers WHERE key IN ({','.join('?' * len(part))})",
                                    part).fetchall()
            found.update((k, json.loads(v)) for k, v in rows)
        return found

    def put(self, key: str, model: str, template: str, value: dict[str, Any]) -> None:
        """Store an answer. A claim on it may stay a while: `claim` looks for answers first, and the owner
        drops its answered claims in batches (one write per answer keeps the client fast)."""
        self._db.execute(
            "INSERT OR REPLACE INTO answers (key, model, template, value, created) VALUES (?, ?, ?, ?, ?)",
            (key, model, template, json.dumps(value, ensure_ascii=False), time.time()),
        )

    # -- claims: one payer per request across processes -------------------------------------------
    def claim(self, keys: Sequence[str], owner: str, lease: float) -> tuple[set[str], dict[str, dict[str, Any]]]:
        """Claim the keys nobody answered or holds: (keys claimed by `owner`, answers found meanwhile).

        Keys in neither are held by another live owner. A claim of `owner` itself, or an expired one, is
        (re)taken.
        """
        now = time.time()
        with self._transaction():
            answered = self.get_many(keys)
            todo = [k for k in dict.fromkeys(keys) if k not in answered]
            for start in range(0, len(todo), _BATCH):
                part = todo[start:start + _BATCH]
                marks = ",".join("?" * len(part))
                # An expired claim (its owner stopped renewing it) goes; our own is renewed; then every
                # key nobody holds becomes ours.
                self._db.execute(f"DELETE FROM claims WHERE expires < ? AND key IN ({marks})", [now, *part])
                self._db.execute(f"UPDATE claims SET expires = ? WHERE owner = ? AND key IN ({marks})",
                                 [now + lease, owner, *part])
                self._db.executemany("INSERT OR IGNORE INTO claims (key, owner, expires) VALUES (?, ?, ?)",
                                     [(k, owner, now + lease) for k in part])
            claimed = self._owned_by(todo, owner)
        return claimed, answered

    def _owned_by(self, keys: Sequence[str], owner: str) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(keys), _BATCH):
            part = list(keys[start:start + _BATCH])
            rows = self._db.execute(f"SELECT key FROM claims WHERE owner = ? AND key IN ({','.join('?' * len(part))})",
                                    [owner, *part]).fetchall()
            found.update(k for (k,) in rows)
        return found

    def release(self, keys: Sequence[str], owner: str) -> None:
        """Drop `owner`'s claims (a request that ended without an answer)."""
        for start in range(0, len(keys), _BATCH):
            part = list(keys[start:start + _BATCH])
            self._db.execute(f"DELETE FROM claims WHERE owner = ? AND key IN ({','.join('?' * len(part))})",
                             [owner, *part])

    def renew(self, owner: str, lease: float) -> None:
        """Extend every claim of `owner`: the heartbeat that tells others it is alive."""
        self._db.execute("UPDATE claims SET expires = ? WHERE owner = ?", (time.time() + lease, owner))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        self._db.close()
