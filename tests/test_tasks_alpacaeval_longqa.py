"""AlpacaEval 2 (``longreward_alpacaeval2``) and LongReward as a metric (``longreward_longqa*``).

Unit tests check the annotator protocol and the metric arithmetic on the real alpaca_eval data in
../shared (skipped without it); the end-to-end runs go through lm-eval's `hf` backend on the
embedded SmolLM2 with a scripted judge server, on our own small fixtures, with --limit.
"""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from lr_eval.config import JudgeConfig, build_client
from lr_eval.testing.scripted_server import Reply, ScriptedServer
from lr_eval.types import ChatResult
from lm_eval_checks import AE_FIX, AE_META, FIX, assert_rejudge_matches_lm_eval
from lm_eval_checks import embedded_model as _embedded
from lm_eval_checks import logged_samples as _samples
from lm_eval_checks import run_lm_eval as _run

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "tasks" / "configs"
LQ_META = {"longqa_data": str(FIX / "longqa" / "questions.jsonl"), "reward_embedder": "bm25",
           "longbench_data": str(FIX / "judged" / "longbench"),
           "longbench_prompts": str(FIX / "judged" / "dataset2prompt.json"),
           "max_length": 128}  # the model's prompt budget: short prompts keep CPU generation fast
MODELS = ["Qwen-14B-Chat", "alpaca-7b", "gemma-2b-it", "gpt-3.5-turbo-1106", "vicuna-13b-v1.5"]
QA = ["narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh", "hotpotqa", "2wikimqa", "musique", "dureader"]


@pytest.fixture(scope="module")
def task_manager() -> Any:
    """One TaskManager for the module (its metadata serves every test: the keys do not overlap)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(CONFIGS), include_defaults=False,
                       metadata={**AE_META, **LQ_META, "pretrained": _embedded()})


def _records(annotations: list[dict[str, Any]], **extra: Any) -> list[dict[str, Any]]:
    """Per-instruction records as process_results makes them, from alpaca_eval annotations."""
    return [{"index": i, "preference": a["preference"], "length": len(a["output_2"]),
             "reference_length": len(a["output_1"]), "difficulty": None, "glm": "none", "gamed": None, **extra}
            for i, a in enumerate(annotations)]


# ------------------------------------------------------------------------------------------ unit


def test_yamls_are_indexed(task_manager: Any) -> None:
    names = set(task_manager.all_tasks)
    expected = {"longreward_alpacaeval2", "longreward_longqa", "longreward_longqa_longbench",
                "longreward_longqa_longbench_single_doc_qa", "longreward_longqa_longbench_multi_doc_qa"}
    expected |= {f"longreward_longqa_longbench_{d}" for d in QA}
    assert expected <= names, expected - names


def test_no_judge_fails_before_generation(task_manager: Any) -> None:
    from lr_eval.tasks.judging import JudgeNotConfigured

    for task in ("longreward_alpacaeval2", "longreward_longqa"):
        with pytest.raises(JudgeNotConfigured, match="LR_JUDGE_MODEL"):
            task_manager.load([task])


def test_swap_rule_reproduces_alpaca_eval_order(shared_data: Path) -> None:
    """The order recorded in five models' published annotations is our seeded order, on every judged row."""
    from lr_eval.tasks.alpacaeval2 import is_swapped

    checked = 0
    for model in MODELS:
        for rec in json.loads((shared_data / "alpacaeval" / "annotations" / f"{model}.json").read_text()):
            raw = rec.get("raw_completion")
            if not raw:
                assert rec["output_1"] == rec["output_2"] and rec["preference"] == 1.5  # identical: no call
                continue
            top = {t["token"]: t["logprob"] for t in raw["logprobs"]["content"][0]["top_logprobs"]}
            lm, lM = top.get("m", -math.inf), top.get("M", -math.inf)
            shown = 2 - math.exp(lm - max(lm, lM)) / (math.exp(lm - max(lm, lM)) + math.exp(lM - max(lm, lM)))
            if abs(shown - 1.5) < 1e-9:
                continue  # the order cannot be read off a draw
            swapped = abs(3 - shown - rec["preference"]) < 1e-6
            assert swapped or abs(shown - rec["preference"]) < 1e-6
            assert is_swapped(rec["instruction"]) == swapped, rec["instruction"][:60]
            checked += 1
    assert checked > 4000


