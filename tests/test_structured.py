"""Answer formats (lr_eval.formats): grammar-conforming answers parse, constrained backends always yield a
verdict, servers get the grammar in the requested form, and ratings can be read from log-probabilities."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from lr_eval.backends import TransformersBackend
from lr_eval.config import ConfigError, JudgeConfig, build_client
from lr_eval.constrained import allowed_tokens, matcher
from lr_eval.demo import RATING_FORMAT
from lr_eval.formats import (
    AnswerFormat,
    FormatTooLarge,
    from_json,
    rating_distribution,
    verdict_logprobs_from_steps,
)
from lr_eval.judge import JudgeClient
from lr_eval.parsing import ParseStats, ask_and_parse
from lr_eval.reward.scorer import FORMATS, support_batch_format
from lr_eval.testing.scripted_server import Reply, ScriptedServer
from lr_eval.tasks.alpacaeval2 import FORMAT as ALPACA_FORMAT
from lr_eval.tasks.longbench_chat import FORMAT as CHAT_FORMAT
from lr_eval.tasks.longbench_judged import QA_FORMAT, SUMMARY_FORMAT
from lr_eval.tasks.mtbench import FORMAT as MTBENCH_FORMAT
from lr_eval.types import ChatRequest

ALL_FORMATS: list[AnswerFormat] = [*FORMATS.values(), support_batch_format(["S1", "S2", "S3"]), QA_FORMAT,
                                   SUMMARY_FORMAT, CHAT_FORMAT, MTBENCH_FORMAT, RATING_FORMAT]
CORPUS = ["The bridge was closed for repairs in 2019 after inspectors found corrosion.",
          "Score: [[7]] Verdicts: S1: [[fully supported]] [[STATEMENTS]] [[END]] [[NO STATEMENTS]]",
          "The museum received two million visitors; the treaty was signed by three states.",
          "分析：段落写明 2019 年因维修而关闭。", "- item one\n- item two\n0123456789 []"] * 20


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    """A byte-level BPE tokenizer trained here (offline), with a chat template: it can spell any answer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>{% endfor %}"
                          "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
    return fast


def walk(tok: Any, lark: str, rng: random.Random, stop_p: float = 0.3) -> str:
    """A random answer of the grammar: uniformly random allowed tokens, ending at random once complete."""
    m = matcher(tok, lark)
    ids: list[int] = []
    while not m.is_stopped():
        if m.is_accepting() and rng.random() < stop_p:
            break
        allowed = [int(i) for i in allowed_tokens(m, len(tok)).nonzero()[0] if i != tok.eos_token_id]
        if not allowed:
            break
        t = rng.choice(allowed)
        assert m.consume_token(t), m.get_error()
        ids.append(t)
    assert m.is_accepting(), tok.decode(ids)
    return tok.decode(ids)


def scored(value: Any) -> bool:
    return value is not None and getattr(value, "scored", True)


@pytest.mark.parametrize("fmt", ALL_FORMATS + [ALPACA_FORMAT], ids=lambda f: f.name)
def test_every_grammar_conforming_answer_parses(fmt: AnswerFormat, tokenizer: Any) -> None:
    rng = random.Random(fmt.name)
    max_tokens = 1 if not fmt.rationale else 120
    for grammar in (fmt.lark(max_tokens), f'start: /{fmt.regex(max_tokens)}/'):  # in-process and server forms
        for _ in range(15):
            text = walk(tokenizer, grammar, rng)
            parsed = fmt.parse(text)
            assert scored(parsed), (fmt.name, text, parsed)
            if fmt.ratings:
                assert parsed.value in fmt.ratings and not parsed.clamped
                assert f"[[{int(parsed.value)}]]" in text


