"""`lr-train` sample → score → pairs → dpo: sampling against the scripted server (seeds, resume,
middle truncation), the pair rules and report, the score step against the canned judge, the TOML
run config, and the whole chain on the tiny model ending with a checkpoint."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from lr_eval.reward.chunking import minilm_path
from lr_eval.testing.canned_judge import CannedJudge, block, template_of
from lr_eval.testing.scripted_server import Reply, ScriptedServer
from lr_eval.train import cli
from lr_eval.train.pairs import PairPolicy, build_pairs, margin_summary, responses_sha, select_pair
from lr_eval.train.sample import PromptFitter, middle_cut, user_text

# The tiny model's chat template: the user turn, then " w0" opens the answer.
CHAT_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }} w0"
                 "{% else %} {{ m['content'] }} </s>{% endif %}{% endfor %}")


def words(a: int, b: int) -> str:
    return " ".join(f"w{i}" for i in range(a, b))


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def policy(body: dict[str, Any]) -> str:
    """A scripted policy: a distinct answer per seed, in words the tiny tokenizer knows."""
    s = int(body["seed"])
    return f"w{40 + s} w{50 + s} w{60 - s}"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from transformers import AutoTokenizer

    from lr_eval.testing.tiny import save_tiny_model

    path = save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", n_words=64, seed=0)
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(path)
    return path


# -- sample ------------------------------------------------------------------------------------------------

def test_sample_one_request_per_seed_resumes_and_retries_failures(tmp_path: Path, capsys: Any) -> None:
    prompts = write_lines(tmp_path / "prompts.jsonl", [
        {"id": "a", "context": words(20, 30), "question": "w1 w2"},
        {"idx": 7, "context": words(30, 40), "query": "w3", "win_response": "ignored"},
        '{"id": "broken", ',
        {"id": "c", "context": words(20, 25), "question": "w4"},
    ])
    out = tmp_path / "samples.jsonl"
    fail_once = {"armed": True}

    def flaky(body: dict[str, Any]) -> str | Reply:
        if body["seed"] == 2 and "w4" in body["messages"][0]["content"] and fail_once["armed"]:
            return Reply(status=400, message="scripted refusal")
        return policy(body)

    argv = ["sample", str(prompts), "-o", str(out), "--model", "policy", "-n", "3", "--max-tokens", "16"]
    with ScriptedServer(responder=flaky) as srv:
        assert cli.main([*argv, "--base-url", srv.base_url]) == 1  # the bad line
        assert len(srv.bodies) == 9
        assert sorted(b["seed"] for b in srv.bodies) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
        assert all(b["temperature"] == 1.0 and b["max_tokens"] == 16 for b in srv.bodies)
        recs = read(out)
        assert [r["id"] for r in recs] == ["a", "7", None, "c"]
        a, b, bad, c = recs
        assert a["responses"] == ["w40 w50 w60", "w41 w51 w59", "w42 w52 w58"] and a["seeds"] == [0, 1, 2]
        assert a["sampling"]["n"] == 3 and a["sampling"]["temperature"] == 1.0 and not a["truncated"]
        assert b["question"] == "w3" and "line 3" in bad["error"]
        assert c["seeds"] == [0, 1] and c["failed"][0]["seed"] == 2 and "scripted refusal" in c["failed"][0]["error"]
        captured = capsys.readouterr()
        assert "failed samples / prompts without any" in captured.out and "policy usage" in captured.err

        # rerun: the finished prompts are reused; only the failed sample is asked again
        fail_once["armed"] = False
        assert cli.main([*argv, "--base-url", srv.base_url]) == 1
        assert len(srv.bodies) == 10 and srv.bodies[-1]["seed"] == 2
        assert read(out)[3]["seeds"] == [0, 1, 2] and "failed" not in read(out)[3]

        # the output alone resumes (no cache), and the cache alone resumes (no output): nothing is sent
        assert cli.main([*argv, "--base-url", srv.base_url, "--cache", "none"]) == 1
        out.unlink()
        assert cli.main([*argv, "--base-url", srv.base_url]) == 1
        assert len(srv.bodies) == 10
        assert read(out)[0] == a

        # other decoding settings are new samples
        assert cli.main([*argv, "--base-url", srv.base_url, "--seed", "100", "--cache", "none"]) == 1
        assert len(srv.bodies) == 19 and min(b["seed"] for b in srv.bodies[10:]) == 100


def test_middle_truncation_is_counted_and_keeps_head_and_tail(tiny: Path, tmp_path: Path, capsys: Any) -> None:
    long_context = " ".join(f"w{20 + i % 40}" for i in range(200))
    prompts = write_lines(tmp_path / "prompts.jsonl", [
        {"id": "short", "context": words(20, 30), "question": "w1 w2"},
        {"id": "long", "context": long_context, "question": "w1 w2"},
        {"id": "hopeless", "context": "w20", "question": words(0, 60)},
    ])
    out = tmp_path / "samples.jsonl"
    with ScriptedServer(responder=policy) as srv:
        rc = cli.main(["sample", str(prompts), "-o", str(out), "--model", "policy", "--base-url", srv.base_url,
                       "-n", "2", "--max-tokens", "8", "--tokenizer", str(tiny), "--max-model-len", "48"])
        assert rc == 1  # "hopeless" cannot fit
        sent = [b["messages"][0]["content"] for b in srv.bodies]
    assert len(sent) == 4  # nothing sent for the prompt that cannot fit
    short, long, hopeless = read(out)
    assert not short["truncated"] and short["prompt_tokens"] == 10 + 2 + 1
    assert long["truncated"] and long["context"] == long_context  # the record keeps the full context
    assert long["prompt_tokens"] == 40 and long["context_tokens_cut"] == 200 - (40 - 3)
    seen = next(s for s in sent if s.endswith("w1 w2") and len(s.split()) > 20)
    kept = seen.split()[:-2]
    assert len(kept) == 37 and kept[:18] == long_context.split()[:18] and kept[-19:] == long_context.split()[-19:]
    assert hopeless["too_long"] and "cannot fit" in hopeless["error"]
    text = capsys.readouterr().out
    assert re.search(r"prompts truncated \(middle of the context cut\)\s+│?\s*1", text)
    assert re.search(r"prompts too long even without context\s+│?\s*1", text)


def test_window_reported_by_the_endpoint(tiny: Path, tmp_path: Path, capsys: Any) -> None:
    from aiohttp import web

    served = str(tmp_path / "served-policy")  # a served name that is no loadable tokenizer (and needs no hub)

    async def models(request: web.Request) -> web.Response:  # as `vllm serve --max-model-len 48` answers
        return web.json_response({"object": "list", "data": [{"id": served, "max_model_len": 48}]})

    prompts = write_lines(tmp_path / "prompts.jsonl", [{"id": "long", "context": words(0, 60), "question": "w1"}])
    out = tmp_path / "samples.jsonl"
    srv = ScriptedServer(responder=policy)
    srv._models = models  # type: ignore[method-assign]
    with srv:
        argv = ["sample", str(prompts), "-o", str(out), "--model", served, "--base-url", srv.base_url, "-n", "1",
                "--max-tokens", "8"]
        assert cli.main(argv) == 2 and not srv.bodies  # the served name is no tokenizer: say so, send nothing
        assert "pass --tokenizer" in capsys.readouterr().err
        assert cli.main([*argv, "--tokenizer", str(tiny)]) == 0
        [rec] = read(out)
        assert rec["truncated"] and rec["prompt_tokens"] == 40 and rec["sampling"]["max_prompt_tokens"] == 40
        assert cli.main([*argv, "--max-model-len", "0"]) == 0  # never check
        assert len(srv.bodies[-1]["messages"][0]["content"].split()) == 61


def test_fitter_and_user_text_match_the_trainer(tiny: Path) -> None:
    from transformers import AutoTokenizer

    from lr_eval.train.data import PreferenceExample

    assert middle_cut(list(range(10)), 5) == ([0, 1], [7, 8, 9])
    assert middle_cut(list(range(4)), 9) == ([0, 1], [2, 3])
    assert user_text("ctx", "q") == PreferenceExample("a", "b", context="ctx", question="q").user_text()
    fitter = PromptFitter(AutoTokenizer.from_pretrained(tiny), budget=12)
    assert fitter.chat and fitter.count("w20 w21", "w1") == 4  # 3 words + the template's " w0"
    fit = fitter.fit(words(20, 40), "w1")
    assert fit.truncated and fit.tokens == 12 and fit.context == "w20 w21 w22 w23 w24 w35 w36 w37 w38 w39"


def test_sample_in_process_with_transformers(tiny: Path, tmp_path: Path) -> None:
    from lr_eval.train.sample import PolicyConfig, SampleConfig, run_sample

    prompts = write_lines(tmp_path / "prompts.jsonl", [{"id": "a", "context": words(20, 30), "question": "w1"}])
    pc = PolicyConfig(model=str(tiny), backend="transformers")
    cfg = SampleConfig(n=2, max_tokens=3)
    final, stats, meter = run_sample(prompts, tmp_path / "s.jsonl", pc, cfg, show_progress=False)
    [rec] = final
    assert len(rec["responses"]) == 2 and rec["prompt_tokens"] == 12 and stats.truncated == 0
    assert meter.paid == 2 and rec["sampling"]["model"].startswith("model@")
    assert rec["sampling"]["max_prompt_tokens"] == 4096 - 3  # the tiny model's window
    (tmp_path / "s.jsonl").unlink()
    again, _, meter = run_sample(prompts, tmp_path / "s.jsonl", pc, cfg, show_progress=False)
    assert meter.paid == 0 and meter.cache_hits == 2 and again == final


# -- pairs -------------------------------------------------------------------------------------------------

def test_select_pair_rules() -> None:
    P = PairPolicy
    resp = ["a", "bb", "ccc", "dddd", "eeeee"]
    assert dataclasses.asdict(select_pair(resp, [1, 5, 3, 9, 2], P(min_scored=5))) == {
        "chosen": 3, "rejected": 0, "margin": 8.0, "candidates": 5, "chosen_ties": 1, "rejected_ties": 1,
        "dropped": None, "partial": 0}
    assert select_pair(resp, [1, 5, None, 9, 2], P()).dropped == "too_few_scored"
    assert select_pair(resp, [1, 5, None, 9, 2], P(min_scored=4)).chosen == 3
    assert select_pair(resp, [4, 4, 4, 4, 4], P()).dropped == "all_tied"
    assert select_pair(resp, [1, 5, 3, 9, 2], P(min_margin=8)).chosen == 3  # margin 8 >= 8: kept
    assert select_pair(resp, [1, 5, 3, 9, 2], P(min_margin=8.5)).dropped == "below_min_margin"
    # ties: several best and several worst
    r = [7, 2, 7, 2, 5]
    first = select_pair(resp, r, P())
    assert (first.chosen, first.rejected, first.chosen_ties, first.rejected_ties) == (0, 1, 2, 2)
    shortest = select_pair(["long answer", "x", "ok", "much longer", "y"], r, P(ties="shortest"))
    assert (shortest.chosen, shortest.rejected) == (2, 3)  # shortest of the best, longest of the worst
    assert select_pair(resp, r, P(ties="drop")).dropped == "tied_extremes"
    assert select_pair(resp, [7, 2, 6, 3, 5], P(ties="drop")).chosen == 0
    # float noise counts as a tie
    assert select_pair(resp[:2], [0.1 + 0.2, 0.3], P(min_scored=2)).dropped == "all_tied"
    # blank responses and (optionally) responses cut at max_tokens are not candidates
    assert select_pair(["a", "  ", "c"], [5, 0, 3], P(min_scored=2)).rejected == 2
    cut = ["stop", "length", "stop"]
    assert select_pair(["a", "b", "c"], [9, 5, 3], P(min_scored=2, exclude_cut=True), cut).dropped is None
    assert select_pair(["a", "b", "c"], [9, 5, 3], P(min_scored=3, exclude_cut=True), cut).dropped == "too_few_scored"
    with pytest.raises(ValueError, match="ties"):
        P(ties="random")
    with pytest.raises(ValueError, match="min_scored"):
        P(min_scored=1)


def _sample(pid: str, rewards: list[float | None], **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    responses = [f"w{40 + i} answer {pid} {i}" for i in range(len(rewards))]
    sample = {"id": pid, "context": "w20 w21", "question": "w1", "responses": responses,
              "seeds": list(range(len(rewards))), "finish_reasons": ["stop"] * len(rewards),
              "sampling": {"model": "policy", "temperature": 1.0}, "truncated": pid == "p0", **extra}
    results = [{"helpfulness": r, "logicality": r, "faithfulness": r, "completeness": r, "reward": r,
                "flags": []} for r in rewards]
    return sample, {"id": pid, "responses_sha": responses_sha(responses), "judge": "judge", "results": results}


def test_build_pairs_report_and_trainer_format(tmp_path: Path) -> None:
    from lr_eval.train.data import read_preference_jsonl

    rows = [_sample("p0", [1, 9, 5]), _sample("p1", [2, 2.5, 2]), _sample("p2", [3, 3, 3]),
            _sample("p3", [None, None, 4]), _sample("p4", [0, 10, 6])]
    samples = [s for s, _ in rows] + [{"id": "p5", "line": 9, "error": "all 3 samples failed"},
                                      _sample("p6", [1, 2, 3])[0], {"id": None, "line": 11, "error": "bad line"}]
    scores = {sc["id"]: sc for _, sc in rows}
    scores["p6"] = {**_sample("p6", [1, 2, 3])[1], "responses_sha": "stale"}
    scores["orphan"] = {"id": "orphan", "results": []}
    pairs, report = build_pairs(samples, scores, PairPolicy(min_margin=1.0, min_scored=2))
    assert [p["id"] for p in pairs] == ["p0", "p4"]
    d = report.to_dict()
    assert d["prompts"] == 7 and d["kept"] == 2
    assert d["dropped"] == {"sampling_failed": 1, "not_scored": 1, "partial_reward": 0, "too_few_scored": 1,
                            "all_tied": 1, "tied_extremes": 0, "below_min_margin": 1}
    assert d["dropped_ids"]["below_min_margin"] == ["p1"] and d["unmatched_score_records"] == 1
    assert d["margin"]["min"] == 8 and d["margin"]["max"] == 10 and d["margin"]["p50"] == 9
    assert d["margin_histogram"]["8-9"] == 1 and d["margin_histogram"]["9-10"] == 1
    assert d["kept_with_truncated_prompt"] == 1 and d["chosen_reward_mean"] == 9.5
    p0 = pairs[0]
    assert p0["chosen"].endswith("p0 1") and p0["rejected"].endswith("p0 0") and p0["margin"] == 8
    assert p0["chosen_scores"]["helpfulness"] == 9 and p0["provenance"]["chosen_seed"] == 1
    assert p0["provenance"]["policy"] == "policy" and p0["provenance"]["judge"] == "judge"
    assert p0["provenance"]["prompt_truncated"]
    assert margin_summary([]) == dict.fromkeys(["min", "p10", "p25", "p50", "p75", "p90", "max", "mean"])

    # the CLI writes the pairs (readable by the trainer's reader) and the JSON report
    sp, scp, out = tmp_path / "s.jsonl", tmp_path / "sc.jsonl", tmp_path / "pairs.jsonl"
    write_lines(sp, samples)
    write_lines(scp, list(scores.values()))
    assert cli.main(["pairs", str(sp), str(scp), "-o", str(out), "--min-margin", "1", "--min-scored", "2"]) == 0
    examples = read_preference_jsonl(out)
    assert [e.question for e in examples] == ["w1", "w1"] and examples[0].chosen == p0["chosen"]
    assert json.loads((tmp_path / "pairs.report.json").read_text())["kept"] == 2
    # scores of `lr-eval score` (no responses_sha) are matched by their number of results
    write_lines(scp, [{"id": sc["id"], "results": sc["results"]} for sc in scores.values()])
    assert cli.main(["pairs", str(sp), str(scp), "-o", str(out), "--min-scored", "2", "--min-margin", "9"]) == 0
    assert [e["id"] for e in read(out)] == ["p4"]
    assert cli.main(["pairs", str(sp), str(scp), "-o", str(out), "--min-margin", "20"]) == 1  # nothing kept


# -- score -------------------------------------------------------------------------------------------------

def graded_judge() -> CannedJudge:
    """Helpfulness and completeness from the response's first word (w40 → 0, w41 → 1, ...)."""
    def grade(body: dict[str, Any]) -> str:
        m = re.match(r"w(\d+)", block(body, "response"))
        return f"Analysis: graded.\n[[{min(10, int(m.group(1)) - 40) if m else 5}]]"

    return CannedJudge(answers={"helpfulness": grade, "completeness": grade})