def test_annotator_prompt_as_alpaca_eval_renders_it(shared_data: Path) -> None:
    from lr_eval.tasks.alpacaeval2 import DECODING, Annotator, chatml_messages, fill_template

    template = (shared_data / "alpacaeval" / "annotator_template_alpaca_eval_clf.txt").read_text()
    ann = Annotator(template)
    instruction = "Name a colour."
    swapped = ann.requests(instruction, "REF", "MODEL")
    assert len(swapped) == 1 and swapped[0][0] is (random.Random("is_switched_outputs" + instruction + "0")
                                                  .choices([False, True], k=1)[0])
    req = ann.request(instruction, "first {output_2} answer", "second")
    system, user = req.messages
    assert system["role"] == "system" and system["content"].startswith("You are a highly efficient assistant")
    assert user["role"] == "user" and user["content"].endswith("## Best Model Identifier")
    # one pass over the template: a placeholder inside an answer stays text (alpaca_eval would fill it)
    assert '"model_identifier": "m",\n        "output": """first {output_2} answer"""' in user["content"]
    assert '"output": """second"""' in user["content"]
    assert (req.max_tokens, req.logprobs, req.top_logprobs, req.temperature) == (
        DECODING["max_tokens"], True, 5, 1.0)
    assert req.template_version.startswith("sha256:")
    rendered = chatml_messages(fill_template(template, "i", "a", "b"))
    assert rendered == [dict(m) for m in ann.request("i", "a", "b").messages]


def test_preference_reading() -> None:
    # read_preference now returns the parsed verdict (through the trust rule of every family); _method says how
    from lr_eval.tasks.alpacaeval2 import Annotator, _method, read_preference

    req = Annotator((AE_FIX / "annotator_template.txt").read_text()).request("Name a colour.", "Red.", "Blue.")
    lp = ChatResult(content="M", top_logprobs=[{"M": math.log(0.75), "m": math.log(0.25), "The": -5.0}])
    assert read_preference(lp, req).value == pytest.approx(1.75) and _method(lp) == "logprobs"
    only_m = ChatResult(content="m", top_logprobs=[{"m": -0.01, "The": -5.0}])
    assert read_preference(only_m, req).value == 1.0  # a missing identifier counts as -inf
    neither = ChatResult(content="The", top_logprobs=[{"The": -0.1}])
    assert read_preference(neither, req).value is None and "neither" in read_preference(neither, req).reason
    text = ChatResult(content=" M\n")
    assert read_preference(text, req).value == 2.0 and _method(text) == "text"  # discrete fallback: no logprobs
    assert read_preference(ChatResult(content="m"), req).value == 1.0
    assert read_preference(ChatResult(content="Model m"), req).value is None
    failed = ChatResult(content=None, error="boom")
    assert read_preference(failed, req).reason == "judge call failed: boom" and _method(failed) == "error"


def test_judge_batch_unswaps_falls_back_and_skips_identical_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    from lr_eval.tasks.alpacaeval2 import Annotator, LCInputs, is_swapped, judge_alpacaeval, load_reference

    docs = load_reference(AE_FIX / "reference_outputs.json")[:4]
    outputs = ["model answer 0", "model answer 1", docs[2]["reference"] + "\n", "model answer 3"]

    def judge(body: dict[str, Any]) -> str:  # always prefers the model's answer, wherever it is shown
        user = body["messages"][-1]["content"]
        return "M" if user.index("model answer") > user.index('Answer "M"') else "m"

    annotator = Annotator((AE_FIX / "annotator_template.txt").read_text(), both_orders=True)
    with ScriptedServer(responder=judge) as srv:
        client = build_client(JudgeConfig.load(overrides={"base_url": srv.base_url, "model": "j", "cache": "none",
                                                          "price_input": 1.0, "price_output": 1.0}),
                              show_progress=False)
        original = client.chat

        async def without_logprobs(request: Any) -> ChatResult:  # an endpoint that ignores logprobs=True
            res = await original(request)
            res.top_logprobs = None
            return res

        monkeypatch.setattr(client, "chat", without_logprobs)
        verdicts, report = judge_alpacaeval(annotator, client, docs, outputs, LCInputs.from_metadata(AE_META))
        assert len(srv.bodies) == 6  # 3 instructions x 2 orders; the identical answer costs nothing
    assert [v.value for v in verdicts] == [2.0, 2.0, 1.5, 2.0] and {v.status for v in verdicts} == {"scored"}
    d = [v.details for v in verdicts]
    assert [x["method"] for x in d] == ["text", "text", "identical", "text"]
    assert [x["swapped"] for x in d] == [is_swapped(doc["instruction"]) for doc in docs[:2]] + [None] + \
        [is_swapped(docs[3]["instruction"])]
    assert [x["consistent"] for x in d] == [True, True, None, True]
    assert d[0]["other_order"]["swapped"] is not d[0]["swapped"]
    assert [x["difficulty"] for x in d] == [-1.2, 0.4, -0.3, 0.9]  # from df_gamed.csv, by index
    assert verdicts[2].response == docs[2]["reference"] and verdicts[2].cost_usd == 0
    assert report.samples["preference_from"] == {"text": 3, "identical": 1}
    assert report.details["position_consistency"] == 1.0 and report.cost_usd > 0


