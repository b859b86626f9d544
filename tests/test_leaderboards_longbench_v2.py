"""The board's LongBench v2 section: our longreward_longbench_v2* results with result.py's breakdowns, and the
official leaderboard's published rows beside them (marked, never mixed into measured intervals)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lr_eval.jsonl import InputError
from lr_eval.leaderboards import board as bd
from lr_eval.leaderboards import longbench_v2 as lbv2
from lr_eval.leaderboards.cli import main as lb_main
from lr_eval.leaderboards.reader import load_runs

#: lm-eval 0.4.13's own output of longreward_longbench_v2_plain and _cot (its dummy model, which answers "lol":
#: every question wrong) on tests/fixtures/longbench_v2/data.json (easy/short, hard/long, hard/medium).
DUMMY = Path(__file__).parent / "fixtures" / "longbench_v2" / "board_dummy"
PLAIN = "longreward_longbench_v2_plain"


def _section(board: bd.Board) -> bd.Section:
    return next(s for s in board.sections if s.key == "longbench_v2")


def _graded(tmp_path: Path, correct: tuple[float, ...]) -> Path:
    """The dummy run with the plain task's questions graded `correct` (samples and results made consistent,
    result.py's rounding): a run that got some right."""
    folder = tmp_path / "graded"
    shutil.copytree(DUMMY, folder)
    [spath] = folder.glob(f"samples_{PLAIN}_*.jsonl")
    rows = [json.loads(line) for line in spath.read_text().splitlines()]
    items = []
    for row, c in zip(rows, correct, strict=True):
        difficulty, length, _ = row["overall"]
        for b in lbv2.BREAKDOWNS:
            row[b] = [difficulty, length, c]
        items.append((difficulty, length, c))
    spath.write_text("".join(json.dumps(r) + "\n" for r in rows))
    [rpath] = folder.glob("results_*.json")
    res = json.loads(rpath.read_text())
    keep = {"overall": lambda d, ln: True, "easy": lambda d, ln: d == "easy", "hard": lambda d, ln: d != "easy",
            "short": lambda d, ln: ln == "short", "medium": lambda d, ln: ln == "medium",
            "long": lambda d, ln: ln not in ("short", "medium")}
    for b, k in keep.items():
        picked = [c for d, ln, c in items if k(d, ln)]
        res["results"][PLAIN][f"{b},none"] = round(100 * sum(picked) / len(picked), 1)
    rpath.write_text(json.dumps(res))
    return folder


def test_section_reads_real_lm_eval_output_with_its_breakdowns() -> None:
    board = bd.build_board(load_runs([f"dummy={DUMMY}"]), iters=100)
    sec = _section(board)
    assert [c.key for c in sec.columns][:4] == ["lb2_plain_overall", "lb2_cot_overall", "lb2_plain_easy",
                                                "lb2_cot_easy"]
    assert len(sec.columns) == 14  # six breakdowns x two settings, then no-context and RAG
    [measured] = [r for r in sec.rows if r.source == "measured"]
    cells = measured.cells
    assert cells["lb2_plain_overall"].value == 0.0 and cells["lb2_plain_overall"].n == 3
    assert cells["lb2_cot_hard"].n == 2 and cells["lb2_cot_short"].n == 1 and cells["lb2_plain_long"].n == 1
    assert "lb2_no_context_overall" not in cells  # not run: no cell, never a made-up one
    # lm-eval's own longbench2 is another section: never these columns
    assert all(not c.key.startswith("lb2_") for s in board.sections if s.key != "longbench_v2" for c in s.columns)


def test_breakdowns_and_intervals_come_from_the_logged_items(tmp_path: Path) -> None:
    board = bd.build_board(load_runs([f"m={_graded(tmp_path, (1.0, 0.0, 1.0))}"]), iters=200)
    cells = next(r for r in _section(board).rows if r.source == "measured").cells
    assert cells["lb2_plain_overall"].value == pytest.approx(200 / 3)  # 66.7 reported, the items' exact mean
    assert cells["lb2_plain_easy"].value == 100.0 and cells["lb2_plain_hard"].value == 50.0
    assert cells["lb2_plain_medium"].value == 100.0 and cells["lb2_plain_long"].value == 0.0
    assert cells["lb2_plain_overall"].ci_method == "bootstrap"
    low, high = cells["lb2_plain_overall"].ci  # type: ignore[misc]
    assert 0.0 <= low < 200 / 3 < high <= 100.0


