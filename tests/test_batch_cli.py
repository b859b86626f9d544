"""`lr-eval batch` end to end: real process, real sockets, kill -9 and resume, bad input, bad key."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from lr_eval.cli import main
from lr_eval.testing.scripted_server import ScriptedServer


def write_input(path: Path, n: int, bad_lines: dict[int, str] | None = None) -> None:
    lines = [json.dumps({"id": f"r{i}", "messages": [{"role": "user", "content": f"item {i}"}]}) for i in range(n)]
    for idx, text in (bad_lines or {}).items():
        lines[idx] = text
    path.write_text("\n".join(lines) + "\n")


def read_output(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def batch_args(srv: ScriptedServer, inp: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return ["batch", str(inp), "-o", str(out), "--base-url", srv.base_url, "--model", "judge-model",
            "--cache", str(cache), *extra]


def test_batch_keeps_order_reports_bad_lines_and_reruns_free(tmp_path: Path, capsys) -> None:
    inp, out, cache = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "c.sqlite"
    write_input(inp, 30, {4: '{"id": "r4", "messages": [', 9: json.dumps({"id": "r9", "messages": "hi"}),
                          12: json.dumps({"id": "r12", "messages": [{"role": "user", "content": "x"}],
                                          "max_tokens": -3})})
    with ScriptedServer(latency=0.01) as srv:
        assert main(batch_args(srv, inp, out, cache, "--concurrency", "8")) == 1  # some lines failed
        rows = read_output(out)
        err = capsys.readouterr().err
        assert "line 5" in err and "line 10, field 'messages'" in err and "line 13, field 'max_tokens'" in err
        assert [r.get("line") for r in rows if "error" in r] == [5, 10, 13]
        good = [r for r in rows if "error" not in r]
        assert len(good) == 27 and [r["id"] for r in good] == [f"r{i}" for i in range(30) if i not in (4, 9, 12)]
        assert all(r["content"].startswith("echo:") and not r["cached"] for r in good)
        assert all(set(r["usage"]) == {"input_tokens", "output_tokens"} for r in good)
        sent = sum(srv.received.values())
        assert sent == 27

        assert main(batch_args(srv, inp, out, cache)) == 1
        assert sum(srv.received.values()) == sent  # the rerun sent nothing
        assert all(r["cached"] for r in read_output(out) if "error" not in r)


def _cached_answers(cache: Path) -> int:
    if not cache.exists():
        return 0
    with sqlite3.connect(cache) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
        except sqlite3.OperationalError:  # the run has not created its table yet
            return 0


def test_batch_killed_with_sigkill_resumes_without_repeating(tmp_path: Path) -> None:
    inp, out, cache = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "c.sqlite"
    n = 120
    write_input(inp, n)
    # The server answers 20 requests and holds the rest: the run is killed midway by construction, not by timing.
    with ScriptedServer(hold_after=20) as srv:
        cmd = [sys.executable, "-m", "lr_eval", *batch_args(srv, inp, out, cache, "--concurrency", "4")]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        while _cached_answers(cache) < 20 and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        completed = _cached_answers(cache)
        assert completed == 20, "the 20 answered requests are in the cache, the held ones are not"
        assert not out.exists()  # killed before writing: nothing half-written
        received_before = sum(srv.received.values())
        srv.release()

        assert main(batch_args(srv, inp, out, cache, "--concurrency", "16")) == 0
        rows = read_output(out)
        assert [r["id"] for r in rows] == [f"r{i}" for i in range(n)]
        # every answer completed before the kill came from the cache; only the rest was sent again
        assert sum(r["cached"] for r in rows) == completed
        assert sum(srv.received.values()) - received_before == n - completed
        # paid twice: at most the 4 requests that were in flight when the process died
        assert sum(v - 1 for v in srv.paid.values()) <= 4 and len(srv.paid) == n


def test_batch_bad_api_key_fails_fast(tmp_path: Path, monkeypatch, capsys) -> None:
    inp, out, cache = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "c.sqlite"
    write_input(inp, 50)
    monkeypatch.setenv("MY_KEY", "sk-not-the-right-one")
    with ScriptedServer(api_key="sk-right") as srv:
        rc = main(batch_args(srv, inp, out, cache, "--api-key-env", "MY_KEY"))
        # exit 3: a judge stop (documented in the README: 2 bad input/options, 3 judge stop); fast = few requests
        assert rc == 3
        assert sum(srv.received.values()) <= 16
    err = capsys.readouterr().err
    assert "refused the credentials" in err
    rows = read_output(out)
    assert len(rows) == 50 and all("error" in r for r in rows)
    for f in (out, cache):
        assert b"sk-not-the-right-one" not in f.read_bytes()
    assert "sk-not-the-right-one" not in err


def test_batch_dry_run_sends_nothing(tmp_path: Path, capsys) -> None:
    inp, out, cache = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "c.sqlite"
    write_input(inp, 10)
    with ScriptedServer() as srv:
        assert main(batch_args(srv, inp, out, cache, "--dry-run")) == 0
        assert sum(srv.received.values()) == 0
    assert "estimated_calls" in capsys.readouterr().err and not out.exists()


def test_cli_commands_exist() -> None:
    """The three console scripts are declared, and each runs as ``python -m`` (no scripts folder on PATH needed)."""
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts") if e.name.startswith("lr-")}
    assert scripts == {"lr-eval": "lr_eval.cli:main", "lr-train": "lr_eval.train.cli:main",
                       "lr-leaderboard": "lr_eval.leaderboards.cli:main"}
    for name, target in scripts.items():
        package = target.split(":")[0].removesuffix(".cli")
        res = subprocess.run([sys.executable, "-m", package, "--help"], capture_output=True, text=True, timeout=600)
        assert res.returncode == 0 and f"usage: {name}" in res.stdout.lower(), (name, res.stderr)