def judge_args(srv: ScriptedServer, cache: Path | str) -> list[str]:
    return ["--base-url", srv.base_url, "--model", "judge", "--cache", str(cache), "--embedder", "bm25",
            "--tokenizer", str(minilm_path())]


def test_score_step_writes_each_group_and_resumes(tmp_path: Path, capsys: Any) -> None:
    context = "The ferry leaves at noon. It returns at six in the evening. Tickets cost four pounds. " * 5
    samples = [
        {"id": "a", "context": context, "question": "When does the ferry leave?",
         "responses": ["w41 It leaves at noon.", "w47 It leaves at noon, returns at six.", "w41 It leaves at noon."]},
        {"id": "b", "context": context, "question": "What do tickets cost?", "responses": ["w45 Four pounds."]},
        {"id": "dead", "line": 3, "error": "all 3 samples failed"},
    ]
    sp, out = write_lines(tmp_path / "samples.jsonl", samples), tmp_path / "scores.jsonl"
    with ScriptedServer(responder=graded_judge()) as srv:
        assert cli.main(["score", str(sp), "-o", str(out), *judge_args(srv, tmp_path / "judge.sqlite")]) == 0
        recs = read(out)
        assert [r["id"] for r in recs] == ["a", "b"] and recs[0]["judge"] == "judge"
        assert recs[0]["responses_sha"] == responses_sha(samples[0]["responses"])
        a = recs[0]["results"]
        assert [r["helpfulness"] for r in a] == [1, 7, 1] and a[0]["reward"] == a[2]["reward"]
        assert a[2]["usage"]["calls"] == 0  # a duplicate response is scored once
        assert a[1]["reward"] > a[0]["reward"]
        extract = [b for b in srv.bodies if template_of(b)[1] == "extract"]
        assert len(extract) == 2  # the completeness extraction: once per prompt, not per response
        assert "reward" in capsys.readouterr().out
        sent = len(srv.bodies)

        # rerun without the judge cache: the finished prompts are skipped, nothing is sent
        rerun = ["score", str(sp), "-o", str(out), *judge_args(srv, "none")]
        assert cli.main(rerun) == 0 and len(srv.bodies) == sent
        # new responses for "b": only "b" is scored again
        samples[1]["responses"] = ["w42 Four pounds, I think."]
        write_lines(sp, samples)
        assert cli.main(rerun) == 0
        assert {block(b, "response") for b in srv.bodies[sent:] if template_of(b)[1] == "helpfulness"} == \
            {"w42 Four pounds, I think."}
        assert read(out)[0] == recs[0] and read(out)[1]["results"][0]["helpfulness"] == 2


