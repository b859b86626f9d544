"""lr-leaderboard and the verdict-trust rules (issue 19 §2): the unscored mark, the pessimistic bound, tampered counts.

The results are written here in the shape the judged tasks report after that change: per task,
``configs.<task>.metadata.judge`` (a :class:`lr_eval.records.JudgeReport`) whose ``samples`` hold ``judged``,
``scored``, ``tampered``, ``unscored`` (judge-caused), ``unscored_reasons`` and ``causes``, and a results metric
``M_pessimistic`` beside the primary metric ``M``. Results without those keys (the committed fixtures) render
as before: no mark, no bound, no tampered column.
"""

from __future__ import annotations

import json
from pathlib import Path

from lr_eval.leaderboards import board as bd
from lr_eval.leaderboards.cli import main as lb_main
from lr_eval.leaderboards.reader import load_runs
from lr_eval.leaderboards.render import UNSCORED, to_json, to_markdown
from lr_eval.records import JudgeReport

FIX = Path(__file__).parent / "fixtures" / "lm_eval_results"
DATE = "2026-12-07T10-00-00.000000"


def _write_run(folder: Path, model: str, tasks: dict[str, dict], new_shape: bool = True) -> Path:
    """One lm-eval results file: per task (score, pessimistic, judged, unscored, tampered, causes)."""
    results, configs, n_samples = {}, {}, {}
    for task, t in tasks.items():
        entry = {"alias": task, "score,none": t["score"], "score_stderr,none": 1.0}
        samples = {"judged": t["judged"], "scored": t["judged"] - t["unscored"], "unscored": t["unscored"]}
        if new_shape:
            entry["score_pessimistic,none"] = t["pessimistic"]
            samples.update(tampered=t["tampered"], unscored_reasons={"no_verdict": t["unscored"]},
                           causes={"judge": t["unscored"], "evaluated_text": t["tampered"]})
        results[task] = entry
        report = JudgeReport(model="gpt-4o-2024-05-13", samples=samples, template_id="longbench_chat",
                             template_version="2")
        configs[task] = {"task": task, "metadata": {"version": 1, "judge": report.to_dict()}}
        n_samples[task] = {"original": t["judged"], "effective": t["judged"]}
    data = {"results": results, "groups": {}, "group_subtasks": {}, "configs": configs,
            "versions": {t: 1 for t in tasks}, "n-samples": n_samples,
            "higher_is_better": {t: {"score": True} for t in tasks},
            "config": {"model": "hf", "model_args": {"pretrained": model}, "limit": None},
            "model_name": model, "lm_eval_version": "0.4.13", "date": 0.0}
    out = folder / model
    out.mkdir(parents=True)
    (out / f"results_{DATE}.json").write_text(json.dumps(data), encoding="utf-8")
    return out


def _boards(tmp_path: Path, new_shape: bool = True) -> tuple[bd.Board, list]:
    _write_run(tmp_path, "model-a", {
        "longreward_longbench_chat": dict(score=60.0, pessimistic=54.0, judged=50, unscored=3, tampered=2),
    }, new_shape)
    _write_run(tmp_path, "model-b", {
        "longreward_longbench_chat": dict(score=70.0, pessimistic=69.3, judged=100, unscored=1, tampered=0),
    }, new_shape)
    runs = load_runs([str(tmp_path)])
    return bd.build_board(runs, with_published=False, iters=200), runs


def _row(board: bd.Board, label: str) -> bd.Row:
    sec = next(s for s in board.sections if s.key == "main")
    return next(r for r in sec.rows if r.label == label)


def test_unscored_over_two_percent_marks_the_row(tmp_path: Path) -> None:
    board, _ = _boards(tmp_path)
    a, b = _row(board, "model-a"), _row(board, "model-b")
    assert a.section_judge and a.section_judge["unscored_rate"] == 3 / 50 and a.unscored_mark  # 6% > 2%
    assert b.section_judge and b.section_judge["unscored_rate"] == 1 / 100 and not b.unscored_mark  # 1%
    md = to_markdown(board)
    assert f"| model-a {UNSCORED} | measured |" in md and "| model-b | measured |" in md
    assert f"{UNSCORED}: more than 2% of this row's judged items were left unscored" in md  # the legend line
    rows = {r["label"]: r for s in to_json(board)["sections"] for r in s["rows"]}
    assert rows["model-a"]["marks"] == ["unscored_over_2pct"] and "marks" not in rows["model-b"]