def test_statement_list_shape_one_paragraph_then_a_possibly_empty_list() -> None:
    """Statements v2: the analysis is one paragraph ended by a line break (or absent), and "no statement" is
    the empty list; there is no second way into the verdict ([[NO STATEMENTS]] is v1's, read but not offered)."""
    import re

    fmt = FORMATS["statements"]
    rx = fmt.regex(200)
    ok = ["Analysis: two facts.\n[[STATEMENTS]]\n- A is B.\n- C is D.\n[[END]]",
          "Analysis: nothing checkable.\n[[STATEMENTS]]\n[[END]]", "[[STATEMENTS]]\n[[END]]"]
    for text in ok:
        assert re.fullmatch(rx, text), text
        assert fmt.parse(text).scored
    for text in ["Analysis: first line.\nsecond line.\n[[STATEMENTS]]\n[[END]]",  # two paragraphs
                 "Analysis: no line break.[[STATEMENTS]]\n[[END]]", "Analysis: none.\n[[NO STATEMENTS]]"]:
        assert not re.fullmatch(rx, text), text
    schema = fmt.json_schema(200)["properties"]
    assert schema["analysis"]["pattern"] == r"^[^\[\]\n]*$"
    assert from_json('{"analysis": "none here", "verdict": "[[STATEMENTS]]\\n[[END]]"}') == \
        "none here\n[[STATEMENTS]]\n[[END]]"
    assert FORMATS["helpfulness"].json_schema(200)["properties"]["analysis"]["pattern"] == r"^[^\[\]]*$"


def test_lark_bound_is_in_tokens_and_leaves_room_for_the_verdict(tokenizer: Any) -> None:
    fmt = FORMATS["statements"]
    rng = random.Random(0)
    for _ in range(20):
        text = walk(tokenizer, fmt.lark(60), rng, stop_p=0.0)  # never stops early: runs into every bound
        assert len(tokenizer.encode(text, add_special_tokens=False)) <= 60 - 1
    with pytest.raises(FormatTooLarge):
        FORMATS["helpfulness"].grammar(6)


def test_a_budget_too_small_for_the_verdict_is_a_failed_call_not_a_crash(tiny_dir: Path) -> None:
    client = JudgeClient(TransformersBackend(tiny_dir, model="tiny"), show_progress=False, structured="llguidance")
    fmt = support_batch_format(["S1", "S2", "S3"])
    req = ChatRequest.of([{"role": "user", "content": "x"}], max_tokens=20, answer_format=fmt)
    parsed, [res] = client.run_coroutine(lambda: ask_and_parse(client, req, fmt.parse, 0))
    assert res.error_kind == "bad_request" and not parsed.scored and "no room for the verdict" in parsed.reason


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    from lr_eval.testing.tiny import tiny_llama

    d = tmp_path_factory.mktemp("tiny-bpe")
    tiny_llama(len(tokenizer), seed=3, pad_token_id=0, bos_token_id=1, eos_token_id=2).save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


def test_transformers_backend_constrained_always_parses(tiny_dir: Path) -> None:
    """A random tiny model writes noise; under the grammar every answer still parses, and reports say so."""
    backend = TransformersBackend(tiny_dir, model="tiny")
    on = JudgeClient(backend, show_progress=False, structured="llguidance")
    off = JudgeClient(backend, show_progress=False)
    stats_on, stats_off = ParseStats(), ParseStats()
    kinds = [FORMATS["helpfulness"], FORMATS["statements"], FORMATS["support"], support_batch_format(["S1", "S2"]),
             CHAT_FORMAT]  # one of each kind of verdict
    for i, fmt in enumerate(kinds):
        for temperature in (0.0, 1.0):
            req = ChatRequest.of([{"role": "user", "content": f"grade answer {i}"}], max_tokens=80,
                                 temperature=temperature, seed=i, answer_format=fmt)
            parsed, [res] = on.run_coroutine(lambda req=req, p=fmt.parse: ask_and_parse(on, req, p, 0, stats_on))
            assert parsed.scored and parsed.constrained, (fmt.name, res.content)
            assert res.usage.output_tokens <= 80
            if temperature == 0.0:
                parsed, _ = off.run_coroutine(lambda req=req, p=fmt.parse: ask_and_parse(off, req, p, 0, stats_off))
                assert not parsed.constrained
    assert stats_on.to_dict()["constrained"] == stats_on.scored == 2 * len(kinds)
    assert stats_off.scored < stats_off.scored + sum(stats_off.unscored.values())  # unconstrained noise fails