def test_samples_that_disagree_with_the_reported_figure_are_not_used(tmp_path: Path) -> None:
    folder = _graded(tmp_path, (1.0, 0.0, 1.0))
    [rpath] = folder.glob("results_*.json")
    res = json.loads(rpath.read_text())
    res["results"][PLAIN]["overall,none"] = 33.3  # not what the logged items say
    rpath.write_text(json.dumps(res))
    cell = next(r for r in _section(bd.build_board(load_runs([str(folder)]), iters=50)).rows
                if r.source == "measured").cells["lb2_plain_overall"]
    assert cell.value == 33.3 and cell.ci is None  # the reported number, without an interval it does not have


def test_published_rows_are_marked_and_credit_their_source() -> None:
    board = bd.build_board(load_runs([f"dummy={DUMMY}"]), iters=50)
    sec = _section(board)
    pub = {r.label: r for r in sec.rows if r.source == "published"}
    glm = pub["GLM-4-9B-Chat · official leaderboard"]
    assert glm.cells["lb2_plain_overall"].value == 30.2 and glm.cells["lb2_cot_overall"].value == 30.8
    assert glm.cells["lb2_plain_long"].value == 25.0 and glm.cells["lb2_cot_easy"].value == 34.4
    llama = pub["Llama-3.1-8B-Instruct · official leaderboard"]
    assert (llama.cells["lb2_plain_short"].value, llama.cells["lb2_cot_long"].value) == (35.0, 21.3)
    assert all(c.ci is None for r in pub.values() for c in r.cells.values())  # no interval for a published row
    notes = " ".join(sec.notes)
    assert "da2d517805c7929b6d723e69b5f6516d9f0f82e6" in notes and "w/ CoT" in notes and "120000 tokens" in notes
    md = __import__("lr_eval.leaderboards.render", fromlist=["to_markdown"]).to_markdown(board)
    assert "| GLM-4-9B-Chat · official leaderboard | published | 30.2 | 30.8 |" in md
    # a board without LongBench v2 results gets no LongBench v2 section for the published rows alone
    no_v2 = bd.build_board(load_runs([str(Path(__file__).parent / "data" / "stock_lm_eval" / "longbench2")]),
                           iters=50)
    assert "longbench_v2" not in [s.key for s in no_v2.sections]


def test_published_file_option_and_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = json.loads(lbv2.PUBLISHED_FILE.read_text())
    table["rows"] = [{**table["rows"][0], "model": "Mine"}]
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(table))
    out = tmp_path / "out"
    assert lb_main(["build", f"dummy={DUMMY}", "-o", str(out), "--no-plots", "--iters", "50",
                    "--published-longbench-v2", str(mine)]) == 0
    md = (out / "leaderboard.md").read_text()
    assert "| Mine · official leaderboard | published |" in md and "GLM-4-9B-Chat · official" not in md
    del table["rows"][0]["cot"]["hard"]
    mine.write_text(json.dumps(table))
    with pytest.raises(InputError, match=r"mine.json, field 'rows\[0\].cot.hard': missing"):
        lbv2.load_published(mine)
    assert lb_main(["build", f"dummy={DUMMY}", "-o", str(tmp_path / "o2"), "--no-plots",
                    "--published-longbench-v2", str(mine)]) == 2
    assert "rows[0].cot.hard" in capsys.readouterr().err and not (tmp_path / "o2").exists()
    table["rows"][0]["cot"]["hard"] = 130
    mine.write_text(json.dumps(table))
    with pytest.raises(InputError, match="not a percentage"):
        lbv2.load_published(mine)


def test_packaged_published_file_is_valid() -> None:
    table = lbv2.load_published()
    assert [r["model"] for r in table.rows] == ["GLM-4-9B-Chat", "Llama-3.1-8B-Instruct"]
    assert set(table.protocol) == {"plain", "cot"} and len(table.commit) == 40