def test_pessimistic_bound_in_cell_details(tmp_path: Path) -> None:
    board, _ = _boards(tmp_path)
    cell = _row(board, "model-a").cells["lb_chat"]
    assert cell.value == 60.0 and cell.pessimistic == 54.0
    rows = {r["label"]: r for s in to_json(board)["sections"] for r in s["rows"]}
    assert rows["model-a"]["cells"]["lb_chat"]["pessimistic"] == 54.0
    assert rows["model-b"]["cells"]["lb_chat"]["pessimistic"] == 69.3
    # the bound is bookkeeping beside the score, never a column or an "other" metric
    assert bd.primary_metric(board.runs[0].tasks["longreward_longbench_chat"]) == "score"
    out = tmp_path / "out"
    assert lb_main(["build", str(tmp_path / "model-a"), str(tmp_path / "model-b"), "-o", str(out), "--no-plots",
                    "--no-published"]) == 0
    html = (out / "leaderboard.html").read_text(encoding="utf-8")
    assert "pessimistic bound 54.0 (judge-unscored items counted as the scale&#x27;s minimum)" in html
    assert f'title="3 of 50 judged items unscored by the judge (over 2%)">{UNSCORED}</span>' in html
    assert "2 tampered (the evaluated text&#x27;s doing: scored as the scale&#x27;s minimum)" in html


def test_tampered_counts_in_the_judge_table(tmp_path: Path) -> None:
    board, _ = _boards(tmp_path)
    assert board.judges["model-a"].tampered == 2 and board.judges["model-b"].tampered == 0
    md = to_markdown(board)
    head = next(line for line in md.splitlines() if line.startswith("| Model | Judge model |"))
    assert head == "| Model | Judge model | Templates | Unscored | Tampered | Judge cost | Note |"
    line_a = next(line for line in md.splitlines() if line.startswith("| model-a | gpt-4o"))
    assert "| 6.0% (3/50) | 2 (causes: evaluated text 2, judge 3) |" in line_a
    per = board.judges["model-a"].per_task["longreward_longbench_chat"]
    assert per["tampered"] == 2 and per["causes"] == {"judge": 3, "evaluated_text": 2}
    assert {r["label"]: r["judge"]["tampered"] for r in to_json(board)["runs"]} == {"model-a": 2, "model-b": 0}


def test_results_before_the_change_render_as_before(tmp_path: Path) -> None:
    """No tampered, no M_pessimistic: no mark (even at 6% unscored), no bound, no Tampered column, same JSON keys."""
    board, _ = _boards(tmp_path, new_shape=False)
    a = _row(board, "model-a")
    assert a.section_judge and a.section_judge["unscored_rate"] == 3 / 50 and not a.unscored_mark
    assert a.cells["lb_chat"].pessimistic is None and board.judges["model-a"].tampered is None
    md = to_markdown(board)
    assert UNSCORED not in md and "Tampered" not in md
    data = to_json(board)
    for sec in data["sections"]:
        for row in sec["rows"]:
            assert set(row) == {"label", "source", "notes", "cells"}
            for cell in row["cells"].values():
                assert set(cell) == {"value", "ci", "ci_method", "n", "unscored", "coverage", "notes"}
    assert "tampered" not in data["runs"][0]["judge"]


def test_committed_fixtures_carry_no_trust_marks(tmp_path: Path) -> None:
    runs = load_runs([str(FIX / "chat"), str(FIX / "realstyle")])
    board = bd.build_board(runs, iters=100)
    assert not any(r.unscored_mark for s in board.sections for r in s.rows)
    assert "Tampered" not in to_markdown(board) and UNSCORED not in to_markdown(board)
