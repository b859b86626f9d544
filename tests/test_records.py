"""The records that cross part boundaries (judge report, LongReward score record and settings) and the one
yes/no reading: each is checked field by field, versioned, and read the same way from every source."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pytest

from lr_eval.flags import truthy
from lr_eval.jsonl import InputError
from lr_eval.records import JUDGE_REPORT_VERSION, FieldError, JudgeReport
from lr_eval.reward.records import DIMENSIONS, SCORE_VERSION, ResponseScore, score_results
from lr_eval.reward.settings import RewardSettings, add_reward_args


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("1", True), (" Yes ", True), ("ON", True),
                                                 ("true", True), (False, False), ("0", False), ("no", False),
                                                 ("", False), (None, False), ("false", False), (2, False)])
def test_truthy(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


# ------------------------------------------------------------------------------------------ judge report

REPORT = {"model": "gpt-4o", "judge": "gpt-4o via openai at api.openai.com", "template_id": "longbench_judged.qa",
          "template_version": "1", "rating_scale": [1, 3], "reasks": 1,
          "samples": {"judged": 12, "scored": 11, "unscored": 1, "unscored_reasons": {"no [[score]]": 1}},
          "calls": {"reasked": 1}, "usage": {"model": "gpt-4o", "cost_usd": 0.5}, "cost_usd": 0.25}


def test_judge_report_round_trip_keeps_every_key_and_adds_the_version() -> None:
    report = JudgeReport.from_dict(REPORT)  # written before reports had a version: read as version 1
    assert report.version == 1 and report.details == {"rating_scale": [1, 3], "reasks": 1, "calls": {"reasked": 1}}
    assert report.templates == {"longbench_judged.qa": "1"} and report.unscored_items == 1
    assert report.total_cost() == 0.25
    out = report.to_dict()
    assert out == {**REPORT, "version": JUDGE_REPORT_VERSION}
    assert JudgeReport.from_dict(json.loads(json.dumps(out))) == report


def test_judge_report_longreward_counts_and_usage_cost() -> None:
    lr = JudgeReport(model="m", samples={"judged": 8, "rewarded": 6, "unscored": {"faithfulness": 3}},
                     usage={"cost_usd": 0.125})
    assert lr.unscored_items == 2 and lr.total_cost() == 0.125 and lr.templates == {}
    assert JudgeReport(model="m", samples={"judged": 8, "unscored": {"faithfulness": 3}}).unscored_items == 3


@pytest.mark.parametrize(("change", "field"), [
    ({"model": None}, "model"), ({"samples": None}, "samples"), ({"samples": {"unscored": 1}}, "samples.judged"),
    ({"samples": {"judged": "12", "unscored": 1}}, "samples.judged"),
    ({"samples": {"judged": 2, "unscored": {"faithfulness": -1}}}, "samples.unscored.faithfulness"),
    ({"cost_usd": math.nan}, "cost_usd"), ({"cost_usd": "free"}, "cost_usd"), ({"usage": [1]}, "usage"),
    ({"version": 99}, "version"),
])
def test_judge_report_names_the_bad_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(FieldError) as info:
        JudgeReport.from_dict({**REPORT, **change})
    assert info.value.field == field and f"'{field}'" in str(info.value)
    with pytest.raises(FieldError, match="judge report object"):
        JudgeReport.from_dict("gpt-4o")  # type: ignore[arg-type]


def test_field_error_becomes_an_input_error_of_a_line() -> None:
    err = FieldError("results[1].reward", "expected a number, got list").at("scores.jsonl", 7)
    assert isinstance(err, InputError) and str(err) == (
        "scores.jsonl line 7, field 'results[1].reward': expected a number, got list")


# ------------------------------------------------------------------------------------------ score record

def test_score_record_round_trip_and_version() -> None:
    s = ResponseScore(helpfulness=7.0, logicality=6.0, reward=6.5, averaged=["helpfulness", "logicality"],
                      unscored={"faithfulness": "no statements"}, flags=["no_factual_statements"])
    d = s.to_dict()
    assert d["version"] == SCORE_VERSION and set(DIMENSIONS) <= set(d)
    assert ResponseScore.from_dict(json.loads(json.dumps(d))) == s
    assert ResponseScore.from_dict({"reward": 3}).reward == 3.0  # a short record (other tools) is fine


@pytest.mark.parametrize(("result", "field"), [
    ({"reward": [1, 2]}, "results[0].reward"), ({"reward": math.nan}, "results[0].reward"),
    ({"helpfulness": 11}, "results[0].helpfulness"), ({"reward": True}, "results[0].reward"),
    ({"averaged": ["style"]}, "results[0].averaged"), ({"unscored": {"faithfulness": 1}}, "results[0].unscored"),
    ({"flags": "x"}, "results[0].flags"), ({"version": 3}, "results[0].version"), ("7", "results[0]"),
])
def test_score_record_names_the_bad_field(result: Any, field: str) -> None:
    with pytest.raises(FieldError) as info:
        score_results({"id": "a", "results": [result]})
    assert info.value.field == field


def test_score_results_of_lines_without_results() -> None:
    assert score_results({"id": "a", "line": 3, "error": "bad"}) is None and score_results({"id": "a"}) is None
    with pytest.raises(FieldError, match="'results'"):
        score_results({"id": "a", "results": {"reward": 1}})


def test_pairs_refuses_a_bad_score_line_naming_file_line_and_field(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from lr_eval.train import cli

    samples, scores = tmp_path / "s.jsonl", tmp_path / "sc.jsonl"
    samples.write_text(json.dumps({"id": "a", "context": "c", "question": "q", "responses": ["x", "y"]}) + "\n")
    scores.write_text(json.dumps({"id": "a", "results": [{"reward": 1}, {"reward": "high"}]}) + "\n")
    assert cli.main(["pairs", str(samples), str(scores), "-o", str(tmp_path / "p.jsonl")]) == 2
    assert f"{scores} line 1, field 'results[1].reward': expected a number, got str" in capsys.readouterr().err
    assert not (tmp_path / "p.jsonl").exists()


# ------------------------------------------------------------------------------------------ settings

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_reward_args(p)
    return p


def test_one_schema_for_flags_metadata_and_toml() -> None:
    from lr_eval.train.pipeline import score_table, tomllib

    flags = RewardSettings.from_args(_parser().parse_args(
        ["--k", "3", "--weights", "1,1,0,1", "--embedder", "bm25", "--judge-window", "4096"]))
    metadata = RewardSettings.from_mapping({"reward_k": "3", "reward_weights": [1, 1, 0, 1], "reward_embedder": "bm25",
                                            "reward_judge_window": 4096, "judge_model": "m"}, "reward_")
    toml, rest = score_table(tomllib.loads('k = 3\nweights = [1, 1, 0, 1]\nembedder = "bm25"\n'
                                           'judge-window = 4096\nmodel = "judge"\n'), "run.toml [score]")
    assert flags == metadata == toml and rest == {"model": "judge"}
    assert RewardSettings.from_args(_parser().parse_args(flags.to_argv())) == flags
    assert RewardSettings.from_dict(json.loads(json.dumps(flags.to_dict()))) == flags
    assert RewardSettings.from_args(_parser().parse_args([])) == RewardSettings()
    cfg = flags.for_judge(None)
    assert (cfg.k, cfg.weights, cfg.judge_window, cfg.embedder) == (3, (1.0, 1.0, 0.0, 1.0), 4096, "bm25")


def test_settings_defaults_depend_on_the_judge() -> None:
    from lr_eval.config import JudgeConfig

    assert RewardSettings().for_judge(JudgeConfig(backend="embedded")).judge_window == 8192
    assert RewardSettings().for_judge(JudgeConfig(model="m")).judge_window == 128_000
    assert RewardSettings(judge_window=0, max_context_tokens=0).judge_window is None
    assert set(RewardSettings(judge_max_tokens=99).max_tokens.values()) == {99}


@pytest.mark.parametrize(("values", "match"), [
    ({"reward_embeder": "bm25"}, "'reward_embeder': unknown LongReward setting .*reward_embedder"),
    ({"reward_k": "five"}, "'reward_k': expected an integer"), ({"reward_k": True}, "'reward_k'"),
    ({"reward_k": 2.5}, "'reward_k'"), ({"reward_weights": "1,2"}, "'reward_weights': expected four numbers"),
    ({"reward_support_batch": 0}, "'reward_support_batch'"), ({"reward_language": "fr"}, "'reward_language'"),
    ({"reward_embedder": {"x": 1}}, "'reward_embedder': expected text"),
])
def test_settings_errors_name_the_key(values: dict[str, Any], match: str) -> None:
    with pytest.raises(FieldError, match=match):
        RewardSettings.from_mapping(values, "reward_", where="--metadata")


def test_leaderboard_reads_the_report_through_the_record() -> None:
    from lr_eval.leaderboards import board as bd
    from lr_eval.leaderboards.reader import Run, TaskResult

    def run(report: Any) -> Run:
        tr = TaskResult("longreward_longbench_chat", {"score": 50.0}, {"score": None}, n=12,
                        config={"metadata": {"version": 1.0, "judge": report}})
        return Run(Path("r"), "r", "m", {}, {tr.name: tr}, {}, {}, {}, [], {})

    entry = bd.judge_info(run(REPORT)).per_task["longreward_longbench_chat"]
    assert entry["model"] == "gpt-4o" and entry["templates"] == {"longbench_judged.qa": "1"}
    assert (entry["items"], entry["unscored"], entry["cost_usd"]) == (12, 1, 0.25)
    bad = bd.judge_info(run({**REPORT, "samples": {"judged": "twelve", "unscored": 1}}))
    entry = bad.per_task["longreward_longbench_chat"]  # a broken report is named, not guessed at, no traceback
    assert "samples.judged" in entry["report_error"] and "cost_usd" not in entry and "model" not in entry
