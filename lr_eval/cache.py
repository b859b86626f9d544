"""Content-addressed answer cache on SQLite.

WAL mode and one commit per answer: a crash or `kill -9` loses no completed
answer, and several processes can read and write the same file at once.

Processes sharing a cache also share the work: before sending a request, a
client *claims* its key (a row in `claims` with an owner and a lease that the
owner keeps renewing). Another process that needs the same answer waits for
it instead of paying again; a claim whose owner died stops being renewed,
expires, and is taken over, so that request is sent once more.

A live owner never loses a claim for being slow: its heartbeat renews from a
thread and connection of its own (a busy event loop does not delay it), and an
expired claim whose owner's process still runs on this host is taken over only
once it is STALE_LEASES leases old (a stopped or wedged process). WAL needs
shared memory, so every process on one cache runs on one host and its pid can
be asked.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
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

#: Leases an expired claim must be past its expiry before it is taken from an owner whose process still runs.
STALE_LEASES = 10


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
        rows = self._for_keys("SELECT key, value FROM answers WHERE", [], list(dict.fromkeys(keys)))
        return {k: json.loads(v) for k, v in rows}

    def _for_keys(self, sql: str, params: Sequence[Any], keys: Sequence[str]) -> list[tuple[Any, ...]]:
        """Run `sql` + `key IN (...)` over `keys` in batches of _BATCH (SQLite's parameter limit); its rows."""
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(keys), _BATCH):
            part = list(keys[start:start + _BATCH])
            rows += self._db.execute(f"{sql} key IN ({','.join('?' * len(part))})", [*params, *part]).fetchall()
        return rows

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

        Keys in neither are held by another owner that is alive. A claim of `owner` itself is renewed; an
        expired one is taken over when its owner's process is gone, or when it is STALE_LEASES leases old.
        A waiter that finds every key answered or held only reads: the write lock stays free for the owners.
        """
        answered = self.get_many(keys)
        todo = [k for k in dict.fromkeys(keys) if k not in answered]
        if not todo or not self._takeable(todo, owner, lease, time.time()):
            return set(), answered
        with self._transaction():
            now = time.time()  # after the lock: a claim written after a long wait gets its whole lease
            answered.update(self.get_many(todo))
            todo = [k for k in todo if k not in answered]
            for start in range(0, len(todo), _BATCH):
                part = todo[start:start + _BATCH]
                marks = ",".join("?" * len(part))
                self._db.executemany("DELETE FROM claims WHERE key = ? AND owner = ?",
                                     [(k, o) for k, o, _ in self._expired(part, owner, lease, now)])
                self._db.execute(f"UPDATE claims SET expires = ? WHERE owner = ? AND key IN ({marks})",
                                 [now + lease, owner, *part])
                self._db.executemany("INSERT OR IGNORE INTO claims (key, owner, expires) VALUES (?, ?, ?)",
                                     [(k, owner, now + lease) for k in part])
            claimed = self._owned_by(todo, owner)
        return claimed, answered

    def _takeable(self, keys: Sequence[str], owner: str, lease: float, now: float) -> bool:
        """Whether a claim transaction could win any of `keys`: one nobody holds, ours, or one to take over."""
        held = {k for (k,) in self._for_keys("SELECT key FROM claims WHERE owner != ? AND", [owner], keys)}
        if len(held) < len(set(keys)):
            return True
        return bool(self._expired(list(held), owner, lease, now))

    def _expired(self, keys: Sequence[str], owner: str, lease: float, now: float) -> list[tuple[str, str, float]]:
        """Other owners' claims among `keys` that may be taken over: expired, and their owner not a running
        process of this host, or the claim STALE_LEASES leases past its expiry."""
        rows = self._for_keys("SELECT key, owner, expires FROM claims WHERE owner != ? AND expires < ? AND",
                              [owner, now], keys)
        running = {o: owner_running(o) for o in {o for _, o, _ in rows}}
        return [(k, o, e) for k, o, e in rows if not running[o] or e < now - STALE_LEASES * lease]

    def _owned_by(self, keys: Sequence[str], owner: str) -> set[str]:
        return {k for (k,) in self._for_keys("SELECT key FROM claims WHERE owner = ? AND", [owner], keys)}

    def release(self, keys: Sequence[str], owner: str) -> None:
        """Drop `owner`'s claims (a request that ended without an answer)."""
        self._for_keys("DELETE FROM claims WHERE owner = ? AND", [owner], keys)

    def heartbeat(self, owner: str, lease: float, holding: Callable[[], bool]) -> ClaimHeartbeat:
        """A heartbeat that keeps `owner`'s claims alive while `holding()` says it holds any."""
        return ClaimHeartbeat(self.path, owner, lease, holding)

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


def owner_running(owner: str) -> bool:
    """Whether a claim owner (``host:pid:tag``, see JudgeClient) is a process of this host that still runs.
    Of an owner of another host nothing is known: its lease alone decides."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, run by another user
        return True
    return True


class ClaimHeartbeat:
    """Renews an owner's claims every third of a lease from a thread and an SQLite connection of its own, so
    that a live owner keeps its claims however long its event loop is busy. The thread runs while `holding()`
    is true and ends when it is not; `start()` (after each new claim) brings it back."""

    def __init__(self, path: Path, owner: str, lease: float, holding: Callable[[], bool]):
        self.path, self.owner, self.lease, self._holding = path, owner, lease, holding
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="claim-heartbeat")
                self._thread.start()

    def _run(self) -> None:
        db = open_sqlite(self.path, "judge cache", ())
        try:
            while True:
                with self._lock:  # decided under the lock that start() takes: a new claim never goes unrenewed
                    if not self._holding():
                        self._thread = None
                        return
                time.sleep(self.lease / 3)
                if self._holding():
                    try:
                        db.execute("UPDATE claims SET expires = ? WHERE owner = ?",
                                   (time.time() + self.lease, self.owner))
                    except sqlite3.OperationalError:  # locked past busy_timeout: the next beat tries again
                        pass
        finally:
            db.close()
