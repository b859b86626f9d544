"""The embedded SmolLM2 model through the in-process backend: a real model, offline."""

from __future__ import annotations

import pytest

from lr_eval.backends import TransformersBackend
from lr_eval.config import JudgeConfig, build_client
from lr_eval.embedded import embedded_model_path
from lr_eval.types import ChatRequest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir():
    try:
        return embedded_model_path()
    except RuntimeError as e:
        pytest.skip(str(e))


def test_embedded_model_answers_through_the_judge_client(model_dir, tmp_path) -> None:
    client = build_client(JudgeConfig(backend="embedded", cache=str(tmp_path / "c.sqlite")))
    req = ChatRequest.of([{"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
                         max_tokens=24, logprobs=True, top_logprobs=3)
    [res] = client.run([req])
    assert res.ok and "Paris" in res.content
    assert res.usage.input_tokens > 5 and 0 < res.usage.output_tokens <= 24
    assert len(res.top_logprobs) == res.usage.output_tokens and len(res.top_logprobs[0]) == 3
    [again] = client.run([req])
    assert again.cached and again.content == res.content and client.meter.cache_hits == 1


def test_context_too_long_is_a_clear_per_request_error(model_dir) -> None:
    backend = TransformersBackend(model_dir, max_input_tokens=64)
    client = build_client(JudgeConfig(backend="embedded", cache="none"), backend=backend)
    [res] = client.run([ChatRequest.of([{"role": "user", "content": "word " * 200}], max_tokens=8)])
    assert res.error_kind == "bad_request" and "context too long" in res.error


def test_embedded_judge_constrained_end_to_end(model_dir) -> None:
    """One short LongReward rating from the embedded judge: held to its format, it parses, also from logprobs."""
    from lr_eval.parsing import ask_and_parse
    from lr_eval.reward import prompts
    from lr_eval.reward.scorer import FORMATS

    t = prompts.template("helpfulness", "en")
    fmt = FORMATS["helpfulness"]
    req = ChatRequest.of(t.messages(question="When did the bridge reopen?", response="It reopened in 2020."),
                         max_tokens=24, template_id=t.id, template_version=t.version, answer_format=fmt)
    client = build_client(JudgeConfig(backend="embedded", cache="none", score_from="logprobs"), show_progress=False)
    parsed, [res] = client.run_coroutine(lambda: ask_and_parse(client, req, fmt.parse, reasks=0))
    assert parsed.scored and parsed.constrained and res.usage.output_tokens <= 24
    assert parsed.from_logprobs and 0 <= parsed.value <= 10 and parsed.argmax in range(11)
    assert set(res.verdict_logprobs) == {str(r) for r in range(11)}
