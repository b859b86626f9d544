"""`lr-eval rejudge` on every judged family: AlpacaEval 2 (corpus-level win rate and LC win rate) and
LongReward-as-a-metric (longqa, with its groups), from --predict_only-style samples files written from
fixtures, judged by scripted servers. No model, no network.

(Judged LongBench and LongBench-Chat: tests/test_tasks_judged.py; rejudge == lm-eval on the very same
samples: the end-to-end tests there and in tests/test_tasks_alpacaeval_longqa.py.)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from lr_eval.cli import main as lr_eval_main
from lr_eval.testing.scripted_server import Reply, ScriptedServer
from lm_eval_checks import AE_FIX, AE_META, FIX

DATE = "2025-01-01T00-00-00.000000"
SINGLE_DOC = ["narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh"]


def write_samples(folder: Path, task: str, docs: list[dict[str, Any]], responses: list[str],
                  metadata: dict[str, Any] | None = None) -> Path:
    """A --predict_only samples file (bypass metric, plain filtered responses) and, with `metadata`,
    the run's results file next to it (its configs.<task>.metadata holds the run's task settings)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"samples_{task}_{DATE}.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i, (doc, resp) in enumerate(zip(docs, responses, strict=True)):
            f.write(json.dumps({"doc_id": i, "doc": doc, "target": "", "arguments": [["prompt", {}]],
                                "resps": [[resp]], "filtered_resps": [resp], "filter": "judge",
                                "metrics": ["bypass"], "bypass": None}) + "\n")
    if metadata is not None:
        results = {"results": {task: {"bypass,judge": 999}}, "configs": {task: {"metadata": {
            **metadata, "version": 1.0, "predict_only": True, "judge_model": "the-old-judge"}}},
            "config": {"model": "hf", "model_args": "pretrained=some-model"}, "model_name": "some-model"}
        (folder / f"results_{DATE}.json").write_text(json.dumps(results), encoding="utf-8")
    return path


