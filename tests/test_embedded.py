"""The embedded SmolLM2 model through the in-process backend: a real model, offline."""

from __future__ import annotations

import pytest

from lr_eval.backends import TransformersBackend
from lr_eval.config import JudgeConfig, build_client
from lr_eval.types import ChatRequest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(embedded_model: str) -> str:
    return embedded_model


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


def test_embedded_judge_lists_the_statements_of_a_factual_answer(model_dir) -> None:
    """Statements v2 (one-paragraph analysis, empty list for none): the embedded judge lists statements of a
    plainly factual answer. With v1's separate [[NO STATEMENTS]] marker it declined on 19 of 21 such inputs."""
    from lr_eval.parsing import ask_and_parse
    from lr_eval.reward import prompts
    from lr_eval.reward.scorer import FORMATS

    t = prompts.template("statements", "en")
    fmt = FORMATS["statements"]
    req = ChatRequest.of(t.messages(question="When did the library at Brenholt open and why was it rebuilt?",
                                    response="The library at Brenholt opened in 1980 and was rebuilt after a "
                                             "flood for 4 million pounds."),
                         max_tokens=200, template_id=t.id, template_version=t.version, answer_format=fmt)
    client = build_client(JudgeConfig(backend="embedded", cache="none"), show_progress=False)
    parsed, [res] = client.run_coroutine(lambda: ask_and_parse(client, req, fmt.parse, reasks=0))
    assert parsed.scored and parsed.constrained and res.usage.output_tokens <= 200
    assert any("1980" in s for s in parsed.items), res.content


def test_demo_shows_the_four_dimensions(model_dir) -> None:
    """`lr-eval demo` (what `make demo` runs) on the embedded model: a number for each dimension and the
    reward, and every verdict decoded under its answer format."""
    import os
    import re
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "100"}  # one torch thread: faster on a shared CPU
    run = subprocess.run([sys.executable, "-m", "lr_eval.cli", "demo", "--cache", "none"], capture_output=True,
                         text=True, env=env, timeout=900)
    out = run.stdout + run.stderr  # the rich console writes to stderr
    assert run.returncode == 0, out[-3000:]
    for dim in ("helpfulness", "logicality", "faithfulness", "completeness", "reward"):
        assert re.search(rf"│ {dim}\s+│\s+\d+(\.\d+)?\s+│", out), (dim, out[-3000:])
    made = re.search(r"verdicts decoded under their answer format: (\d+) of (\d+)", out)
    assert made and made.group(1) == made.group(2), out[-3000:]
