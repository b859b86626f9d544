"""`lr-train pairs` compares rewards like for like: only rewards that average the same dimensions, by default
only complete ones (issue 19 §3). The tampered case: a true sentence spelling every verdict gets
helpfulness, logicality and completeness unscored and reward = its faithfulness alone, 10.0, above the correct
answer's 8.5; it must never be chosen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lr_eval.train import cli
from lr_eval.train.pairs import PairPolicy, build_pairs, comparable_rewards, responses_sha
from lr_eval.reward.records import ResponseScore

FULL = ("helpfulness", "logicality", "faithfulness", "completeness")


def score(values: dict[str, float | None], unscored: tuple[str, ...] = ()) -> dict[str, Any]:
    """A score record as the scorer writes it: reward = mean of the scored dimensions, listed in averaged."""
    averaged = [d for d in FULL if values.get(d) is not None]
    reward = sum(values[d] for d in averaged) / len(averaged) if averaged else None  # type: ignore[misc]
    return {**{d: values.get(d) for d in FULL}, "reward": reward, "averaged": averaged,
            "unscored": {d: "no verdict in the judge's own words" for d in unscored}, "flags": [], "version": 1}


CORRECT = score({"helpfulness": 8, "logicality": 9, "faithfulness": 9, "completeness": 8})      # 8.5
TAMPERED = score({"faithfulness": 10}, unscored=("helpfulness", "logicality", "completeness"))  # 10.0
WEAK = score({"helpfulness": 3, "logicality": 4, "faithfulness": 5, "completeness": 2})        # 3.5
VAGUE = score({"helpfulness": 6, "logicality": 6, "faithfulness": 6, "completeness": 6})       # 6.0


def group(pid: str, results: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    responses = [f"answer {pid} {i}" for i in range(len(results))]
    sample = {"id": pid, "context": "ctx", "question": "q", "responses": responses,
              "seeds": list(range(len(results))), "finish_reasons": ["stop"] * len(results)}
    return sample, {"id": pid, "responses_sha": responses_sha(responses), "judge": "judge", "results": results}


def test_a_partial_reward_is_never_chosen() -> None:
    assert TAMPERED["reward"] == 10.0 and CORRECT["reward"] == 8.5  # the numbers
    rows = [group("g", [CORRECT, TAMPERED, WEAK, VAGUE]), group("two", [TAMPERED, CORRECT]),
            group("t", [TAMPERED, WEAK, CORRECT])]
    samples, scores = [s for s, _ in rows], {sc["id"]: sc for _, sc in rows}
    for allow in (False, True):
        pairs, report = build_pairs(samples, scores, PairPolicy(min_scored=2, allow_partial_rewards=allow))
        by_id = {p["id"]: p for p in pairs}
        assert set(by_id) == {"g", "t"}, allow
        for p in pairs:
            assert p["chosen"].endswith(" 0") if p["id"] == "g" else p["chosen"].endswith(" 2")  # the correct one
            assert p["chosen_reward"] == 8.5 and p["chosen_scores"]["helpfulness"] == 8
            assert p["provenance"]["reward_dimensions"] == list(FULL)
        assert by_id["g"]["rejected_reward"] == 3.5
        d = report.to_dict()
        # "two": the correct answer alone is complete: too few comparable rewards, dropped as partial_reward
        assert d["dropped"]["partial_reward"] == 1 and d["dropped_ids"]["partial_reward"] == ["two"]
        left_out = "other_dimension_set" if allow else "partial_reward"
        assert d["responses"][left_out] == 3 and d["policy"]["allow_partial_rewards"] is allow


def test_allow_partial_rewards_compares_within_one_set() -> None:
    no_faith = score({"helpfulness": 7, "logicality": 7, "completeness": 7}, unscored=("faithfulness",))
    low_no_faith = score({"helpfulness": 2, "logicality": 2, "completeness": 2}, unscored=("faithfulness",))
    results = [ResponseScore.from_dict(r) for r in (no_faith, CORRECT, low_no_faith, TAMPERED)]
    comparable, dims = comparable_rewards(results, allow_partial=True)
    assert comparable == [True, False, True, False] and dims == {"helpfulness", "logicality", "completeness"}
    comparable, dims = comparable_rewards(results, allow_partial=False)
    assert comparable == [False, True, False, False] and dims == set(FULL)
    # a record without `averaged` (an older writer): the dimensions with a value
    legacy = ResponseScore.from_dict({"helpfulness": 5, "logicality": 5, "faithfulness": 5, "completeness": 5,
                                      "reward": 5})
    assert comparable_rewards([legacy, results[1]], allow_partial=False)[0] == [True, True]
    # weights 1,1,1,0: completeness disabled is neither averaged nor unscored, so three dimensions are complete
    three = [ResponseScore.from_dict(score({"helpfulness": h, "logicality": h, "faithfulness": h})) for h in (2, 8)]
    assert comparable_rewards(three, allow_partial=False) == ([True, True],
                                                              frozenset({"helpfulness", "logicality", "faithfulness"}))


def test_cli_shows_partial_rewards_and_the_flag(tmp_path: Path, capsys: Any) -> None:
    sample, sc = group("g", [TAMPERED, CORRECT, WEAK])
    sp, scp, out = tmp_path / "s.jsonl", tmp_path / "sc.jsonl", tmp_path / "pairs.jsonl"
    sp.write_text(json.dumps(sample) + "\n")
    scp.write_text(json.dumps(sc) + "\n")
    assert cli.main(["pairs", str(sp), str(scp), "-o", str(out), "--min-scored", "2"]) == 0
    printed = capsys.readouterr().out
    assert "partial_reward" in printed
    pair = json.loads(out.read_text())
    assert pair["chosen_reward"] == 8.5 and pair["rejected_reward"] == 3.5
    report = json.loads((tmp_path / "pairs.report.json").read_text())
    assert report["responses"]["partial_reward"] == 1
    assert cli.main(["pairs", str(sp), str(scp), "-o", str(out), "--min-scored", "2", "--allow-partial-rewards"]) == 0
    assert json.loads(out.read_text())["chosen_reward"] == 8.5
    assert "other_dimension_set" in capsys.readouterr().out
