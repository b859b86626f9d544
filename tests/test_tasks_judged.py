"""Judged lm-eval tasks: judged LongBench (12 datasets), LongBench-Chat, the judge filter and `lr-eval rejudge`.

End-to-end runs go through lm-eval's `hf` backend on the embedded SmolLM2 with a scripted judge
server, on small fixtures, with --limit and 4 new tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lr_eval.config import JudgeConfig, build_client
from lr_eval.parsing import Parsed, unscored
from lr_eval.testing.scripted_server import ScriptedServer
from conftest import embedded_model_or_skip
from lm_eval_checks import assert_rejudge_matches_lm_eval

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "tasks" / "configs"
FIX = ROOT / "tests" / "fixtures"
JUDGED_META = {"longbench_data": str(FIX / "judged" / "longbench"),
               "longbench_prompts": str(FIX / "judged" / "dataset2prompt.json")}
DATASETS12 = ["narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh", "hotpotqa", "2wikimqa", "musique",
              "dureader", "gov_report", "qmsum", "multi_news", "vcsum"]


def judge_script(body: dict[str, Any]) -> str:
    """Scripted verdicts keyed by content (the re-ask repeats the conversation, so it gets the same script)."""
    text = " ".join(m["content"] for m in body["messages"])
    if "[Reference summary]" in text:
        return "It covers most key points. [[4]]"
    if "bicycle" in text:
        return "I am not sure what to say."
    if "The ferry keeper's sister, Tamsin" in text:
        return "Partly right. [[2]]"
    if "Tamsin" in text:
        return "Same person as the reference. [[3]]"
    if "lighthouse" in text:
        return "Analysis: mostly right.\nRating: [[7]]"
    if "ferries" in text:
        return "Analysis: correct.\nRating: [[9]]"
    return "[[1]]"


_embedded = embedded_model_or_skip  # conftest.py's; tests take the embedded_model fixture


def _task_manager(metadata: dict[str, Any]) -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(CONFIGS), include_defaults=False, metadata=metadata)


# ------------------------------------------------------------------------------ unit


def test_all_yamls_are_indexed() -> None:
    tm = _task_manager({})
    names = set(tm.all_tasks)
    expected = {f"longreward_longbench_judged_{d}" for d in DATASETS12} | {
        "longreward_longbench_chat", "longreward_longbench_judged", "longreward_longbench_judged_single_doc_qa",
        "longreward_longbench_judged_multi_doc_qa", "longreward_longbench_judged_summarization"}
    assert expected <= names, expected - names


def test_chat_parse_is_the_official_one() -> None:
    from lr_eval.tasks.longbench_chat import parse_rating

    assert parse_rating("Rating: [[7]]").value == 7
    assert parse_rating("[[2]] first, then [[Rating: 8.5/10]]").value == 8.5  # last [[...]], first number
    assert parse_rating("[[12]]").value == 10 and parse_rating("[[12]]").clamped
    assert parse_rating("[[excellent]]").reason == "no number in the last [[...]]"
    assert not parse_rating("good answer").scored
    assert not parse_rating(None).scored


def test_longbench_normalisation_and_max_over_references() -> None:
    from lr_eval.tasks.longbench_judged import LongBenchJudgeSpec

    qa = LongBenchJudgeSpec("longreward_longbench_judged_hotpotqa")
    summ = LongBenchJudgeSpec("longreward_longbench_judged_vcsum")
    r = lambda v: Parsed(value=float(v))  # noqa: E731
    assert qa.combine({}, [r(1)]).value == 0 and qa.combine({}, [r(2)]).value == 50
    assert qa.combine({}, [r(2), r(3)]).value == 100  # max over references, (r-1)/2
    assert summ.combine({}, [r(4)]).value == 75 and summ.combine({}, [r(2)]).value == 25  # (r-1)/4
    bad = unscored("no [[score]] in the answer")
    assert qa.combine({}, [bad, r(3)]).value == 100  # the top rating is known: the unknown cannot raise it
    assert not qa.combine({}, [bad, r(2)]).scored  # could have been higher: unscored, never a default
    assert not qa.combine({}, [bad]).scored
    assert qa.scale == (1.0, 3.0) and summ.scale == (1.0, 5.0)
    with pytest.raises(ValueError):
        LongBenchJudgeSpec("longreward_longbench_judged_trec")


def test_judge_batch_is_concurrent_counted_and_priced() -> None:
    from lr_eval.tasks.judging import judge_samples
    from lr_eval.tasks.longbench_judged import LongBenchJudgeSpec

    docs = [{"input": f"Who repaired the lamp {i}?", "answers": ["Tamsin"]} for i in range(11)]
    docs.append({"input": "What fixed the bicycle lamp?", "answers": ["parts"]})
    # The server holds every answer until 8 requests are in flight at once: concurrent, not one blocking call
    # per sample (an event, not a duration: a loaded machine cannot fail it).
    with ScriptedServer(responder=judge_script, gate=8) as srv:
        cfg = JudgeConfig.load(overrides={"base_url": srv.base_url, "model": "scripted", "cache": "none",
                                          "price_input": 1.0, "price_output": 2.0})
        spec = LongBenchJudgeSpec("longreward_longbench_judged_narrativeqa", {}, cfg.max_tokens)
        verdicts, report = judge_samples(spec, build_client(cfg, show_progress=False), docs, ["Tamsin"] * 12)
        assert len(srv.bodies) == 12 + 1  # one per sample, plus one re-ask of the unparseable verdict
    assert srv.max_in_flight >= 8, srv.max_in_flight
    assert [v.value for v in verdicts[:11]] == [100.0] * 11 and {v.status for v in verdicts[:11]} == {"scored"}
    assert verdicts[11].value is None and "no [[score]]" in verdicts[11].reason and verdicts[11].cause == "judge"
    assert verdicts[11].calls[0].answer == "I am not sure what to say."
    assert report.samples == {"judged": 12, "scored": 11, "tampered": 0, "unscored": 1,
                              "unscored_reasons": {"no [[score]] in the answer": 1}, "tampered_reasons": {},
                              "causes": {"judge": 1, "evaluated_text": 0}}
    assert report.details["calls"]["reasked"] == 1 and report.template_id == "longbench_judged.qa"
    assert report.cost_usd > 0 and abs(sum(v.cost_usd for v in verdicts) - report.cost_usd) < 1e-6


def test_no_judge_fails_before_generation() -> None:
    from lr_eval.tasks.judging import JudgeNotConfigured

    tm = _task_manager({**JUDGED_META, "pretrained": "unused"})
    with pytest.raises(JudgeNotConfigured, match="LR_JUDGE_MODEL"):
        tm.load(["longreward_longbench_judged_narrativeqa"])


def test_chat_judge_prompt_uses_reference_and_graded_examples(shared_data: Path) -> None:
    from lr_eval.tasks.longbench_chat import SYSTEM_PROMPT, ChatJudgeSpec, load

    meta = {"longbench_chat_dir": str(shared_data / "longbench_chat"),
            "longbench_chat_test_cases": str(FIX / "longbench_chat" / "test_cases.json"),
            "judge_model": "m", "judge_base_url": "http://127.0.0.1:9/v1", "pretrained": _embedded()}
    docs = load(**meta)["test"]
    few = json.loads((shared_data / "longbench_chat" / "few_shots.json").read_text())
    assert [d["idx"] for d in docs] == [1, 2, 3]
    assert docs[1]["judge_examples"] == [{"answer": s["answer"], "score": str(s["score"])} for s in few[1]]
    req = ChatJudgeSpec("longreward_longbench_chat", meta).requests(docs[0], "  It is red.  ")[0]
    assert req.messages[0] == {"role": "system", "content": SYSTEM_PROMPT} and req.temperature == 0
    user = req.messages[1]["content"]
    assert docs[0]["query"] in user and docs[0]["answer"] in user and few[0][2]["answer"] in user
    assert user.rstrip().endswith("It is red.\n[Assistant's answer ends]\n\nRating:")
    assert "Marrow Point" not in user.split("[Question]")[0] and "harbour log" not in user  # no context


def test_chat_middle_truncation(shared_data: Path) -> None:
    from lr_eval.tasks.judging import middle_truncate, prompt_tokenizer
    from lr_eval.tasks.longbench_chat import load

    meta = {"longbench_chat_dir": str(shared_data / "longbench_chat"),
            "longbench_chat_test_cases": str(FIX / "longbench_chat" / "test_cases.json"),
            "judge_model": "m", "pretrained": _embedded(), "max_length": 64}
    docs = load(**meta)["test"]
    tok = prompt_tokenizer(meta, "t")
    first = docs[0]
    assert first["truncated"] and first["prompt_tokens"] > 64
    ids = tok(first["prompt"], add_special_tokens=False)["input_ids"]
    assert abs(len(ids) - 64) <= 2 and first["prompt"].startswith("Read the notes")
    assert first["prompt"].endswith("painted?")
    assert middle_truncate("short", tok, 64) == ("short", len(tok("short", add_special_tokens=False)["input_ids"]))


# ------------------------------------------------------------------------------ end to end


def _samples(out: Path, task: str) -> list[dict[str, Any]]:
    files = sorted(out.rglob(f"samples_{task}_*.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines()]


def _run_lm_eval(tasks: list[str], metadata: dict[str, Any], out: Path, **kw: Any) -> dict[str, Any]:
    """lm-eval's `run` path in-process (simple_evaluate + EvaluationTracker, which write the same files as
    the CLI), without the CLI's index over all of lm-eval's own tasks (10-30 s on this machine)."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker

    model = _embedded()
    tracker = EvaluationTracker(output_path=str(out))
    res = simple_evaluate(model="hf", model_args=f"pretrained={model},dtype=float32", device="cpu", tasks=tasks,
                          task_manager=_task_manager({**metadata, "pretrained": model}), limit=2,
                          gen_kwargs="max_gen_toks=4", log_samples=True, evaluation_tracker=tracker, **kw)
    samples = res.pop("samples")
    tracker.save_results_aggregated(results=res, samples=samples)
    for task in res["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    return res


@pytest.mark.slow
def test_lm_eval_judged_longbench_and_chat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Judged LongBench (QA + summary) and LongBench-Chat through lm-eval, judged by the scripted server."""
    shared = ROOT.parent / "shared" / "data" / "longbench_chat"
    tasks = ["longreward_longbench_judged_narrativeqa", "longreward_longbench_judged_gov_report"]
    meta = dict(JUDGED_META)
    if shared.is_dir():
        tasks.append("longreward_longbench_chat")
        meta.update(longbench_chat_dir=str(shared),
                    longbench_chat_test_cases=str(FIX / "longbench_chat" / "test_cases.json"))
    with ScriptedServer(responder=judge_script) as srv:
        for key, value in {"BASE_URL": srv.base_url, "MODEL": "scripted-judge", "PRICE_INPUT": "1",
                           "PRICE_OUTPUT": "1"}.items():
            monkeypatch.setenv(f"LR_JUDGE_{key}", value)
        _run_lm_eval(tasks, meta, tmp_path / "out")
        # narrativeqa: 2 references + 1 call and 1 re-ask; gov_report: 2; chat: 2
        assert len(srv.bodies) == 4 + 2 + (2 if shared.is_dir() else 0)
        assert_rejudge_matches_lm_eval(tmp_path / "out", tmp_path / "rj")
    [results_file] = (tmp_path / "out").rglob("results_*.json")
    res = json.loads(results_file.read_text())
    nqa = res["results"]["longreward_longbench_judged_narrativeqa"]
    assert nqa["score,judge"] == 100.0  # doc 0: max((3-1)/2, (2-1)/2) = 1; doc 1 unscored, excluded
    assert nqa["judge_unscored,judge"] == 1.0
    assert res["results"]["longreward_longbench_judged_gov_report"]["score,judge"] == 75.0  # (4-1)/4
    assert res["results"]["longreward_longbench_judged_gov_report"]["judge_unscored,judge"] == 0.0
    assert res["results"]["longreward_longbench_judged_gov_report"]["judge_cost_usd,judge"] > 0
    judge = res["configs"]["longreward_longbench_judged_narrativeqa"]["metadata"]["judge"]
    assert judge["model"] == "scripted-judge" and judge["template_id"] == "longbench_judged.qa"
    assert judge["template_version"] and judge["samples"]["unscored"] == 1 and judge["cost_usd"] > 0
    recs = _samples(tmp_path / "out", "longreward_longbench_judged_narrativeqa")
    verdicts = {r["doc_id"]: json.loads(r["filtered_resps"][0]) for r in recs}
    assert verdicts[0]["value"] == 100.0 and [j["value"] for j in verdicts[0]["calls"]] == [3.0, 2.0]
    assert verdicts[0]["calls"][0]["answer"] == "Same person as the reference. [[3]]"
    assert verdicts[1]["value"] is None and verdicts[1]["reason"] and verdicts[1]["status"] == "unscored"
    assert {r["doc_id"]: r.get("score") for r in recs} == {0: 100.0, 1: None}
    if shared.is_dir():
        chat = res["results"]["longreward_longbench_chat"]
        assert chat["score,judge"] == 80.0  # mean(7, 9) x 10
        crecs = _samples(tmp_path / "out", "longreward_longbench_chat")
        assert sorted(json.loads(r["filtered_resps"][0])["calls"][0]["value"] for r in crecs) == [7.0, 9.0]
        assert res["configs"]["longreward_longbench_chat"]["metadata"]["judge"]["template_id"] == \
            "longbench_chat.prompt_fs"


@pytest.mark.slow
def test_predict_only_then_rejudge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--predict_only needs no judge and sends nothing; `lr-eval rejudge` scores the saved samples later."""
    from lr_eval.cli import main as lr_eval_main

    res = _run_lm_eval(["longreward_longbench_judged_narrativeqa"], {**JUDGED_META, "predict_only": True},
                       tmp_path / "out", predict_only=True)
    assert "score,judge" not in json.dumps(res["results"])
    [samples] = (tmp_path / "out").rglob("samples_longreward_longbench_judged_narrativeqa_*.jsonl")
    recs = [json.loads(line) for line in samples.read_text().splitlines()]
    assert all(not r["filtered_resps"][0].startswith("{") for r in recs)  # plain responses: not judged
    with ScriptedServer(responder=judge_script) as srv:
        rc = lr_eval_main(["rejudge", str(samples), "--base-url", srv.base_url, "--model", "judge-2",
                           "-o", str(tmp_path / "rj")])
        assert rc == 0 and len(srv.bodies) == 4
    [results_file] = (tmp_path / "rj").glob("results_*.json")
    out = json.loads(results_file.read_text())
    r = out["results"]["longreward_longbench_judged_narrativeqa"]
    assert r["score,judge"] == 100.0 and r["judge_unscored,judge"] == 1.0 and r["sample_len"] == 2
    assert out["groups"]["longreward_longbench_judged_single_doc_qa"]["score,judge"] == 100.0
    assert out["configs"]["longreward_longbench_judged_narrativeqa"]["metadata"]["judge"]["model"] == "judge-2"
    new = _samples(tmp_path / "rj", "longreward_longbench_judged_narrativeqa")
    assert [json.loads(n["filtered_resps"][0])["response"] for n in new] == [r["resps"][0][0] for r in recs]
    assert new[0]["score"] == 100.0 and "score" not in new[1] and new[1]["judge_unscored"] == 1.0


def test_rejudge_chat_samples_without_a_model(tmp_path: Path, shared_data: Path) -> None:
    """Rejudging LongBench-Chat samples: rating x 10; the template comes from --metadata."""
    from lr_eval.cli import main as lr_eval_main

    docs = json.loads((FIX / "longbench_chat" / "test_cases.json").read_text())
    few = json.loads((shared_data / "longbench_chat" / "few_shots.json").read_text())
    recs = [{"doc_id": i, "doc": {"idx": d["idx"], "query": d["query"], "answer": d["answer"],
                                  "judge_examples": [{"answer": s["answer"], "score": str(s["score"])}
                                                     for s in few[d["idx"] - 1]]},
             "target": d["answer"], "resps": [["an answer"]], "filtered_resps": ["an answer"], "metrics": ["bypass"],
             "bypass": None}
            for i, d in enumerate(docs)]
    samples = tmp_path / "samples_longreward_longbench_chat_2025-01-01T00-00-00.000000.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in recs))
    meta = json.dumps({"longbench_chat_template": str(shared_data / "longbench_chat" / "prompt_fs.txt")})
    with ScriptedServer(responder=judge_script) as srv:
        rc = lr_eval_main(["rejudge", str(samples), "--base-url", srv.base_url, "--model", "j", "--metadata", meta,
                           "--reasks", "0", "-o", str(tmp_path / "rj")])
        assert rc == 0 and len(srv.bodies) == 3
    out = json.loads(next((tmp_path / "rj").glob("results_*.json")).read_text())
    # lighthouse 7, ferries 9, the third falls through to [[1]]
    assert out["results"]["longreward_longbench_chat"]["score,judge"] == pytest.approx((70 + 90 + 10) / 3)
    new = _samples(tmp_path / "rj", "longreward_longbench_chat")
    assert "bypass" not in new[0] and new[0]["score"] == 70.0


def test_rejudge_without_judge_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lr_eval.cli import main as lr_eval_main

    samples = tmp_path / "samples_longreward_longbench_chat_2025-01-01T00-00-00.000000.jsonl"
    samples.write_text(json.dumps({"doc_id": 0, "doc": {}, "resps": [["x"]]}) + "\n")
    assert lr_eval_main(["rejudge", str(samples)]) == 2
    assert "LR_JUDGE_MODEL" in capsys.readouterr().err
