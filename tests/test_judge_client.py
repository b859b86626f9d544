"""The judge client against a scripted OpenAI-compatible server: faults, cache, budget, fail-fast."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lr_eval.accounting import UsageMeter
from lr_eval.backends import OpenAIBackend
from lr_eval.cache import ResponseCache
from lr_eval.judge import JudgeClient
from lr_eval.testing.scripted_server import FaultPlan, Reply, ScriptedServer, echo_responder, request_key
from lr_eval.types import BudgetExceeded, ChatRequest, JudgeFatalError


def make_client(srv: ScriptedServer, cache: Path | None = None, key: str = "sk-test", **kw) -> JudgeClient:
    backend = OpenAIBackend("judge-model", srv.base_url, key, timeout=kw.pop("timeout", 5.0))
    kw.setdefault("backoff_base", 0.01)
    return JudgeClient(backend, cache=ResponseCache(cache) if cache else None, **kw)


def user(text: str, **kw) -> ChatRequest:
    return ChatRequest.of([{"role": "user", "content": text}], **kw)


def expected_content(req: ChatRequest, default_max_tokens: int = 1024) -> str:
    """The echo of the request as the client sends it (max_tokens filled in with the client's default)."""
    body = {"model": "judge-model", "messages": list(req.messages), "temperature": req.temperature,
            "max_tokens": req.max_tokens or default_max_tokens}
    return echo_responder(body)


def test_thousand_requests_under_faults_each_paid_once(tmp_path: Path) -> None:
    faults = FaultPlan(rate_429=0.08, rate_500=0.08, rate_hang=0.01, rate_malformed=0.05, hang_seconds=1.5,
                       retry_after=0.02, seed=7)
    reqs = [user(f"question {i}") for i in range(1000)]
    with ScriptedServer(faults=faults) as srv:
        client = make_client(srv, tmp_path / "c.sqlite", concurrency=64, timeout=0.7)
        results = client.run(reqs)
        assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
        assert [r.content for r in results] == [expected_content(q) for q in reqs]
        # every kind of fault happened, and still no request was paid twice
        assert {"429", "500", "hang", "malformed"} <= set(srv.fault_counts)
        assert len(srv.paid) == 1000 and set(srv.paid.values()) == {1}
        # each fault was retried; on a loaded machine an answer can also outlast the 0.7 s timeout and be retried
        # (a race, so not counted exactly), and even then it is paid once
        assert client.meter.paid == 1000 and client.meter.retries >= sum(srv.fault_counts.values())
        sent = sum(srv.received.values())

        rerun = make_client(srv, tmp_path / "c.sqlite", concurrency=64)
        again = rerun.run(reqs)
        assert sum(srv.received.values()) == sent  # nothing sent
        assert all(r.cached for r in again) and rerun.meter.cache_hits == 1000
        assert [r.content for r in again] == [r.content for r in results]


def test_partly_cached_batch_sends_only_the_misses(tmp_path: Path) -> None:
    reqs = [user(f"item {i}") for i in range(1200)]  # more keys than one cache lookup query takes
    with ScriptedServer() as srv:
        make_client(srv, tmp_path / "c.sqlite", concurrency=32).run(reqs[::2])
        first = dict(srv.received)
        client = make_client(srv, tmp_path / "c.sqlite", concurrency=32)
        results = client.run(reqs + reqs[:3])  # duplicates of cached requests are hits too
        new = {k: n for k, n in srv.received.items() if k not in first}
        assert len(new) == 600 and set(new.values()) == {1} and all(srv.received[k] == 1 for k in first)
        assert [r.content for r in results] == [expected_content(q) for q in reqs + reqs[:3]]
        assert [r.cached for r in results[:6]] == [True, False] * 3 and results[-1].cached
        assert client.meter.cache_hits == 602 and client.meter.paid == 600


def test_run_closes_the_connections_of_its_event_loop(recwarn: pytest.WarningsRecorder,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    import gc

    with ScriptedServer() as srv:
        client = make_client(srv, concurrency=4)
        for i in range(3):  # each run has its own event loop, hence its own connections
            assert client.run([user(f"round {i}")])[0].ok
            assert client.backend._client is None
        gc.collect()
    assert not [w for w in recwarn if "Unclosed" in str(w.message)]
    assert "Unclosed" not in caplog.text


def test_identical_requests_in_flight_are_sent_once() -> None:
    with ScriptedServer(latency=0.05) as srv:
        client = make_client(srv, concurrency=8)
        results = client.run([user("same")] * 20 + [user("other")])
        assert sum(srv.received.values()) == 2
        assert len({r.content for r in results[:20]}) == 1


def test_retry_after_is_honoured() -> None:
    calls = {"n": 0}

    def responder(body):
        calls["n"] += 1
        if calls["n"] == 1:
            return Reply(status=429, message="slow down", headers={"Retry-After": "0.6"})
        return "fine"

    with ScriptedServer(responder=responder) as srv:
        client = make_client(srv, backoff_base=0.001)
        t0 = time.monotonic()
        [res] = client.run([user("x")])
        assert res.content == "fine" and res.attempts == 2
        assert time.monotonic() - t0 >= 0.6


def test_bad_request_fails_fast_without_retry() -> None:
    def responder(body):
        return Reply(status=400, message="This model's maximum context length is 8192 tokens")

    with ScriptedServer(responder=responder) as srv:
        client = make_client(srv)
        [res] = client.run([user("long")])
        assert not res.ok and res.error_kind == "bad_request" and "maximum context length" in res.error
        assert sum(srv.received.values()) == 1


def test_retries_exhausted_is_an_error_not_a_default(tmp_path: Path) -> None:
    with ScriptedServer(responder=lambda b: Reply(status=503, message="down")) as srv:
        client = make_client(srv, tmp_path / "c.sqlite", max_retries=2)
        [res] = client.run([user("x")])
        assert res.content is None and res.error_kind == "retries_exhausted"
        assert sum(srv.received.values()) == 3 and client.meter.failures == 1
        assert len(ResponseCache(tmp_path / "c.sqlite")) == 0  # failures are never cached


def test_bad_api_key_fails_fast_with_clear_message(tmp_path: Path) -> None:
    with ScriptedServer(api_key="sk-right") as srv:
        client = make_client(srv, tmp_path / "c.sqlite", key="sk-wrong-secret", concurrency=4)
        with pytest.raises(JudgeFatalError, match="refused the credentials"):
            client.run([user(f"q{i}") for i in range(200)])
        assert sum(srv.received.values()) <= 4  # only what was already in flight
    assert b"sk-wrong-secret" not in (tmp_path / "c.sqlite").read_bytes()


def test_max_requests_budget_is_checked_before_sending() -> None:
    with ScriptedServer() as srv:
        meter = UsageMeter(model="judge-model", max_requests=5)
        client = make_client(srv, concurrency=1, meter=meter)
        with pytest.raises(BudgetExceeded, match="max-requests 5"):
            client.run([user(f"q{i}") for i in range(50)])
        assert sum(srv.received.values()) == 5


def test_max_cost_budget_with_price() -> None:
    with ScriptedServer() as srv:
        # 1 USD per token in and out: each request is reserved at its bound, 17-18 bytes + 32 overhead
        # tokens in and 10 out (~60 USD), and really costs ~10 + 10.
        meter = UsageMeter(model="judge-model", price=(1e6, 1e6), max_cost=200.0)
        client = make_client(srv, concurrency=1, meter=meter)
        with pytest.raises(BudgetExceeded, match="max-cost"):
            client.run([user(f"question number {i}", max_tokens=10) for i in range(50)])
        assert meter.cost is not None and meter.cost <= 200.0
        assert 0 < sum(srv.received.values()) < 50


def test_max_cost_without_price_refuses_to_send() -> None:
    with ScriptedServer() as srv:
        client = make_client(srv, meter=UsageMeter(model="judge-model", max_cost=1.0))
        with pytest.raises(BudgetExceeded, match="no price"):
            client.run([user("x")])
        assert sum(srv.received.values()) == 0


def test_dry_run_sends_nothing_and_estimates() -> None:
    with ScriptedServer() as srv:
        client = make_client(srv, dry_run=True)
        results = client.run([user("word " * 40, max_tokens=100)] * 3 + [user("other", max_tokens=100)])
        assert sum(srv.received.values()) == 0
        assert all(r.error_kind == "dry_run" for r in results)
        assert client.meter.est_calls == 2 and client.meter.est_output_tokens == 200


def test_cache_key_covers_template_version_and_decoding() -> None:
    base = user("x", template_id="t", template_version="1")
    assert base.cache_key("m") == user("x", template_id="t", template_version="1").cache_key("m")
    others = [user("x", template_id="t", template_version="2"), user("x", template_id="u", template_version="1"),
              user("x", template_id="t", template_version="1", temperature=0.5),
              user("x", template_id="t", template_version="1", max_tokens=5)]
    keys = {base.cache_key("m"), base.cache_key("m2"), *(r.cache_key("m") for r in others)}
    assert len(keys) == 6


def test_logprobs_round_trip() -> None:
    def responder(body):
        assert body["logprobs"] is True and body["top_logprobs"] == 2
        return Reply(content="m", top_logprobs=[{"m": -0.1, "M": -2.4}])

    with ScriptedServer(responder=responder) as srv:
        [res] = make_client(srv).run([user("which?", max_tokens=1, logprobs=True, top_logprobs=2)])
        assert res.top_logprobs == [{"m": -0.1, "M": -2.4}]


def test_server_counts_requests_by_content() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "a"}]}
    assert request_key(body) == request_key(dict(body))
    assert request_key(body) != request_key({**body, "model": "n"})