# -- run CONFIG --------------------------------------------------------------------------------------------

def test_table_argv_maps_keys_to_options(tmp_path: Path) -> None:
    from lr_eval.train.pipeline import plan

    config = {"run": {"workdir": str(tmp_path / "w")},
              "sample": {"input": "p.jsonl", "model": "policy", "base_url": "http://x/v1", "n": 4, "top-p": 0.9},
              "score": {"model": "judge", "embedder": "bm25", "dry_run": False, "no_audit": True},
              "pairs": {"min_margin": 0.5, "ties": "shortest", "exclude_cut": True},
              "dpo": {"model": "sft", "use_lora": False, "shuffle": True, "max_steps": 2,
                      "lora_target_modules": ["q_proj", "v_proj"], "learning_rate": 1e-5}}
    steps = dict(plan(config))
    w = tmp_path / "w"
    assert steps["sample"] == ["p.jsonl", "-o", str(w / "samples.jsonl"), "--model", "policy", "--base-url",
                               "http://x/v1", "--n", "4", "--top-p", "0.9"]
    assert steps["score"][:3] == [str(w / "samples.jsonl"), "-o", str(w / "scores.jsonl")]
    assert "--no-audit" in steps["score"] and "--dry-run" not in steps["score"]
    assert steps["pairs"][:4] == [str(w / "samples.jsonl"), str(w / "scores.jsonl"), "-o", str(w / "pairs.jsonl")]
    assert steps["dpo"] == [str(w / "pairs.jsonl"), "--output-dir", str(w / "dpo"), "--model", "sft",
                            "--no-use-lora", "--shuffle", "--max-steps", "2", "--lora-target-modules",
                            "q_proj,v_proj", "--learning-rate", "1e-05"]
    args = cli.build_parser().parse_args(["dpo", *steps["dpo"]])
    dpo = cli.dpo_config(args)
    assert dpo.use_lora is False and dpo.lora_target_modules == ["q_proj", "v_proj"] and dpo.beta == 0.15
    assert dpo.resume_from == "latest" and dpo.train_file == str(w / "pairs.jsonl")
    with pytest.raises(ValueError, match=r"\[pairs\]: unknown key 'margin'"):
        plan({**config, "pairs": {"margin": 1}})
    with pytest.raises(ValueError, match=r"\[dpo\]: shuffle must be true or false"):
        plan({**config, "dpo": {"model": "m", "shuffle": "yes"}})
    with pytest.raises(ValueError, match="workdir is required"):
        plan({"sample": {}})
    with pytest.raises(ValueError, match=r"\[dpo\]: model is required"):
        plan({**config, "dpo": {}})
    in_process = {**config, "sample": {"input": "p.jsonl", "model": "/m/sft", "backend": "transformers"}, "dpo": {}}
    assert dict(plan(in_process))["dpo"][3:5] == ["--model", "/m/sft"]
    only = dict(plan({**config, "run": {"workdir": "w", "steps": ["pairs", "dpo"]}, "sample": {}}))
    assert list(only) == ["pairs", "dpo"]