def rejudged(out: Path, task: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    [results] = out.glob("results_*.json")
    [samples] = out.glob(f"samples_{task}_2*.jsonl")
    return json.loads(results.read_text()), [json.loads(line) for line in samples.read_text().splitlines()]


# ------------------------------------------------------------------------------------------ AlpacaEval 2


def alpaca_judge(refs: list[dict[str, Any]]) -> Any:
    """Prefers the reference (0.8) wherever it is shown; always the first on the haiku; no identifier on
    the cat name (unscored). Log-probabilities as the weighted annotator reads them."""

    def judge(body: dict[str, Any]) -> Reply:
        user = body["messages"][-1]["content"]
        first = user.split('Answer "m":')[1].split('Answer "M":')[0]
        if "haiku" in user:
            return Reply(content="m", top_logprobs=[{"m": math.log(0.9), "M": math.log(0.1)}])
        if "Cardboard Carl" in user:
            return Reply(content="The", top_logprobs=[{"The": -0.1, "Based": -3.0}])
        p_first = 0.8 if any(r["output"] in first for r in refs) else 0.2
        return Reply(content="m" if p_first > 0.5 else "M",
                     top_logprobs=[{"m": math.log(p_first), "M": math.log(1 - p_first), "The": -9.0}])

    return judge


def test_rejudge_alpacaeval2_gives_alpaca_eval_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Win rate, LC win rate and friends of rejudged samples = alpaca_eval's computation on the same verdicts;
    the task settings (data files, both orders) come from the original run's results file."""
    from lr_eval.tasks.alpacaeval2 import is_swapped, load_reference
    from lr_eval.tasks.alpacaeval_metrics import length_controlled_winrate, load_gamed, win_rate_metrics

    refs = json.loads((AE_FIX / "reference_outputs.json").read_text())
    docs = load_reference(AE_FIX / "reference_outputs.json")
    responses = [f"  model answer number {i}, {'x' * (7 * i)}\n" for i in range(len(docs))]
    responses[5] = docs[5]["reference"] + "\n"  # identical to the reference: 1.5 without a call
    samples = write_samples(tmp_path / "run", "longreward_alpacaeval2", docs, responses, metadata=AE_META)
    with ScriptedServer(responder=alpaca_judge(refs)) as srv:
        rc = lr_eval_main(["rejudge", str(samples), "--base-url", srv.base_url, "--model", "judge-2",
                           "--price-input", "1", "--price-output", "1", "-o", str(tmp_path / "rj")])
        assert rc == 0
        assert len(srv.bodies) == 10  # 5 judged instructions x both orders
    out, new = rejudged(tmp_path / "rj", "longreward_alpacaeval2")
    verdicts = [json.loads(s["filtered_resps"][0]) for s in new]
    expected: list[float | None] = [1.2] * 6
    expected[1] = 1.9 if is_swapped(refs[1]["instruction"]) else 1.1  # the haiku: first shown wins
    expected[4] = None
    expected[5] = 1.5
    assert [v["value"] for v in verdicts] == pytest.approx(expected)
    assert [v["response"] for v in verdicts] == [r.strip() for r in responses]

    r = out["results"]["longreward_alpacaeval2"]
    base = win_rate_metrics(expected, [len(resp.strip()) for resp in responses])
    for key in ("win_rate", "standard_error", "discrete_win_rate"):
        assert r[f"{key},judge"] == pytest.approx(base[key], abs=1e-9), key
    assert r["avg_length,judge"] == base["avg_length"]
    annotations = [{"output_1": ref["output"], "output_2": resp.strip(), "preference": p}
                   for ref, resp, p in zip(refs, responses, expected, strict=True)]
    lc = length_controlled_winrate(annotations, None, load_gamed(AE_FIX / "df_gamed.csv"))
    assert r["length_controlled_winrate,judge"] == pytest.approx(lc["length_controlled_winrate"], abs=1e-9)
    assert r["lc_standard_error,judge"] == pytest.approx(lc["lc_standard_error"], abs=1e-9)
    assert r["position_consistency,judge"] == pytest.approx(3 / 4)  # haiku flips; unscored and identical left out
    assert r["judge_unscored,judge"] == 1.0 and r["judge_cost_usd,judge"] > 0 and r["sample_len"] == 6
    assert r["win_rate_stderr,judge"] == "N/A"  # lm-eval computes no stderr for custom aggregations

    judge = out["configs"]["longreward_alpacaeval2"]["metadata"]["judge"]
    assert judge["model"] == "judge-2" and judge["both_orders"] and judge["samples"]["unscored"] == 1
    meta = out["configs"]["longreward_alpacaeval2"]["metadata"]
    assert not any(k.startswith("judge_") for k in meta) and meta["alpacaeval_gamed"] == AE_META["alpacaeval_gamed"]
    assert out["higher_is_better"]["longreward_alpacaeval2"]["win_rate"] is True
    assert out["versions"]["longreward_alpacaeval2"] == 1.0
    assert out["n-samples"]["longreward_alpacaeval2"] == {"original": 6, "effective": 6}
    assert out["model_name"] == "some-model" and out["config"]["model_args"] == "pretrained=some-model"
    assert out["config"]["rejudge"]["judge_model"] == "judge-2"
    assert "bypass" not in new[0] and new[0]["win_rate"]["preference"] == pytest.approx(1.2)
    assert new[4]["judge_unscored"] == 1.0 and [s["doc_id"] for s in new] == list(range(6))
    assert "longreward_alpacaeval2: " in capsys.readouterr().out


def test_rejudge_alpacaeval2_dry_run_and_metadata_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--dry-run sends nothing and writes nothing; --metadata overrides the original run's settings."""
    from lr_eval.tasks.alpacaeval2 import load_reference

    refs = json.loads((AE_FIX / "reference_outputs.json").read_text())
    docs = load_reference(AE_FIX / "reference_outputs.json")
    samples = write_samples(tmp_path / "run", "longreward_alpacaeval2", docs, [f"answer {i}" for i in range(len(refs))],
                            metadata=AE_META)
    with ScriptedServer(responder=alpaca_judge(refs)) as srv:
        rc = lr_eval_main(["rejudge", str(samples), "--base-url", srv.base_url, "--model", "j", "--dry-run",
                           "--metadata", json.dumps({"alpacaeval_both_orders": False}), "-o", str(tmp_path / "rj")])
        assert rc == 0 and srv.bodies == []
    assert "longreward_alpacaeval2: would send 6 judge calls" in capsys.readouterr().out  # one order only
    assert not (tmp_path / "rj").exists()


# ------------------------------------------------------------------------------------------ longqa


def longqa_docs() -> list[dict[str, Any]]:
    """Docs as the longqa loader logs them, from the fixture questions."""
    rows = [json.loads(line) for line in (FIX / "longqa" / "questions.jsonl").read_text().splitlines() if line]
    return [{"id": r["id"], "source": "questions", "question": r["question"], "context": r["context"],
             "prompt": f"{r['context'][:50]} ... {r['question']}", "prompt_tokens": 100, "truncated": True,
             "answers": r.get("answers", [])} for r in rows]


def test_rejudge_longqa_gives_longreward_means_and_groups(tmp_path: Path) -> None:
    """LongReward-as-a-metric samples rescored by a canned LongReward judge: per-dimension means over the scored
    answers, unscored counts, and the LongBench single-doc QA group (unweighted mean over the datasets present)."""
    from lr_eval.testing.canned_judge import CannedJudge

    docs = longqa_docs()[:2]
    responses = ["The canal opened in 1804 after two interruptions. It carried cloth to Estmouth.",
                 "I do not know."]
    paths = [write_samples(tmp_path / "run", "longreward_longqa", docs, responses)]
    for i, dataset in enumerate(SINGLE_DOC[:2]):
        paths.append(write_samples(tmp_path / "run", f"longreward_longqa_longbench_{dataset}", docs[i:i + 1],
                                   responses[i:i + 1]))
    canned = CannedJudge(scores={"helpfulness": 7, "logicality": 8, "completeness": 6})
    with ScriptedServer(responder=canned) as srv:
        rc = lr_eval_main(["rejudge", *map(str, paths), "--base-url", srv.base_url, "--model", "lr-judge",
                           "--metadata", json.dumps({"reward_embedder": "bm25"}), "-o", str(tmp_path / "rj")])
        assert rc == 0
    out, new = rejudged(tmp_path / "rj", "longreward_longqa")
    r = out["results"]["longreward_longqa"]
    assert r["helpfulness,longreward"] == 7.0 and r["logicality,longreward"] == 8.0
    assert r["completeness,longreward"] == 6.0 and r["helpfulness_unscored,longreward"] == 0.0
    verdicts = [json.loads(s["filtered_resps"][0]) for s in new]
    assert [v["response"] for v in verdicts] == responses
    for dim, metric in (("faithfulness", "faithfulness"), ("reward", "longreward")):
        values = [v[dim] for v in verdicts if v[dim] is not None]
        assert r[f"{metric}_unscored,longreward"] == len(verdicts) - len(values)
        if values:
            assert r[f"{metric},longreward"] == pytest.approx(sum(values) / len(values))
    assert r["longreward_stderr,longreward"] != "N/A"  # lm-eval's mean stderr
    assert all("audit" in v for v in verdicts) and new[0]["helpfulness"] == 7.0
    meta = out["configs"]["longreward_longqa"]["metadata"]["judge"]
    assert meta["model"] == "lr-judge" and meta["reward_config"]["embedder"] == "bm25"

    tasks = [f"longreward_longqa_longbench_{d}" for d in SINGLE_DOC[:2]]
    group = out["groups"]["longreward_longqa_longbench_single_doc_qa"]
    for metric in ("helpfulness", "longreward"):
        key = f"{metric},longreward"
        assert group[key] == pytest.approx(sum(out["results"][t][key] for t in tasks) / 2)
    assert out["group_subtasks"]["longreward_longqa_longbench_single_doc_qa"] == tasks
    assert "longreward_longqa_longbench_multi_doc_qa" not in out["groups"]  # no dataset of it present
    assert out["groups"]["longreward_longqa_longbench"]["helpfulness,longreward"] == 7.0


# ------------------------------------------------------------------------------------------ errors


def test_rejudge_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lr_eval.tasks.alpacaeval2 import load_reference

    docs = load_reference(AE_FIX / "reference_outputs.json")
    samples = write_samples(tmp_path, "longreward_alpacaeval2", docs, ["x"] * len(docs))
    assert lr_eval_main(["rejudge", str(samples)]) == 2  # no judge configured
    err = capsys.readouterr().err
    assert "no judge is configured" in err and "LR_JUDGE_MODEL" in err

    plain = write_samples(tmp_path, "longreward_longbench_narrativeqa", [{"input": "q"}], ["x"])
    assert lr_eval_main(["rejudge", str(plain), "--model", "j", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert "not judged" in capsys.readouterr().err

    unknown = write_samples(tmp_path, "no_such_task", [{"input": "q"}], ["x"])
    assert lr_eval_main(["rejudge", str(unknown), "--model", "j", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert "unknown task 'no_such_task'" in capsys.readouterr().err
