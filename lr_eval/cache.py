"""Content-addressed answer cache on SQLite.

WAL mode and one commit per answer: a crash or `kill -9` loses no completed
answer, and several processes can read and write the same file at once.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    template TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""

_BATCH = 500  # keys per lookup query (SQLite's parameter limit is 999 on old builds)


class ResponseCache:
    """Maps a request's content hash to the stored answer."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=60000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

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
        self._db.execute(
            "INSERT OR REPLACE INTO answers (key, model, template, value, created) VALUES (?, ?, ?, ?, ?)",
            (key, model, template, json.dumps(value, ensure_ascii=False), time.time()),
        )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        self._db.close()