def test_metrics_reproduce_the_published_leaderboard(shared_data: Path) -> None:
    """Real annotations through the task's aggregations give alpaca_eval's published numbers."""
    from lr_eval.tasks import alpacaeval2 as ae
    from lr_eval.tasks.alpacaeval_metrics import length_controlled_winrate, load_gamed

    ae_dir = shared_data / "alpacaeval"
    with open(ae_dir / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv", encoding="utf-8") as f:
        board = {row[""]: row for row in csv.DictReader(f)}
    for model in MODELS:
        annotations = json.loads((ae_dir / "annotations" / f"{model}.json").read_text())
        items = _records(annotations)
        random.Random(model).shuffle(items)  # ranks may gather in any order
        published = board[model]
        for key, fn in (("win_rate", ae.win_rate), ("standard_error", ae.standard_error),
                        ("discrete_win_rate", ae.discrete_win_rate)):
            assert fn(items) == pytest.approx(float(published[key]), abs=1e-9), (model, key)
        assert ae.avg_length(items) == int(published["avg_length"])

    # LC: the same fit as alpaca_eval's algorithm on the AlpacaEval order, whatever order the records come in
    annotations = json.loads((ae_dir / "annotations" / "gpt-3.5-turbo-1106.json").read_text())
    gamed = ae_dir / "synthetic_df_gamed.csv"  # NOT official: a stand-in in df_gamed.csv's format
    lc = ae.LCInputs("length_controlled_v1", str(gamed), None)
    difficulty = lc.difficulty()
    items = _records(annotations, glm="length_controlled_v1", gamed=str(gamed))
    for rec in items:
        rec["difficulty"] = difficulty[rec["index"]]
    random.Random(0).shuffle(items)
    expected = length_controlled_winrate(annotations, None, load_gamed(gamed))
    assert ae.lc_win_rate(items) == pytest.approx(expected["length_controlled_winrate"], abs=1e-9)
    assert ae.lc_standard_error(items) == pytest.approx(expected["lc_standard_error"], abs=1e-9)
    assert ae.position_consistency(items) != ae.position_consistency(items)  # NaN: single-order records


def test_lc_needs_enough_rows() -> None:
    from lr_eval.tasks import alpacaeval2 as ae

    items = [{"index": i, "preference": 1.0 + i / 4, "length": 10 * i, "reference_length": 30, "difficulty": 0.1,
              "glm": "length_controlled_noreg", "gamed": None} for i in range(3)]
    assert math.isnan(ae.lc_win_rate(items)) and ae.win_rate(items) == pytest.approx(25.0)


def test_load_the_real_set(shared_data: Path) -> None:
    from lr_eval.tasks.alpacaeval2 import Annotator, load

    ae_dir = shared_data / "alpacaeval"
    meta = {"judge_model": "m",
            "alpacaeval_reference_outputs": str(ae_dir / "reference_outputs_gpt4_1106_preview.json"),
            "alpacaeval_annotator_template": str(ae_dir / "annotator_template_alpaca_eval_clf.txt"),
            "alpacaeval_gamed": str(ae_dir / "synthetic_df_gamed.csv"),
            "alpacaeval_instruction_difficulty": str(ae_dir / "estimated_instruction_difficulty.csv")}
    docs = load(**meta)["test"]
    refs = json.loads((ae_dir / "reference_outputs_gpt4_1106_preview.json").read_text())
    assert len(docs) == 805 and docs["index"] == list(range(805))
    assert docs[17]["instruction"] == refs[17]["instruction"] and docs[17]["reference"] == refs[17]["output"]
    assert docs[0]["reference_generator"] == "gpt4_1106_preview"
    assert Annotator.from_metadata(meta).template_version == Annotator(
        (ae_dir / "annotator_template_alpaca_eval_clf.txt").read_text()).template_version
    with pytest.raises(ValueError, match="alpacaeval_glm"):
        load(**meta, alpacaeval_glm="length_controlled_v2")
    with pytest.raises(FileNotFoundError, match="alpacaeval_gamed"):
        load(**{**meta, "alpacaeval_gamed": str(ae_dir / "missing.csv")})
    no_difficulty = {k: v for k, v in meta.items() if k != "alpacaeval_instruction_difficulty"}
    with pytest.raises(ValueError, match="no instruction difficulty"):  # the fixture's df_gamed covers 6 rows
        load(**{**no_difficulty, "alpacaeval_gamed": str(AE_FIX / "df_gamed.csv")})


def test_official_sources_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        shared_data: Path) -> None:
    """Defaults: the hub files and the pinned, checksummed GitHub template; a folder of official names."""
    import huggingface_hub

    from lr_eval.tasks import alpacaeval2 as ae
    from lr_eval.tasks import judging

    asked: list[tuple[Any, ...]] = []

    def fake_hub(repo: str, filename: str, **kw: Any) -> str:
        asked.append((repo, filename, kw.get("repo_type"), kw.get("revision")))
        if filename == "df_gamed.csv":
            raise OSError("offline")
        return str(AE_FIX / "reference_outputs.json")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hub)
    assert ae.data_file("reference_outputs", {"alpacaeval_revision": "abc"}) == AE_FIX / "reference_outputs.json"
    assert asked == [("tatsu-lab/alpaca_eval", "alpaca_eval_gpt4_baseline.json", "dataset", "abc")]
    with pytest.raises(RuntimeError, match="alpacaeval_gamed.*LR_ALPACAEVAL_GAMED"):
        ae.data_file("gamed", {})
    assert ae.data_file("instruction_difficulty", {}) is None  # default: the difficulty in df_gamed.csv
    ae.data_file("instruction_difficulty", {"alpacaeval_instruction_difficulty": "hub"})
    assert asked[-1][1] == "instruction_difficulty.csv"

    official = shared_data / "alpacaeval" / "annotator_template_alpaca_eval_clf.txt"
    fetched = tmp_path / "alpaca_eval_clf.txt"
    monkeypatch.setattr(judging, "download_cached", lambda url, rel: fetched)
    fetched.write_bytes(official.read_bytes())
    assert ae.data_file("annotator_template", {}) == fetched
    fetched.write_text(official.read_text() + "tampered")
    with pytest.raises(RuntimeError, match="SHA-256"):
        ae.data_file("annotator_template", {})

    folder = tmp_path / "ae"
    folder.mkdir()
    (folder / "df_gamed.csv").write_bytes((AE_FIX / "df_gamed.csv").read_bytes())
    monkeypatch.setenv("LR_ALPACAEVAL_DIR", str(folder))
    assert ae.data_file("gamed", {}) == folder / "df_gamed.csv"
    assert ae.data_file("gamed", {"alpacaeval_gamed": str(AE_FIX / "df_gamed.csv")}) == AE_FIX / "df_gamed.csv"