def test_transformers_logprob_scores_are_over_valid_ratings(tiny_dir: Path) -> None:
    client = JudgeClient(TransformersBackend(tiny_dir, model="tiny"), show_progress=False, structured="llguidance",
                         score_from="logprobs")
    req = ChatRequest.of([{"role": "user", "content": "rate"}], max_tokens=24, answer_format=FORMATS["helpfulness"])
    parsed, [res] = client.run_coroutine(lambda: ask_and_parse(client, req, FORMATS["helpfulness"].parse, 0))
    assert set(res.verdict_logprobs) == {str(r) for r in range(11)}
    probs = {int(k): math.exp(v) for k, v in res.verdict_logprobs.items()}
    z = sum(probs.values())
    assert parsed.from_logprobs and parsed.value == pytest.approx(sum(r * p / z for r, p in probs.items()))
    assert parsed.argmax == max(probs, key=probs.get)


def test_modes_enter_the_cache_key_and_default_keys_do_not_change() -> None:
    base = ChatRequest.of([{"role": "user", "content": "x"}], max_tokens=50)
    fmt = ChatRequest.of([{"role": "user", "content": "x"}], max_tokens=50, answer_format=FORMATS["helpfulness"])
    assert base.cache_key("m") == fmt.cache_key("m")  # declared but not enforced: same answer, same key
    keys = {fmt.cache_key("m")}
    from dataclasses import replace

    for kw in ({"structured": "llguidance"}, {"structured": "regex"}, {"score_from": "logprobs"},
               {"structured": "regex", "max_tokens": 60}):
        keys.add(replace(fmt, **kw).cache_key("m"))
    assert len(keys) == 5


def test_rating_distribution_math() -> None:
    d = rating_distribution({"3": math.log(0.2), "4": math.log(0.6), " 5": math.log(0.1), "x": 0.0, "9": 0.0},
                            (1, 2, 3, 4, 5))
    assert d is not None
    assert d.probs == pytest.approx({3: 2 / 9, 4: 6 / 9, 5: 1 / 9})
    assert d.mean == pytest.approx((3 * 2 + 4 * 6 + 5 * 1) / 9)
    assert d.argmax == 4
    assert rating_distribution({"x": 0.0}, (1, 2)) is None


def test_verdict_logprobs_from_server_steps_split_ten_from_one() -> None:
    tokens = ["Good", " answer", ".", " [[", "1", "0", "]]"]
    steps = [{t: 0.0} for t in tokens]
    steps[4] = {"1": math.log(0.5), "9": math.log(0.3), "8": math.log(0.2)}
    steps[5] = {"0": math.log(0.8), "]]": math.log(0.2)}
    lp = verdict_logprobs_from_steps(tokens, steps, tuple(range(11)))
    assert lp is not None
    got = {k: math.exp(v) for k, v in lp.items()}
    assert got == pytest.approx({"10": 0.4, "1": 0.1, "9": 0.3, "8": 0.2})
    assert verdict_logprobs_from_steps(["no verdict"], [{}], (1, 2)) is None


