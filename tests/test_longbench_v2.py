"""LongBench v2, official protocol: parity of extraction and breakdowns with pred.py / result.py on recorded cases,
prompt filling and truncation as pred.py does them, data and prompt loading (pinned, checked, overridable), and
the tasks through lm-eval (the CoT answer step as a follow-up generation; plain and CoT on the embedded model)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lm_eval_checks import embedded_model, logged_samples

from lr_eval.tasks import longbench_v2 as lb2

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "longbench_v2"
DATA, PROMPTS = FIX / "data.json", FIX / "prompts"
PARITY = json.loads((FIX / "parity.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------ parity


def test_extraction_equals_pred_py_on_recorded_cases() -> None:
    cases = PARITY["extract"]
    assert len(cases) >= 300 and 50 < sum(c["pred"] is None for c in cases) < len(cases) - 50
    for case in cases:
        assert lb2.extract_answer(case["response"]) == case["pred"], case["response"]


def test_breakdowns_equal_result_py_on_recorded_runs() -> None:
    """Each recorded run is one results file of result.py: our per-sample items and aggregations give its row."""
    assert sum(len(run["items"]) for run in PARITY["runs"]) >= 300
    for run in PARITY["runs"]:
        items = []
        for difficulty, length, answer, response in run["items"]:
            doc = {"variant": "plain", "difficulty": difficulty, "length": length, "answer": answer}
            items.append(lb2.process_results(doc, [response])["overall"])
        ours = {name: lb2.breakdown(items, name) for name in lb2.BREAKDOWNS}
        assert ours == run["official"], run["name"]


def test_breakdown_of_an_empty_bucket_is_nan_not_a_number_made_up() -> None:
    items = [("easy", "short", 1.0), ("easy", "long", 0.0)]
    assert lb2.easy(items) == 50.0 and lb2.short(items) == 100.0 and math.isnan(lb2.hard(items))
    assert math.isnan(lb2.medium(items))


def test_no_answer_is_wrong_and_counted() -> None:
    doc = {"variant": "cot", "difficulty": "hard", "length": "long", "answer": "A"}
    assert lb2.process_results(doc, ["reasoning only"]) == {**{k: ("hard", "long", 0.0) for k in lb2.BREAKDOWNS},
                                                            "no_answer": 1.0}
    out = lb2.process_results(doc, ["reasoning", "  The correct answer is (A)  "])
    assert out["overall"] == ("hard", "long", 1.0) and out["no_answer"] == 0.0
    plain = {**doc, "variant": "plain"}
    assert lb2.process_results(plain, [""])["no_answer"] == 1.0
    assert lb2.process_results(plain, ["The correct answer is (B)"]) == {
        **{k: ("hard", "long", 0.0) for k in lb2.BREAKDOWNS}, "no_answer": 0.0}


# ------------------------------------------------------------------------------------- prompts and data


def test_fill_is_pred_pys_chained_replace() -> None:
    row = {"question": " Who? ", "choice_A": " a ", "choice_B": "b", "choice_C": "c", "choice_D": "d"}
    template = "<$DOC$> Q: $Q$ (A) $C_A$ (B) $C_B$ (C) $C_C$ (D) $C_D$ $COT$"
    # the context is stripped, and a placeholder inside it is replaced as pred.py's chain does; $COT$ stays
    assert lb2.fill(template, row, "  text with $Q$ and $C_D$ \n") == \
        "<text with Who? and d> Q: Who? (A) a (B) b (C) c (D) d $COT$"


def test_rag_context_is_top_n_in_document_order() -> None:
    row = {"retrieved_context": [{"c_idx": 5, "content": "five"}, {"c_idx": 1, "content": "one"},
                                 {"c_idx": 0, "content": "zero"}]}
    assert lb2.rag_context(row, 2) == "Retrieved chunk 1: one\n\nRetrieved chunk 2: five"


def test_truncation_is_pred_pys_middle_cut() -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_model())
    text = " ".join(f"w{i}" for i in range(300))
    ids = tok.encode(text)
    for budget in (41, 40):
        cut, truncated, n = lb2.truncate(text, tok, budget)
        kept = ids[:budget // 2] + ids[-budget // 2:]  # Python's -M // 2: an odd budget keeps one more tail token
        assert truncated and n == len(ids) and cut == tok.decode(kept, skip_special_tokens=True)
    assert lb2.truncate("short", tok, 40) == ("short", False, len(tok.encode("short")))


def test_read_rows_checks_the_official_fields(tmp_path: Path) -> None:
    rows = lb2.read_rows(DATA, need_retrieval=True)
    assert [r["_id"] for r in rows] == ["lbv2-fix-0001", "lbv2-fix-0002", "lbv2-fix-0003"]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert lb2.read_rows(jsonl) == rows
    bad = dict(rows[1])
    del bad["difficulty"]
    jsonl.write_text(json.dumps(rows[0]) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match=r"rows.jsonl, line 2: no field 'difficulty'"):
        lb2.read_rows(jsonl)
    jsonl.write_text(json.dumps({**rows[0], "answer": "E"}) + "\n")
    with pytest.raises(ValueError, match=r"line 1: field 'answer' is 'E'"):
        lb2.read_rows(jsonl)
    with pytest.raises(ValueError, match=r"item 0: no field 'retrieved_context'"):
        lb2.read_rows(_without_retrieval(tmp_path, rows), need_retrieval=True)


def _without_retrieval(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "plain.json"
    path.write_text(json.dumps([{k: v for k, v in r.items() if k != "retrieved_context"} for r in rows]))
    return path


def test_official_files_are_pinned_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lr_eval.tasks import judging

    fetched: list[str] = []

    def fake_download(url: str, relpath: str, timeout: float = 120.0) -> Path:
        fetched.append(url)
        path = tmp_path / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not the official bytes")
        return path

    monkeypatch.setattr(judging, "download_cached", fake_download)
    monkeypatch.delenv(lb2.PROMPTS_ENV, raising=False)
    monkeypatch.delenv(lb2.DATA_ENV, raising=False)
    with pytest.raises(RuntimeError, match=f"expected {lb2.PROMPT_SHA256['0shot']}.*{lb2.PROMPTS_KEY}"):
        lb2.load_prompts({})
    with pytest.raises(RuntimeError, match=f"expected {lb2.DATA_SHA256}.*{lb2.DATA_KEY}"):
        lb2.data_file({})
    assert fetched == [f"https://raw.githubusercontent.com/THUDM/LongBench/{lb2.COMMIT}/prompts/0shot.txt",
                       f"https://huggingface.co/datasets/THUDM/LongBench-v2/resolve/{lb2.DATA_REVISION}/data.json"]
    # local overrides: --metadata wins over the environment; a missing file is named
    assert lb2.load_prompts({lb2.PROMPTS_KEY: str(PROMPTS)})["0shot_cot_ans"].count("$COT$") == 1
    monkeypatch.setenv(lb2.DATA_ENV, str(tmp_path / "absent.json"))
    with pytest.raises(FileNotFoundError, match=f"{lb2.DATA_ENV}: .*absent.json does not exist"):
        lb2.data_file({})
    assert lb2.data_file({lb2.DATA_KEY: str(DATA)}) == DATA
    with pytest.raises(FileNotFoundError, match="0shot.txt does not exist"):
        lb2.load_prompts({lb2.PROMPTS_KEY: str(tmp_path)})


# ---------------------------------------------------------------------------------------------- lm-eval


def _meta(**extra: Any) -> dict[str, Any]:
    return {lb2.DATA_KEY: str(DATA), lb2.PROMPTS_KEY: str(PROMPTS), "pretrained": embedded_model(), **extra}


def _run(tasks: list[str], out: Path, model: str, **kw: Any) -> dict[str, Any]:
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(ROOT / "tasks" / "configs"), include_defaults=False,
                     metadata=kw.pop("metadata"))
    tracker = EvaluationTracker(output_path=str(out))
    res = simple_evaluate(model=model, tasks=tasks, task_manager=tm, log_samples=True, evaluation_tracker=tracker,
                          **kw)
    samples = res.pop("samples")
    tracker.save_results_aggregated(results=res, samples=samples)
    for task in res["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    return res


def test_cot_answer_step_is_a_follow_up_in_the_same_task(tmp_path: Path) -> None:
    """lm-eval's dummy model answers "lol" to everything: the answer prompt holds that reasoning, both
    generations are in the samples log, and no letter means every question is wrong and counted."""
    res = _run(["longreward_longbench_v2_cot", "longreward_longbench_v2_no_context"], tmp_path, "dummy",
               metadata=_meta(max_length=60))
    cot = res["results"]["longreward_longbench_v2_cot"]
    assert cot["overall,none"] == 0.0 and cot["no_answer,none"] == 3.0 and cot["easy,none"] == 0.0
    assert res["configs"]["longreward_longbench_v2_cot"]["metadata"]["effective_max_length"] == 60
    samples = logged_samples(tmp_path, "longreward_longbench_v2_cot")
    assert len(samples) == 3
    for sample in samples:
        (first, gen1), (second, gen2) = ((a["arg_0"], a["arg_1"]) for a in sample["arguments"].values())
        assert "Reason step by step:" in first and gen1["max_gen_toks"] == 1024
        assert "Reasoning: lol" in second and "(document left out)" in second and gen2["max_gen_toks"] == 128
        assert sample["resps"] == [["lol"], ["lol"]]
    truncated = [s["doc"]["prompt_truncated"] for s in samples]
    assert truncated == [True, True, True]
    nc = res["results"]["longreward_longbench_v2_no_context"]
    assert nc["no_answer,none"] == 3.0
    [nc_sample, *_] = logged_samples(tmp_path, "longreward_longbench_v2_no_context")
    assert len(nc_sample["arguments"]) == 1 and "<text>" not in nc_sample["arguments"]["gen_args_0"]["arg_0"]


def test_rag_needs_its_retrieval_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="longbench_v2_rag"):
        lb2.load(longbench_v2_variant="rag", **_meta(max_length=100))
    from datasets import DatasetDict

    docs: DatasetDict = lb2.load(longbench_v2_variant="rag", **_meta(max_length=10_000, longbench_v2_rag=1))
    assert "Retrieved chunk 1: the painter was the last to leave" in docs["test"][0]["prompt"]
    assert "keeper locked" not in docs["test"][0]["prompt"]  # top-1 only


@pytest.mark.slow
def test_lm_eval_cli_runs_the_group_offline_on_the_embedded_model(tmp_path: Path) -> None:
    """The done-when command: ``lm_eval --tasks longreward_longbench_v2 --limit 2`` on a local data file with the
    embedded model, plain and CoT (new tokens capped to keep the test short)."""
    meta = json.dumps({lb2.DATA_KEY: str(DATA), lb2.PROMPTS_KEY: str(PROMPTS)})
    cmd = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
           f"pretrained={embedded_model()},dtype=float32", "--device", "cpu", "--tasks", "longreward_longbench_v2",
           "--limit", "2", "--apply_chat_template", "--include_path", str(ROOT / "tasks" / "configs"),
           "--metadata", meta, "--gen_kwargs", "max_gen_toks=48", "--output_path", str(tmp_path / "out"),
           "--log_samples"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    [results_file] = (tmp_path / "out").rglob("results_*.json")
    res = json.loads(results_file.read_text())
    assert res["group_subtasks"]["longreward_longbench_v2"] == ["longreward_longbench_v2_plain",
                                                                  "longreward_longbench_v2_cot"]
    for task in ("longreward_longbench_v2_plain", "longreward_longbench_v2_cot"):
        values = res["results"][task]
        assert 0.0 <= values["overall,none"] <= 100.0 and 0.0 <= values["no_answer,none"] <= 2.0
        assert res["n-samples"][task]["effective"] == 2
        assert res["configs"][task]["metadata"]["effective_max_length"] == 8192 - lb2.MAX_NEW_TOKENS[task[24:]]
    cot = logged_samples(tmp_path / "out", "longreward_longbench_v2_cot")
    for sample in cot:
        resps = sample["resps"]
        assert len(resps) == 2 or not resps[0][0].strip()  # the answer step follows every non-empty reasoning
        if len(resps) == 2:
            answer_prompt = sample["arguments"]["gen_args_1"]["arg_0"]
            assert resps[0][0].strip() in answer_prompt and "<|im_start|>user" in answer_prompt