def test_reward_settings_mirror_the_score_command() -> None:
    from lr_eval.tasks.longqa import reward_settings

    args = reward_settings({"reward_embedder": "bm25", "reward_k": 3, "reward_weights": [1, 1, 0, 1],
                            "judge_model": "x", "pretrained": "y"})
    assert (args.embedder, args.k, args.weights) == ("bm25", 3, (1.0, 1.0, 0.0, 1.0))
    assert reward_settings({}).embedder == "local"  # the scorer's default (local MiniLM)
    with pytest.raises(ValueError, match="reward_embedder"):
        reward_settings({"reward_embeder": "bm25"})
    with pytest.raises(ValueError, match="reward_"):
        reward_settings({"reward_k": "five"})
    from lr_eval.tasks.longqa import load

    with pytest.raises(ValueError, match="weights"):  # checked when the task is built, before generation
        load(judge_model="m", reward_weights="1,2", longqa_data=LQ_META["longqa_data"])


def test_longqa_process_results_excludes_unscored() -> None:
    from lr_eval.tasks.longqa import process_results

    verdict = {"response": "x", "helpfulness": 6.0, "logicality": None, "faithfulness": None, "completeness": 4.0,
               "reward": 5.0, "unscored": {"logicality": "no [[score]] in the answer"}}
    out = process_results({}, [json.dumps(verdict)])
    assert out == {"helpfulness": 6.0, "helpfulness_unscored": 0.0, "logicality_unscored": 1.0,
                   "faithfulness_unscored": 0.0,  # weight 0 (not computed) is not "unscored"
                   "completeness": 4.0, "completeness_unscored": 0.0, "longreward": 5.0, "longreward_unscored": 0.0,
                   "longreward_pessimistic": 5.0, "longreward_tampered": 0.0, "longreward_partial": 1.0}