def test_server_gets_the_grammar_in_each_form_and_logprob_scores() -> None:
    fmt = FORMATS["helpfulness"]
    steps = [{"Fine": 0.0}, {" [[": 0.0}, {"7": math.log(0.7), "6": math.log(0.3)}, {"]]": 0.0}]

    def responder(body: dict[str, Any]) -> Reply:
        if "response_format" in body:
            return Reply(content=json.dumps({"analysis": "Fine", "verdict": "[[7]]"}))
        return Reply(content="Fine [[7]]", top_logprobs=steps)

    with ScriptedServer(responder) as srv:
        for form in ("structured_outputs", "guided_regex", "regex", "json_schema"):
            cfg = JudgeConfig(model="j", base_url=srv.base_url, cache="none", structured="on",
                              structured_form=form, score_from="logprobs")
            client = build_client(cfg, show_progress=False)
            req = ChatRequest.of([{"role": "user", "content": "rate"}], max_tokens=100, answer_format=fmt)
            parsed, _ = client.run_coroutine(lambda req=req, client=client: ask_and_parse(client, req, fmt.parse))
            body = srv.bodies[-1]
            if form == "json_schema":
                schema = body["response_format"]["json_schema"]["schema"]
                assert schema["properties"]["verdict"]["pattern"] == "^" + fmt.grammar(100).parts[1].regex() + "$"
                assert parsed.value == 7 and parsed.constrained
            else:
                sent = {"structured_outputs": lambda b: b["structured_outputs"]["regex"],
                        "guided_regex": lambda b: b["guided_regex"], "regex": lambda b: b["regex"]}[form](body)
                assert sent == fmt.regex(100)
                assert body["logprobs"] is True and body["top_logprobs"] == 20
                assert parsed.from_logprobs and parsed.value == pytest.approx(6.7) and parsed.argmax == 7
        off = build_client(JudgeConfig(model="j", base_url=srv.base_url, cache="none"), show_progress=False)
        off.run([ChatRequest.of([{"role": "user", "content": "rate"}], max_tokens=100, answer_format=fmt)])
        assert not {"structured_outputs", "guided_regex", "regex", "response_format", "logprobs"} & set(srv.bodies[-1])


def test_structured_settings_resolve_per_backend() -> None:
    assert JudgeConfig(backend="openai").structured_mode() is None
    assert JudgeConfig(backend="embedded").structured_mode() == "llguidance"
    assert JudgeConfig(backend="embedded", structured="off").structured_mode() is None
    assert JudgeConfig(backend="vllm").structured_mode() == "vllm"
    assert JudgeConfig(backend="openai", structured="on", structured_form="regex").structured_mode() == "regex"
    with pytest.raises(ConfigError, match="score_from"):
        JudgeConfig.load(env={}, overrides={"score_from": "probabilities"})
    assert from_json('{"analysis": "ok", "verdict": "[[3]]"}') == "ok\n[[3]]"
    assert from_json("plain [[3]]") == "plain [[3]]"


def test_longreward_stages_send_their_grammar_and_canned_answers_match_it() -> None:
    """Scoring through a server with --structured on: every stage's request carries its own format's regex
    (support_batch: one line per statement of that call), and the canned judge's answers fit those regexes."""
    import re

    from lr_eval.reward.scorer import LongRewardScorer, RewardConfig
    from lr_eval.testing.canned_judge import CannedJudge, template_of

    context = " ".join(f"The mill at Quorn {v} in {1900 + i}." for i, v in
                       enumerate(["opened", "closed", "was sold", "burned", "reopened"] * 8))
    with ScriptedServer(responder=CannedJudge()) as srv:
        cfg = JudgeConfig(model="j", base_url=srv.base_url, cache="none", structured="on", structured_form="regex")
        scorer = LongRewardScorer(build_client(cfg, show_progress=False), RewardConfig(), embedder=None)
        score = scorer.score(context, "When did the mill open and close?",
                             "The mill at Quorn opened in 1900. It closed in 1901.")
        assert score.reward is not None
        seen = set()
        for body in srv.bodies:
            stage = template_of(body)[1]  # type: ignore[index]
            seen.add(stage)
            # the rationale: one paragraph for the statement list, free text for the others
            assert body["regex"].startswith(r"(?:[^\[\]\n\s]" if stage == "statements" else r"[^\[\]]{0,")
            answer = CannedJudge()(body)
            text = answer if isinstance(answer, str) else answer.content
            assert re.fullmatch(body["regex"], text, flags=re.DOTALL), (stage, text)
        assert {"helpfulness", "logicality", "statements", "extract", "completeness"} <= seen
        assert seen & {"support", "support_batch"}
    assert scorer.parse_stats["helpfulness"].constrained == 1


