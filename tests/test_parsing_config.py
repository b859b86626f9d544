"""Parse policy (unscored, clamp, re-ask) and configuration precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from lr_eval.backends import OpenAIBackend
from lr_eval.config import JudgeConfig
from lr_eval.judge import JudgeClient, run_sync
from lr_eval.parsing import REASK_PROMPT, ParseStats, ask_and_parse, parse_bracket_score
from lr_eval.testing.scripted_server import Reply, ScriptedServer
from lr_eval.types import ChatRequest


@pytest.mark.parametrize("text,value,clamped", [
    ("Analysis ... so [[7]]", 7.0, False),
    ("first [[3]] then revised [[8]]", 8.0, False),
    ("[[ 6.5 ]]", 6.5, False),
    ("score [[9/10]]", 9.0, False),
    ("[[12]]", 10.0, True),
    ("[[-2]]", 0.0, True),
])
def test_bracket_scores(text: str, value: float, clamped: bool) -> None:
    p = parse_bracket_score(text, 0, 10)
    assert p.scored and p.value == value and p.clamped is clamped


@pytest.mark.parametrize("text", ["I rate it 7", "[7]", "[[seven]]", "", None])
def test_unparseable_is_unscored_never_a_default(text: str | None) -> None:
    p = parse_bracket_score(text, 0, 10)
    assert p.value is None and p.reason


def test_reask_is_bounded_and_counted() -> None:
    seen: list[list[dict]] = []

    def responder(body):
        seen.append(body["messages"])
        return "[[4]]" if body["messages"][-1]["content"] == REASK_PROMPT else "looks fine to me"

    with ScriptedServer(responder=responder) as srv:
        client = JudgeClient(OpenAIBackend("m", srv.base_url, "k"))
        stats = ParseStats()
        req = ChatRequest.of([{"role": "user", "content": "rate [[N]]"}], template_id="t", template_version="1")
        parsed, calls = run_sync(lambda: ask_and_parse(client, req, lambda t: parse_bracket_score(t, 0, 10),
                                                       reasks=1, stats=stats))
        assert parsed.value == 4 and len(calls) == 2 and stats.reasked == 1 and stats.scored == 1
        assert seen[1][-2] == {"role": "assistant", "content": "looks fine to me"}

    with ScriptedServer(responder=lambda b: "no verdict here") as srv:
        client = JudgeClient(OpenAIBackend("m", srv.base_url, "k"))
        stats = ParseStats()
        parsed, calls = run_sync(lambda: ask_and_parse(client, req, lambda t: parse_bracket_score(t, 0, 10),
                                                       reasks=2, stats=stats))
        assert parsed.value is None and len(calls) == 3 and stats.to_dict()["unscored"] == 1


def test_failed_call_is_unscored_with_reason() -> None:
    with ScriptedServer(responder=lambda b: Reply(status=400, message="context too long")) as srv:
        client = JudgeClient(OpenAIBackend("m", srv.base_url, "k"))
        req = ChatRequest.of([{"role": "user", "content": "x"}])
        parsed, calls = run_sync(lambda: ask_and_parse(client, req, lambda t: parse_bracket_score(t, 0, 10)))
        assert parsed.value is None and "context too long" in (parsed.reason or "") and len(calls) == 1


def test_config_precedence(tmp_path: Path) -> None:
    f = tmp_path / "judge.toml"
    f.write_text('[judge]\nmodel = "from-file"\nconcurrency = 3\nbase_url = "http://file/v1"\n')
    env = {"LR_JUDGE_MODEL": "from-env", "LR_JUDGE_MAX_COST": "2.5"}
    cfg = JudgeConfig.load(f, env=env, overrides={"concurrency": 9})
    assert (cfg.model, cfg.concurrency, cfg.base_url, cfg.max_cost) == ("from-env", 9, "http://file/v1", 2.5)
    assert cfg.configured and not JudgeConfig.load(env={}).configured


def test_config_errors_name_the_source(tmp_path: Path) -> None:
    f = tmp_path / "judge.toml"
    f.write_text('model = "x"\ncolour = "blue"\n')
    with pytest.raises(ValueError, match="config file .*unknown judge setting 'colour'"):
        JudgeConfig.load(f, env={})
    with pytest.raises(ValueError, match="environment: concurrency"):
        JudgeConfig.load(env={"LR_JUDGE_CONCURRENCY": "many"})


def test_api_key_is_read_from_the_named_variable_only(monkeypatch) -> None:
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-abc")
    cfg = JudgeConfig.load(env={}, overrides={"api_key_env": "MY_JUDGE_KEY", "model": "m"})
    assert cfg.api_key() == "sk-abc" and "sk-abc" not in repr(cfg)
