"""Issue 22 §2 and §4: a budget holds whatever the server reports, and no key reaches a file or the terminal.

Every case runs `lr-eval batch`'s own code (`run_batch`) against a scripted server that misreports usage,
echoes credentials or drops the connection; the assertions are bounds that hold whatever the timing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lr_eval import batch
from lr_eval.accounting import max_input_tokens
from lr_eval.cache import ResponseCache
from lr_eval.config import ConfigError, JudgeConfig
from lr_eval.jsonl import OutputPathError, write_text_atomic
from lr_eval.redaction import redact
from lr_eval.testing.scripted_server import Reply, ScriptedServer
from lr_eval.types import JudgeStop

PRICE = (50.0, 200.0)  # USD per 1M tokens: one request's bound (~1,290 bytes in, 64 out) is ~0.077 USD
MAX_TOKENS = 64
CONTENT = "x" * 1200


def bound_cost() -> float:
    n = max_input_tokens([{"role": "user", "content": f"0000 {CONTENT}"}])
    return (n * PRICE[0] + MAX_TOKENS * PRICE[1]) / 1e6


def run(tmp: Path, reply: Any, budget: float | None, n: int = 60, concurrency: int = 16,
        env: dict[str, str] | None = None, **over: Any) -> tuple[list[dict[str, Any]], Any, str]:
    """(output rows, the client's meter, the stop's message or "") of one `lr-eval batch` run."""
    inp, out = tmp / "in.jsonl", tmp / "out.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "max_tokens": MAX_TOKENS, "messages": [
        {"role": "user", "content": f"{i:04d} {CONTENT}"}]}) + "\n" for i in range(n)))
    captured: dict[str, Any] = {}
    build = batch.build_client

    def capture(cfg: JudgeConfig) -> Any:
        captured["client"] = build(cfg, show_progress=False)
        return captured["client"]

    with ScriptedServer(responder=reply, latency=0.005, api_key=over.pop("server_key", None)) as srv:
        cfg = JudgeConfig.load(env=env or {}, overrides={
            "base_url": over.pop("base_url", srv.base_url), "model": "m", "cache": str(tmp / "c.sqlite"),
            "max_cost": budget, "price_input": PRICE[0], "price_output": PRICE[1], "concurrency": concurrency,
            "max_retries": 0, **over})
        batch.build_client = capture  # type: ignore[assignment]
        stop = ""
        try:
            batch.run_batch(inp, out, cfg)
        except JudgeStop as e:
            stop = str(e)
        finally:
            batch.build_client = build  # type: ignore[assignment]
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    return rows, captured["client"].meter, stop


def not_sent(stop: str) -> int:
    return int(stop.split(" requests not sent")[0].rsplit(" ", 1)[-1])


@pytest.mark.parametrize("concurrency", [1, 16])
def test_inflated_usage_is_charged_at_the_bound_and_stops_new_sends(tmp_path: Path, concurrency: int) -> None:
    rows, meter, stop = run(tmp_path, lambda b: Reply(content="ok", usage=(10**6, 10**6)), 1.0,
                            concurrency=concurrency)
    assert "more than its bound" in stop
    assert meter.cost <= 1.0                                    # 1000x reports: the budget still holds
    answered = [r for r in rows if "content" in r]
    assert len(answered) == meter.paid == len(ResponseCache(tmp_path / "c.sqlite"))  # paid = in the output
    assert meter.paid <= max(1, int(1.0 / bound_cost()))        # nothing sent after the first report
    assert not_sent(stop) == sum("not sent" in r.get("error", "") for r in rows) == 60 - meter.paid


@pytest.mark.parametrize("mode", ["missing", "zero"])
def test_unreported_usage_is_charged_at_the_bound_said_once(tmp_path: Path, mode: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    def reply(body: dict[str, Any]) -> Reply:
        return Reply(content="ok", omit_usage=True) if mode == "missing" else Reply(content="ok", usage=(0, 0))

    rows, meter, stop = run(tmp_path, reply, 1.0)
    assert meter.charged_at_bound == meter.paid > 0
    assert 1.0 - bound_cost() < meter.cost <= 1.0               # charged, and up to the budget
    assert capsys.readouterr().err.count("charged at their bound") == 1
    assert not_sent(stop) == 60 - meter.paid


@pytest.mark.parametrize("concurrency", [16, 64])
def test_reservations_are_released_as_answers_settle(tmp_path: Path, concurrency: int) -> None:
    """An honest server: the run spends up to its budget (within one request's bound), at any concurrency."""
    def reply(body: dict[str, Any]) -> Reply:
        return Reply(content="ok " * 10, usage=(len(body["messages"][0]["content"]) // 4, 10))

    rows, meter, stop = run(tmp_path, reply, 0.5, n=120, concurrency=concurrency)
    assert 0.5 - bound_cost() < meter.cost <= 0.5
    assert meter.charged_at_bound == 0
    assert not_sent(stop) == sum("not sent" in r.get("error", "") for r in rows) == 120 - meter.paid > 0


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-1"])
def test_a_budget_that_is_not_a_finite_non_negative_number_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="max_cost"):
        JudgeConfig.load(env={"LR_JUDGE_MAX_COST": value})
    with pytest.raises(ConfigError, match="max_cost"):
        JudgeConfig.load(env={}, overrides={"max_cost": float(value)})


# -- keys ------------------------------------------------------------------------------------------------


def test_a_server_echoing_the_key_never_puts_it_in_rows_or_stderr(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    key = "sk-live-SECRET-0123456789"
    reply = lambda b: Reply(status=400, message="bad request", echo_auth=True)  # noqa: E731
    rows, _, _ = run(tmp_path, reply, None, n=3, env={"LR_JUDGE_API_KEY": key})
    text = (tmp_path / "out.jsonl").read_text() + capsys.readouterr().err
    assert all("bad request" in r["error"] for r in rows)
    assert key not in text and "[redacted]" in text


@pytest.mark.parametrize("var", ["OPENAI_API_KEY", "LR_JUDGE_API_KEY"])
def test_a_refused_key_names_the_variable_it_came_from(tmp_path: Path, var: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LR_JUDGE_API_KEY", raising=False)
    monkeypatch.setenv(var, "sk-wrong-key-123456")
    _, _, stop = run(tmp_path, lambda b: "ok", None, n=2, server_key="sk-right")
    assert f"${var}" in stop and "sk-wrong-key-123456" not in stop


def test_url_user_info_is_in_no_description_or_file(tmp_path: Path) -> None:
    cfg = JudgeConfig.load(env={}, overrides={"base_url": "http://user:URLKEY-9876@127.0.0.1:9/v1", "model": "m"})
    assert "URLKEY-9876" not in cfg.describe() and "user:" not in cfg.describe()
    write_text_atomic(tmp_path / "results.json", json.dumps({"base_url": "http://user:URLKEY-9876@host/v1"}))
    assert "URLKEY-9876" not in (tmp_path / "results.json").read_text()
    assert "URLKEY" not in redact("connection error with http://user:URLKEY-9876@host/v1")


@pytest.mark.parametrize("user_info", ["user:URLKEY-9876@", "user@", ":URLKEY-9876@"])
def test_url_with_credentials_is_refused_before_any_request(tmp_path: Path, user_info: str) -> None:
    """The key goes as a bearer token and the HTTP client refuses both at once: such a URL would fail every
    request after its retries, so `lr-eval batch` stops before sending, with the URL redacted."""
    import subprocess
    import sys

    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text(json.dumps({"id": 1, "messages": [{"role": "user", "content": "x"}]}) + "\n")
    with ScriptedServer(responder=lambda b: "ok") as srv:
        url = srv.base_url.replace("http://", f"http://{user_info}")
        r = subprocess.run([sys.executable, "-m", "lr_eval", "batch", str(inp), "-o", str(out), "--base-url", url,
                            "--model", "m", "--cache", "none"], capture_output=True, text=True, timeout=120)
        assert not srv.bodies
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "base_url" in r.stderr and "credentials" in r.stderr and "URLKEY" not in r.stderr + r.stdout
    assert not out.exists()


def test_embedding_url_with_credentials_is_refused_when_built() -> None:
    """httpx would send the URL's user-info as basic auth in place of the key: refused before any request."""
    from lr_eval.embed import build_embedder

    with pytest.raises(ConfigError, match="embedding base URL .*credentials") as e:
        build_embedder("openai:text-embedding-3-small", base_url="http://user:URLKEY-9876@127.0.0.1:9/v1")
    assert "URLKEY" not in str(e.value)
    assert build_embedder("openai:text-embedding-3-small", base_url="http://127.0.0.1:9/v1") is not None


# -- connections and caches ----------------------------------------------------------------------------------


def test_a_dropped_connection_is_reported_as_what_it_is(tmp_path: Path) -> None:
    rows, _, _ = run(tmp_path, lambda b: Reply(drop_after=0.2), None, n=1, timeout=120.0)
    assert "closed the connection" in rows[0]["error"] and "within 120" not in rows[0]["error"]


def test_a_cache_that_is_not_sqlite_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.jsonl"
    bad.write_text('{"id": 1}\n')
    with pytest.raises(OutputPathError, match="not an SQLite database"):
        ResponseCache(bad)
    assert bad.read_text() == '{"id": 1}\n'