class _FakeVLLM:
    """A stand-in for the `vllm` package (no vLLM or GPU here): records what our backend passes to the
    engine and answers like vLLM's offline API (outputs, token ids, per-step logprobs)."""

    def __init__(self, tokens: list[str], alternatives: dict[int, dict[str, float]], new_api: bool):
        import types

        self.params: list[Any] = []
        fake = self

        class SamplingParams:
            def __init__(self, **kw: Any):
                self.kw = kw

        class Params:
            def __init__(self, regex: str):
                self.regex = regex

        class Logprob:
            def __init__(self, token: str, lp: float):
                self.decoded_token, self.logprob = token, lp

        class LLM:
            def __init__(self, model: str, **kw: Any):
                self.model = model

            def chat(self, conversations: list[Any], params: Any, use_tqdm: bool = False) -> list[Any]:
                fake.params.append(params)
                ids = list(range(len(tokens)))
                steps = []
                for i, tok in enumerate(tokens):  # vLLM keys each step by token id, the chosen one included
                    alts = alternatives.get(i, {tok: 0.0})
                    vocab = {t: 1000 + j for j, t in enumerate(alts)}
                    step = {vocab[t]: Logprob(t, lp) for t, lp in alts.items() if t != tok}
                    step[ids[i]] = Logprob(tok, alts.get(tok, 0.0))
                    steps.append(step)
                comp = types.SimpleNamespace(text="".join(tokens), token_ids=ids, finish_reason="stop",
                                             logprobs=steps)
                return [types.SimpleNamespace(prompt_token_ids=[1, 2, 3], outputs=[comp])]

        self.module = types.ModuleType("vllm")
        self.module.LLM, self.module.SamplingParams = LLM, SamplingParams  # type: ignore[attr-defined]
        self.sampling = types.ModuleType("vllm.sampling_params")
        setattr(self.sampling, "StructuredOutputsParams" if new_api else "GuidedDecodingParams", Params)


@pytest.mark.parametrize("new_api", [True, False], ids=["structured_outputs", "guided_decoding"])
def test_vllm_backend_sends_the_format_regex_and_reads_verdict_logprobs(new_api: bool,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process vLLM path (glue only: vLLM itself needs a GPU): the request's grammar reaches
    SamplingParams in the form of the installed vLLM, the answer fits it, and --score-from logprobs reads
    the probabilities vLLM reports at the verdict position."""
    import re
    import sys

    tokens = ["Mostly", " right", ".", "\n", "[[", "7", "]]"]
    fake = _FakeVLLM(tokens, {5: {"7": math.log(0.6), "8": math.log(0.3), "3": math.log(0.1)}}, new_api)
    monkeypatch.setitem(sys.modules, "vllm", fake.module)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", fake.sampling)
    fmt = FORMATS["helpfulness"]
    client = build_client(JudgeConfig(backend="vllm", model="/models/judge", cache="none", score_from="logprobs"),
                          show_progress=False)
    req = ChatRequest.of([{"role": "user", "content": "rate it"}], max_tokens=64, template_id="t",
                         template_version="1", answer_format=fmt)
    stats = ParseStats()
    parsed, _ = client.run_coroutine(lambda: ask_and_parse(client, req, fmt.parse, stats=stats))
    (params,) = fake.params
    form = params.kw["structured_outputs" if new_api else "guided_decoding"]
    assert form.regex == fmt.regex(64)
    assert re.fullmatch(form.regex, "".join(tokens))
    assert params.kw["max_tokens"] == 64 and params.kw["logprobs"] >= 3
    assert parsed.constrained and parsed.from_logprobs
    assert parsed.value == pytest.approx(0.6 * 7 + 0.3 * 8 + 0.1 * 3) and parsed.argmax == 7