# ------------------------------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_lm_eval_alpacaeval2(task_manager: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All six fixture instructions through lm-eval, judged in both orders by a scripted logprob judge."""
    from lr_eval.tasks.alpacaeval2 import is_swapped
    from lr_eval.tasks.alpacaeval_metrics import length_controlled_winrate, load_gamed, win_rate_metrics

    refs = json.loads((AE_FIX / "reference_outputs.json").read_text())

    def judge(body: dict[str, Any]) -> Reply:
        user = body["messages"][-1]["content"]
        first = user.split('Answer "m":')[1].split('Answer "M":')[0]
        if "haiku" in user:  # position bias: always the first shown
            return Reply(content="m", top_logprobs=[{"m": math.log(0.9), "M": math.log(0.1)}])
        if "Cardboard Carl" in user:  # no identifier at all: unscored
            return Reply(content="The", top_logprobs=[{"The": -0.1, "Based": -3.0}])
        p_first = 0.8 if any(r["output"] in first for r in refs) else 0.2  # prefers the reference
        return Reply(content="m" if p_first > 0.5 else "M",
                     top_logprobs=[{"m": math.log(p_first), "M": math.log(1 - p_first), "The": -9.0}])

    with ScriptedServer(responder=judge) as srv:
        monkeypatch.setenv("LR_JUDGE_BASE_URL", srv.base_url)
        monkeypatch.setenv("LR_JUDGE_MODEL", "scripted-judge")
        monkeypatch.setenv("LR_JUDGE_PRICE_INPUT", "1")
        monkeypatch.setenv("LR_JUDGE_PRICE_OUTPUT", "1")
        res = _run(task_manager, ["longreward_alpacaeval2"], tmp_path / "out", limit=6, gen_kwargs="max_gen_toks=8")
        bodies = list(srv.bodies)
        assert_rejudge_matches_lm_eval(tmp_path / "out", tmp_path / "rj")
    assert len(bodies) == 12 and all(b["max_tokens"] == 1 and b["top_logprobs"] == 5 for b in bodies)
    recs = _samples(tmp_path / "out", "longreward_alpacaeval2")
    verdicts = [json.loads(r["filtered_resps"][0]) for r in recs]
    expected = [1.2] * 6
    expected[1] = 1.9 if is_swapped(refs[1]["instruction"]) else 1.1
    expected[4] = None
    assert [v["value"] for v in verdicts] == pytest.approx(expected)
    assert verdicts[4]["reason"].startswith("neither m nor M") and verdicts[4]["status"] == "unscored"
    assert all(v["response"] == r["resps"][0][0].strip() for v, r in zip(verdicts, recs, strict=True))

    r = res["results"]["longreward_alpacaeval2"]
    base = win_rate_metrics(expected, [len(v["response"]) for v in verdicts])
    assert r["win_rate,judge"] == pytest.approx(base["win_rate"], abs=1e-9)
    assert r["standard_error,judge"] == pytest.approx(base["standard_error"], abs=1e-9)
    assert r["discrete_win_rate,judge"] == pytest.approx(base["discrete_win_rate"], abs=1e-9)
    assert r["avg_length,judge"] == base["avg_length"]
    annotations = [{"output_1": ref["output"], "output_2": v["response"], "preference": v["value"]}
                   for ref, v in zip(refs, verdicts, strict=True)]
    lc = length_controlled_winrate(annotations, None, load_gamed(AE_FIX / "df_gamed.csv"))
    assert r["length_controlled_winrate,judge"] == pytest.approx(lc["length_controlled_winrate"], abs=1e-9)
    assert r["lc_standard_error,judge"] == pytest.approx(lc["lc_standard_error"], abs=1e-9)
    assert r["position_consistency,judge"] == pytest.approx(4 / 5)  # the haiku flips; the unscored one is left out
    assert r["judge_unscored,judge"] == 1.0 and r["judge_cost_usd,judge"] > 0 and r["judge_tampered,judge"] == 0.0
    lost = win_rate_metrics([1.0 if p is None else p for p in expected])["win_rate"]  # the unscored one counted lost
    assert r["win_rate_pessimistic,judge"] == pytest.approx(lost, abs=1e-9)
    assert r["win_rate_pessimistic,judge"] < r["win_rate,judge"]
    judge_meta = res["configs"]["longreward_alpacaeval2"]["metadata"]["judge"]
    assert judge_meta["model"] == "scripted-judge" and judge_meta["seed"] == 0
    assert judge_meta["samples"]["unscored"] == 1 and judge_meta["length_controlled"]["glm"] == "length_controlled_v1"