def test_dpo_options_cover_the_config(capsys: Any) -> None:
    from lr_eval.options import option_fields
    from lr_eval.train.dpo_config import DPOConfig

    # every field is a flag of `lr-train dpo` (the PAIRS argument aside), its default shown in --help
    options = {f.name for f in option_fields(DPOConfig)}
    assert {f.name for f in dataclasses.fields(DPOConfig)} == options | {"train_file"}
    with pytest.raises(SystemExit):
        cli.main(["dpo", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert "DPO β (default 0.15)" in helptext and "chunks of N tokens (default 1024)" in helptext
    assert all("--" + name.replace("_", "-") in helptext for name in options)
    dpo = cli.dpo_config(cli.build_parser().parse_args(
        ["dpo", "p.jsonl", "--model", "m", "--lambda", "0.3", "--lr", "1e-5", "--epochs", "2", "--full",
         "--max-length", "0", "--resume-from", "none", "--no-shuffle"]))
    assert (dpo.nll_weight, dpo.learning_rate, dpo.num_epochs, dpo.use_lora, dpo.max_length) == (0.3, 1e-5, 2, False,
                                                                                                  None)
    assert dpo.resume_from is None and dpo.shuffle is False and dpo.beta == 0.15 and dpo.train_file == "p.jsonl"


def test_run_chains_sample_score_pairs_dpo(tiny: Path, tmp_path: Path, capsys: Any) -> None:
    pytest.importorskip("peft")
    pytest.importorskip("accelerate")
    torch = pytest.importorskip("torch")
    prompts = write_lines(tmp_path / "prompts.jsonl", [
        {"id": f"p{i}", "context": " ".join(f"w{20 + (i * 7 + j) % 40}" for j in range(30)), "question": "w5 w6"}
        for i in range(3)])
    work = tmp_path / "work"
    with ScriptedServer(responder=policy) as pol, ScriptedServer(responder=graded_judge()) as judge:
        config = tmp_path / "run.toml"
        config.write_text(f"""
[run]
workdir = "{work}"

[sample]
input = "{prompts}"
model = "policy"
base_url = "{pol.base_url}"
n = 3
max_tokens = 16
tokenizer = "{tiny}"
max_model_len = 64

[score]
model = "judge"
base_url = "{judge.base_url}"
cache = "{tmp_path / 'judge.sqlite'}"
embedder = "bm25"
tokenizer = "{minilm_path()}"
no_audit = true

[pairs]
min_scored = 3

[dpo]
model = "{tiny}"
max_steps = 2
batch_size = 1
max_length = 64
lora_r = 4
lora_alpha = 8
learning_rate = 1e-3
console = false
""")
        assert cli.main(["run", "--plan", str(config)]) == 0
        assert capsys.readouterr().out.count("lr-train ") == 4
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            assert cli.main(["run", str(config)]) == 0
        finally:
            torch.set_num_threads(previous)
        assert len(pol.bodies) == 9 and judge.bodies
        pairs = read(work / "pairs.jsonl")
        assert len(pairs) == 3
        # the graded judge prefers the later seeds (w42 > w41 > w40): chosen seed 2, rejected seed 0
        assert all(p["provenance"]["chosen_seed"] == 2 and p["provenance"]["rejected_seed"] == 0 for p in pairs)
        assert json.loads((work / "pairs.report.json").read_text())["kept"] == 3
        final = work / "dpo" / "final"
        assert (final / "adapter_config.json").is_file() and (final / "adapter_model.safetensors").is_file()
        assert (work / "dpo" / "checkpoint-2" / "trainer_state.json").is_file()
        assert len(read(work / "dpo" / "metrics.jsonl")) == 2

        # rerunning the data steps sends nothing: every step resumes
        sent = (len(pol.bodies), len(judge.bodies))
        assert cli.main(["run", str(config), "--steps", "sample,score,pairs"]) == 0
        assert (len(pol.bodies), len(judge.bodies)) == sent
        assert read(work / "pairs.jsonl") == pairs
