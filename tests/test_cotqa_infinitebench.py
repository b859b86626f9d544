"""InfiniteBench En.QA (``longreward_infinitebench_enqa``) and the CoT-answer SubEM protocol (``longreward_cotqa*``):
metric cases derived from the protocol text, truncation against tokenize/halve/decode, pinned template loading
and end-to-end ``lm_eval`` runs on the embedded SmolLM2 with small local files in the official formats."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lr_eval.leaderboards import board as bd
from lr_eval.leaderboards.reader import Run, TaskResult, load_runs
from lr_eval.tasks import cot_qa, infinitebench, judging, pinned
from lr_eval.tasks.cot_qa import extract_answer, score_answer
from lr_eval.tasks.registration import OPT_OUT_ENV
from lr_eval.testing.tiny import word_tokenizer
from test_longbench_tasks import _embedded_model

#: Made-up templates in the official files' formats (the real texts are downloaded, never stored here).
COT_TEMPLATE_PY = 'PROMPT_DICT = {\n    "gen_probe": "unused {context}",\n    "cot_answer": (\n        ' \
                  '"Doc: {context}\\nQ: {question}\\nReasoning: ... Answer: ..."\n    ),\n}\n'
IB_PROMPT_PY = (
    'gpt4_templates = {"longbook_qa_eng": "Book:\\n\\n{context}\\n\\nQuestion: {question}\\n\\nBe brief."}\n'
    'yarn_mistral_templates = {"longbook_qa_eng": "Book.\\n\\n{context}\\n\\nQuestion: {question}\\nAnswer:"}\n'
    'kimi_templates = {"longbook_qa_eng": "Q: {question}" + "{file:{context}}"}\n'
)


@pytest.fixture(scope="module")
def smol():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_embedded_model())


def _book(n: int, seed: int) -> str:
    return " ".join(f"w{(i * 7 + seed) % 50}" for i in range(n))


def _write_sources(root: Path) -> dict[str, str]:
    """LongBench-format and En.QA-format files plus both templates; returns the metadata pointing at them."""
    (root / "longbench").mkdir()
    for number, dataset in enumerate(("musique", "2wikimqa", "multifieldqa_en", "narrativeqa")):
        rows = [{"_id": f"{dataset}-{i}", "input": f"Which w{i}?", "context": _book(300 + 40 * i, number + i),
                 "answers": [f"w{i}"], "length": 300, "dataset": dataset, "language": "en", "all_classes": None}
                for i in range(3)]
        (root / "longbench" / f"{dataset}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    enqa = [{"id": i, "context": _book(500 + 30 * i, i), "input": f"Who is w{i}?", "answer": [f"w{i}", "w9 w8"],
             "options": []} for i in range(3)]
    (root / "longbook_qa_eng.jsonl").write_text("".join(json.dumps(r) + "\n" for r in enqa))
    (root / "template.py").write_text(COT_TEMPLATE_PY)
    (root / "prompt.py").write_text(IB_PROMPT_PY)
    return {"longbench_data": str(root / "longbench"), "infinitebench_data": str(root / "longbook_qa_eng.jsonl"),
            "cotqa_template": str(root / "template.py"), "infinitebench_prompts": str(root / "prompt.py")}


# ------------------------------------------------------------------------------------------- the CoT metric


@pytest.mark.parametrize(("prediction", "expected"), [
    ("Reasoning: x.\nAnswer: Paris", "paris"),                       # lower-cased, stripped
    ("Answer: Rome. Later... Answer:  Paris \n", "paris"),           # the last occurrence of the prefix
    ("Reasoning: so the answer is: Paris", "paris"),                 # second prefix when 'answer:' is absent
    ("Final answer is: Paris", "paris"),                             # third prefix
    ("The answer is: Rome. Answer: Paris", "paris"),                 # 'answer:' comes first in the order
    ("Answer: Rome. The answer is: Paris", "rome. the answer is: paris"),  # ... even when it is earlier in text
    ("Reasoning: the answer is: Paris. Answer:", None),              # prefix ends the text: no answer, stop
    ("Answer:", None),
    ("Reasoning: Paris, obviously.", None),                          # no prefix at all
    ("ANSWER:\tParis", "paris"),                                     # case-insensitive prefix
    ("Answer: ", ""),                                                # one char after the prefix: an empty answer
    ("the answer is Paris", None),                                   # no colon, no prefix
])
def test_extract_answer_follows_the_protocol(prediction: str, expected: str | None) -> None:
    assert extract_answer(prediction) == expected


def test_score_answer_cases() -> None:
    zeros = {"sub_em": 0.0, "em": 0.0, "f1": 0.0}
    assert score_answer("Paris is the answer.", ["Paris"]) == zeros            # no prefix -> all zero
    assert score_answer("The answer is: Paris. Answer:", ["Paris"]) == zeros   # prefix at the end -> all zero
    # Punctuation is removed, not replaced by a space: 'eiffel-tower' normalises to 'eiffeltower'.
    assert score_answer("Answer: The Eiffel-Tower!", ["eiffeltower"]) == {"sub_em": 1.0, "em": 1.0, "f1": 1.0}
    assert score_answer("Answer: The Eiffel-Tower!", ["Eiffel Tower"]) == zeros
    assert score_answer("Answer: the  Eiffel Tower.", ["Eiffel Tower"]) == {"sub_em": 1.0, "em": 1.0, "f1": 1.0}
    # SubEM: gold inside a longer answer; EM 0; F1 over normalised tokens: 2 common of 4 answer / 2 gold tokens.
    got = score_answer("Reasoning: ...\nAnswer: in the Eiffel Tower, Paris", ["The Eiffel Tower"])
    assert got["sub_em"] == 1.0 and got["em"] == 0.0 and got["f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    # Max over golds; a string gold is one gold.
    assert score_answer("Answer: Lyon", ["Paris", "Lyon"]) == {"sub_em": 1.0, "em": 1.0, "f1": 1.0}
    assert score_answer("Answer: Lyon", "Lyon") == {"sub_em": 1.0, "em": 1.0, "f1": 1.0}
    # SubEM is substring on characters: 'art' is inside 'start' after normalisation.
    assert score_answer("Answer: start", ["Art"])["sub_em"] == 1.0
    # Only the text after the prefix counts: the gold in the reasoning does not.
    assert score_answer("Paris? No. Answer: Rome", ["Paris"]) == zeros
    # An empty extracted answer is an answer (scored 0), not a missing one.
    assert score_answer("Answer: ", ["Paris"]) == zeros and extract_answer("Answer: ") == ""


def test_process_results_scales_and_counts() -> None:
    doc = {"answers": ["Paris"]}
    assert cot_qa.process_results(doc, ["Answer: Paris"]) == {"sub_em": 100.0, "em": 100.0, "f1": 100.0,
                                                              "no_answer": 0.0}
    assert cot_qa.process_results(doc, ["Paris"])["no_answer"] == 1.0
    assert cot_qa.process_results(doc, ["Answer: "])["no_answer"] == 0.0


def test_enqa_metric_is_token_f1_and_sub_em() -> None:
    doc = {"answers": ["Lord Teversham", "Teversham"]}
    got = infinitebench.process_results(doc, ["It was the Lord Teversham himself."])
    # best gold 'lord teversham' (2 tokens) vs 'it was lord teversham himself' (5 tokens): P 2/5, R 1.
    assert got == {"score": pytest.approx(100 * 2 * 0.4 / 1.4), "sub_em": 100.0}
    assert infinitebench.process_results(doc, [""]) == {"score": 0.0, "sub_em": 0.0}


# ----------------------------------------------------------------------------------------------- truncation


@pytest.mark.parametrize("max_length", [40, 41])
def test_cot_truncation_is_tokenize_halve_decode(max_length: int) -> None:
    tok = word_tokenizer(50)  # adds BOS, like Llama tokenizers
    text = _book(100, 3)
    ids = tok.encode(text)
    assert ids[0] == tok.bos_token_id and len(ids) == 101 > max_length
    prompt, truncated, n = cot_qa.truncate(text, tok, max_length)
    assert truncated and n == 101
    head, tail = ids[: max_length // 2], ids[(-max_length) // 2:]
    assert len(tail) == (max_length + 1) // 2  # an odd budget keeps one more tail token, as the protocol
    assert prompt == tok.decode(head + tail, skip_special_tokens=True)
    assert "<s>" not in prompt and prompt.split() == text.split()[: len(head) - 1] + text.split()[-len(tail):]
    assert cot_qa.truncate(text, tok, 101) == (text, False, 101)  # at the limit: untouched


def test_enqa_truncation_always_decodes() -> None:
    tok = word_tokenizer(50)
    text = _book(100, 5)
    ids = tok.encode(text)
    prompt, truncated, n = infinitebench.truncate(text, tok, 41)
    assert truncated and n == 101 and prompt == tok.decode(ids[:20] + ids[-20:], skip_special_tokens=True)
    assert len(tok.encode(prompt)) == 40  # split = 41 // 2 = 20 ids each side; the BOS among them is dropped
    # Below the limit the prompt still goes through decode(encode(.)), as truncate_by_tokens does; the CoT
    # protocol leaves such a prompt untouched.
    assert infinitebench.truncate("w1   w2", tok, 100) == ("w1 w2", False, 3)
    assert cot_qa.truncate("w1   w2", tok, 100) == ("w1   w2", False, 3)


def test_prompts_above_the_limit_match_the_protocol(tmp_path: Path, smol) -> None:
    """Every row above the limit: the doc's prompt is the protocol's (format, tokenize, halve, decode)."""
    meta = _write_sources(tmp_path)
    model = str(_embedded_model())
    template = pinned.template_from(tmp_path / "template.py", "PROMPT_DICT", "cot_answer")
    checked = 0
    for dataset in cot_qa.DATASETS:
        docs = cot_qa.load(cotqa_dataset=dataset, pretrained=model, max_length=151, **meta)["test"]
        rows = cot_qa.dataset_rows(dataset, meta)
        assert len(docs) == len(rows) == 3
        for row, doc in zip(rows, docs, strict=True):
            ids = smol.encode(template.format(context=row["context"], question=row["input"]))
            assert len(ids) > 151 and doc["prompt_truncated"] and doc["prompt_tokens"] == len(ids)
            assert doc["prompt"] == smol.decode(ids[:151 // 2] + ids[-151 // 2:], skip_special_tokens=True)
            assert doc["answers"] == [str(a) for a in row["answers"]] and "context" not in doc
            checked += 1
    assert checked == 15
    enqa = infinitebench.load_enqa(pretrained=model, max_length=200, **meta)["test"]
    ib_template = pinned.template_from(tmp_path / "prompt.py", "yarn_mistral_templates", "longbook_qa_eng")
    for row, doc in zip(infinitebench.rows_from(meta), enqa, strict=True):
        ids = smol.encode(ib_template.format(context=row["context"], question=row["input"]))
        assert doc["prompt"] == smol.decode(ids[:100] + ids[-100:], skip_special_tokens=True)
        assert doc["prompt"].startswith("Book.\n\n") and doc["prompt"].endswith("\nAnswer:")
    gpt4 = infinitebench.load_enqa(pretrained=model, max_length=200, infinitebench_prompt_family="gpt4", **meta)
    assert gpt4["test"][0]["prompt"].endswith("Be brief.")


# --------------------------------------------------------------------------------------- sources, overrides


def test_pinned_template_is_parsed_not_executed_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    official = tmp_path / "template.py"
    official.write_text(COT_TEMPLATE_PY + "raise SystemExit('executed')\n")
    assert cot_qa.load_template({"cotqa_template": str(official)}) == "Doc: {context}\nQ: {question}\n" \
                                                                       "Reasoning: ... Answer: ..."
    text = tmp_path / "mine.txt"
    text.write_text("Mine: {context} / {question}")
    monkeypatch.setenv(cot_qa.TEMPLATE_ENV, str(text))
    assert cot_qa.load_template({}) == "Mine: {context} / {question}"  # a plain text override
    assert cot_qa.load_template({"cotqa_template": str(official)}).startswith("Doc:")  # metadata wins
    monkeypatch.delenv(cot_qa.TEMPLATE_ENV)
    # The download path: the cached file must have the pinned SHA-256.
    monkeypatch.setattr(judging, "download_cached", lambda url, rel: official)
    with pytest.raises(RuntimeError, match=f"expected {cot_qa.TEMPLATE_SHA256}.*{cot_qa.TEMPLATE_ENV}"):
        cot_qa.load_template({})
    good = hashlib.sha256(official.read_bytes()).hexdigest()
    monkeypatch.setattr(cot_qa, "TEMPLATE_SHA256", good)
    assert cot_qa.load_template({}).startswith("Doc:")
    (tmp_path / "prompt.py").write_text(IB_PROMPT_PY)
    with pytest.raises(ValueError, match="kimi_templates is not a plain literal"):
        pinned.template_from(tmp_path / "prompt.py", "kimi_templates", "longbook_qa_eng")
    with pytest.raises(FileNotFoundError, match="cotqa_template"):
        cot_qa.load_template({"cotqa_template": str(tmp_path / "missing.py")})


def test_enqa_rows_and_their_errors(tmp_path: Path) -> None:
    meta = _write_sources(tmp_path)
    rows = infinitebench.load_rows(tmp_path)  # a folder holding longbook_qa_eng.jsonl
    assert [r["id"] for r in rows] == [0, 1, 2] and rows == infinitebench.load_rows(meta["infinitebench_data"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"context": "c", "input": 3, "answer": ["a"]}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl line 2, field 'input': expected str, got int"):
        infinitebench.load_rows(bad)
    bad.write_text('{"context": "c", "input": "q"}\n')
    with pytest.raises(ValueError, match="line 1, field 'answer': missing"):
        infinitebench.load_rows(bad)
    with pytest.raises(ValueError, match="infinitebench_prompt_family"):
        infinitebench.load_template({"infinitebench_prompt_family": "kimi", **meta})
    with pytest.raises(ValueError, match="unknown CoT-QA dataset"):
        cot_qa.load(cotqa_dataset="hotpotqa", **meta)


# ----------------------------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_lm_eval_cli_enqa_and_cotqa_group(tmp_path: Path, smol) -> None:
    """Plain ``lm_eval --tasks longreward_infinitebench_enqa,longreward_cotqa`` on local files, chat template on."""
    meta = _write_sources(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "LR_LONGBENCH_DATA": meta["longbench_data"],
           "LR_INFINITEBENCH_DATA": meta["infinitebench_data"], "LR_COTQA_TEMPLATE": meta["cotqa_template"],
           "LR_INFINITEBENCH_PROMPTS": meta["infinitebench_prompts"]}
    env.pop(OPT_OUT_ENV, None)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
               f"pretrained={_embedded_model()},dtype=float32", "--device", "cpu",
               "--tasks", "longreward_infinitebench_enqa,longreward_cotqa", "--limit", "2", "--apply_chat_template",
               "--metadata", json.dumps({"max_length": 160}), "--gen_kwargs", "max_gen_toks=8",
               "--output_path", str(out), "--log_samples"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())
    scores = results["results"]
    assert {"score,none", "sub_em,none"} <= set(scores["longreward_infinitebench_enqa"])
    per_task = [scores[f"longreward_cotqa_{d}"] for d in cot_qa.DATASETS]
    for task in per_task:
        assert {"sub_em,none", "em,none", "f1,none", "no_answer,none"} <= set(task)
        assert task["no_answer,none"] in (0.0, 1.0, 2.0)
    group = results["groups"]["longreward_cotqa"]
    for metric in ("sub_em", "f1", "em"):
        assert group[f"{metric},none"] == pytest.approx(sum(t[f"{metric},none"] for t in per_task) / 5)

    cot = pinned.template_from(tmp_path / "template.py", "PROMPT_DICT", "cot_answer")
    for dataset in cot_qa.DATASETS:
        (path,) = out.rglob(f"samples_longreward_cotqa_{dataset}_*.jsonl")
        logged = [json.loads(line) for line in path.read_text().splitlines()]
        rows = cot_qa.dataset_rows(dataset, meta)[:2]
        assert len(logged) == 2
        for sample, row in zip(logged, rows, strict=True):
            ids = smol.encode(cot.format(context=row["context"], question=row["input"]))
            expected = smol.decode(ids[:80] + ids[-80:], skip_special_tokens=True)
            context = sample["arguments"]["gen_args_0"]["arg_0"]
            assert sample["doc"]["prompt"] == expected
            assert context == smol.apply_chat_template([{"role": "user", "content": expected}], tokenize=False,
                                                       add_generation_prompt=True)
            expected_scores = cot_qa.process_results(sample["doc"], [sample["resps"][0][0]])
            assert {name: sample[name] for name in expected_scores} == expected_scores

    # The leaderboard's section, from this very output: values as lm-eval's, intervals over the logged items.
    (run,) = load_runs([str(out)])
    board = bd.build_board([run], with_published=False, iters=200)
    (row,) = next(sec for sec in board.sections if sec.key == "cotqa").rows
    for dataset in cot_qa.DATASETS:
        cell = row.cells[f"cotqa_{dataset}"]
        assert cell.value == pytest.approx(scores[f"longreward_cotqa_{dataset}"]["sub_em,none"])
        assert cell.ci is not None and cell.ci_method == "bootstrap" and cell.n == 2
    assert row.cells["cotqa_avg"].value == pytest.approx(group["sub_em,none"])
    assert row.cells["cotqa_musique_f1"].value == pytest.approx(scores["longreward_cotqa_musique"]["f1,none"])
    (enqa,) = next(sec for sec in board.sections if sec.key == "infinitebench_enqa").rows
    enqa_score = scores["longreward_infinitebench_enqa"]["score,none"]
    assert enqa.cells["infinitebench_enqa"].value == pytest.approx(enqa_score)


# ------------------------------------------------------------------------------------ LongReward on En.QA


def test_longqa_takes_enqa_questions_and_dry_runs_a_book(tmp_path: Path, smol) -> None:
    """``longreward_longqa_infinitebench_enqa``: the model's prompt is InfiniteBench's, the scorer reads the whole
    book in extraction chunks, and a dry run estimates the calls and cost without sending anything."""
    from lr_eval.tasks import longqa

    meta = {**_write_sources(tmp_path), "judge_model": "gpt-4o", "judge_base_url": "http://127.0.0.1:9/v1",
            "judge_dry_run": True, "judge_cache": "none", "reward_embedder": "bm25",
            "reward_extraction_chunk_tokens": 256, "pretrained": str(_embedded_model()), "max_length": 200}
    docs = longqa.load(infinitebench_enqa=True, **meta)["test"]
    rows = infinitebench.rows_from(meta)
    built = infinitebench.build_docs(rows, infinitebench.load_template(meta), smol, 200)
    assert [d["prompt"] for d in docs] == [b["prompt"] for b in built] and all(docs["truncated"])
    assert docs["context"] == [r["context"] for r in rows] and set(docs["source"]) == {"longbook_qa_eng"}
    verdicts, report = longqa.score_answers(meta, [docs[0]], ["w3 is w4. It was w5."], longqa.ENQA_TASK)
    n_tokens = verdicts[0].details["audit"]["context_tokens"]
    chunks = report.details["calls"]["extract"]["unscored"]  # every extraction call: estimated, not sent
    assert n_tokens > 256 * 3 and chunks >= n_tokens // 256
    assert report.usage["requests_sent"] == 0 and report.usage["estimated_calls"] > chunks
    assert report.usage["estimated_cost_usd"] > 0 and "dry_run_estimate" in verdicts[0].details["flags"]


# --------------------------------------------------------------------------------------------- leaderboard


def test_board_section_long_context_qa_subem() -> None:
    """The section's columns in the published tables' order; Avg = mean SubEM of the five; MuSiQue F1 beside."""
    values = {"multifieldqa_en": 40.0, "narrativeqa": 20.0, "longbook_qa_eng": 10.0, "2wikimqa": 60.0, "musique": 30.0}
    tasks = {f"longreward_cotqa_{d}": TaskResult(f"longreward_cotqa_{d}", {"sub_em": v, "f1": v / 2, "no_answer": 1.0},
                                                 {"sub_em": None, "f1": None, "no_answer": None})
             for d, v in values.items()}
    run = Run(Path("m"), "m", "m", {}, tasks, {}, {}, {}, [], {})
    board = bd.build_board([run], with_published=False, iters=50)
    (sec,) = [s for s in board.sections if s.key == "cotqa"]
    assert sec.title == "Long-context QA (SubEM)"
    assert [c.label for c in sec.columns] == ["MFQA-en", "NarrativeQA", "En.QA", "2WikiMQA", "MuSiQue", "Avg",
                                              "MuSiQue F1"]
    cells = sec.rows[0].cells
    assert [cells[f"cotqa_{d}"].value for d in values] == list(values.values())
    assert cells["cotqa_avg"].value == pytest.approx(32.0) and cells["cotqa_musique_f1"].value == 15.0
    del tasks["longreward_cotqa_musique"]  # a missing dataset leaves the average empty, with its coverage
    cells = bd.build_board([run], with_published=False, iters=50).sections[0].rows[0].cells
    assert cells["cotqa_avg"].value is None and cells["cotqa_avg"].coverage == "4/5 datasets"