@pytest.mark.slow
def test_lm_eval_longqa(task_manager: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our QA file and LongBench's single-doc QA group through lm-eval, scored by LongReward (canned judge)."""
    from lr_eval.testing.canned_judge import CannedJudge

    canned = CannedJudge(scores={"helpfulness": 7, "logicality": 8, "completeness": 6})
    with ScriptedServer(responder=canned) as srv:
        monkeypatch.setenv("LR_JUDGE_BASE_URL", srv.base_url)
        monkeypatch.setenv("LR_JUDGE_MODEL", "scripted-judge")
        res = _run(task_manager, ["longreward_longqa", "longreward_longqa_longbench_single_doc_qa"], tmp_path / "out",
                   limit=2, gen_kwargs="max_gen_toks=6")
        rejudged = assert_rejudge_matches_lm_eval(tmp_path / "out", tmp_path / "rj")
        assert "longreward_longqa_longbench_single_doc_qa" in rejudged["groups"]
    assert ("helpfulness", "zh") in canned.calls and ("support", "en") in canned.calls  # multifieldqa_zh in Chinese
    results = res["results"]
    for task in ["longreward_longqa", *(f"longreward_longqa_longbench_{d}" for d in QA[:4])]:
        r = results[task]
        verdicts = [json.loads(s["filtered_resps"][0]) for s in _samples(tmp_path / "out", task)]
        assert r["helpfulness,longreward"] == 7.0 and r["logicality,longreward"] == 8.0
        assert r["completeness,longreward"] == 6.0
        for dim, metric in (("faithfulness", "faithfulness"), ("reward", "longreward")):
            values = [v[dim] for v in verdicts if v[dim] is not None]
            assert r[f"{metric}_unscored,longreward"] == len(verdicts) - len(values)
            if values:
                assert r[f"{metric},longreward"] == pytest.approx(sum(values) / len(values))
        for v in verdicts:  # the reward is the mean of the scored dimensions, 0-10
            dims = [v[d] for d in ("helpfulness", "logicality", "faithfulness", "completeness") if v[d] is not None]
            assert v["reward"] == pytest.approx(sum(dims) / len(dims))
            assert "faithfulness" in v["audit"] and "completeness" in v["audit"]
    groups = res["groups"]["longreward_longqa_longbench_single_doc_qa"]
    assert groups["longreward,longreward"] == pytest.approx(
        sum(results[f"longreward_longqa_longbench_{d}"]["longreward,longreward"] for d in QA[:4]) / 4)
    # the model saw a truncated prompt; the scorer saw the whole document
    docs = [s["doc"] for s in _samples(tmp_path / "out", "longreward_longqa")]
    verdicts = [json.loads(s["filtered_resps"][0]) for s in _samples(tmp_path / "out", "longreward_longqa")]
    assert [d["id"] for d in docs] == ["canal", "seabirds"] and all(d["truncated"] for d in docs)
    assert all(v["audit"]["context_tokens"] > 128 for v in verdicts)
    meta = res["configs"]["longreward_longqa"]["metadata"]["judge"]
    assert meta["model"] == "scripted-judge" and meta["reward_config"]["embedder"] == "bm25"
    assert meta["samples"]["judged"] == 2 and meta["calls"]["helpfulness"]["scored"] == 2
