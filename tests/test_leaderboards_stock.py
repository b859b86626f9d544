"""lr-leaderboard on lm-eval 0.4.13's own long-context families: RULER, BABILong, LongBench v2, InfiniteBench.

Fixtures: tests/data/stock_lm_eval/, real lm-eval 0.4.13 runs of those tasks on the embedded SmolLM2-135M-Instruct
(see generate.py there: RULER's data synthesised by lm-eval; the other three with a few local documents in their
datasets' schema in place of the hub download). Expected values are recomputed here from the raw files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lr_eval.leaderboards import board as bd
from lr_eval.leaderboards import stock
from lr_eval.leaderboards.cli import main as lb_main
from lr_eval.leaderboards.reader import load_runs
from lr_eval.leaderboards.render import DAGGER, to_json, to_markdown

DATA = Path(__file__).parent / "data" / "stock_lm_eval"
ITERS = 300
pytestmark = pytest.mark.skipif(not (DATA / "ruler").exists(), reason="stock lm-eval fixtures not generated")


def _model_dir(family: str) -> Path:
    (d,) = [p for p in (DATA / family).iterdir() if p.is_dir()]
    return d


def _results(family: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(_model_dir(family).glob("results_*.json"))]


def _sample_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def board() -> bd.Board:
    runs = load_runs([f"{f}={_model_dir(f)}" for f in ("ruler", "babilong", "longbench2", "infinitebench")])
    return bd.build_board(runs, with_published=False, iters=ITERS)


def _section(board: bd.Board, key: str) -> bd.Section:
    return next(s for s in board.sections if s.key == key)


def _row(board: bd.Board, key: str, label: str) -> bd.Row:
    return next(r for r in _section(board, key).rows if r.label == label)


def test_task_names_are_lm_evals_own() -> None:
    assert bd.classify("niah_single_1") == ("lm_eval_ruler", "niah_single_1")
    assert bd.classify("ruler_qa_hotpot") == ("lm_eval_ruler", "ruler_qa_hotpot")
    assert bd.classify("babilong_qa20") == ("lm_eval_babilong", "babilong_qa20")
    assert bd.classify("longbench2_code")[0] == "lm_eval_longbench2"  # lm-eval's protocol, never ours
    assert bd.classify("infinitebench_longbook_qa_en")[0] == "lm_eval_infinitebench"
    assert bd.classify("longreward_infinitebench_enqa")[0] == "infinitebench_enqa"  # ours stays ours
    assert bd.classify("niah_single_9") == ("other", None)
    assert len(stock.STOCK_BY_KEY["ruler"].tasks) == 13 and len(stock.STOCK_BY_KEY["babilong"].tasks) == 20
    assert len(stock.STOCK_BY_KEY["longbench2"].tasks) == 20 and len(stock.STOCK_BY_KEY["infinitebench"].tasks) == 11


def test_the_recorded_files_are_lm_eval_0_4_13s() -> None:
    for fam in ("ruler", "babilong", "longbench2", "infinitebench"):
        for data in _results(fam):
            assert data["lm_eval_version"] == "0.4.13"
            groups = {*data.get("groups", {}), *data.get("group_subtasks", {})}  # infinitebench: no aggregate
            assert all(stock.family_of(t) for t in data["results"] if t not in groups)


def _ruler_by_length() -> dict[str, dict[str, float]]:
    """Length -> task -> score from the raw results files (a -1 is lm-eval's "not run at this length")."""
    out: dict[str, dict[str, float]] = {}
    for data in _results("ruler"):
        for task, entry in data["results"].items():
            for key, v in entry.items():
                metric = key.split(",")[0]
                if metric.isdigit() and v != -1:
                    out.setdefault(metric, {})[task] = v
    return out


def test_ruler_scores_by_length_from_both_calls(board: bd.Board) -> None:
    sec = _section(board, "lm_eval_ruler")
    assert [c.label for c in sec.columns] == ["4k", "8k", "Avg"]
    raw = _ruler_by_length()
    assert set(raw) == {"4096", "8192"} and all(len(t) == 2 for t in raw.values())
    items = {"4096": 4, "8192": 2}  # 2 tasks x --limit 2 at 4k, x --limit 1 at 8k
    assert any(e.get("4096,none") == -1 for d in _results("ruler") for e in d["results"].values())  # 8k call
    row = _row(board, "lm_eval_ruler", "ruler")
    for length in ("4096", "8192"):
        cell = row.cells[f"ruler_{length}"]
        assert cell.value == pytest.approx(sum(raw[length].values()) / 2)
        assert cell.coverage == "2/13 tasks" and cell.n == items[length]
        assert cell.ci_method == "bootstrap" and cell.ci[0] <= cell.value <= cell.ci[1]
    avg = row.cells["ruler_avg"]
    assert avg.value == pytest.approx((row.cells["ruler_4096"].value + row.cells["ruler_8192"].value) / 2)
    assert row.series == {t: {ln: raw[ln][t] for ln in ("4096", "8192")} for t in sorted(raw["4096"])}
    md = to_markdown(board)
    assert f"{DAGGER}" in next(line for line in md.splitlines() if line.startswith("| ruler | measured |"))
    assert any("partial RULER (lm-eval) at 8k: 2 of 13 tasks (niah_single_1, niah_multikey_2)" in n
               for n in sec.notes)


def test_ruler_sample_intervals_skip_other_lengths(board: bd.Board) -> None:
    """Each sample line carries a -1 for the lengths it was not generated at; those are no items."""
    per_length = {}
    for p in _model_dir("ruler").glob("samples_*.jsonl"):
        for row in _sample_rows(p):
            for k in ("4096", "8192"):
                if row.get(k) not in (None, -1):
                    per_length[k] = per_length.get(k, 0) + 1
    assert per_length == {"4096": 4, "8192": 2}


def test_babilong_lengths_from_metadata(board: bd.Board) -> None:
    """qa1-qa10 load the max_seq_lengths config; lm-eval 0.4.13's qa11-qa20 always load "0k" (dataset_name)."""
    sec = _section(board, "lm_eval_babilong")
    assert [c.label for c in sec.columns] == ["0k", "1k", "Avg"]
    row = _row(board, "lm_eval_babilong", "babilong")
    by_length = {d["configs"]["babilong_qa1"]["metadata"]["max_seq_lengths"]: d for d in _results("babilong")}
    assert set(by_length) == {"0k", "1k"}
    assert by_length["1k"]["configs"]["babilong_qa11"]["dataset_name"] == "0k"
    zero = row.cells["babilong_0k"]  # every task at 0k: lm-eval's size-weighted group score of the 0k call
    assert zero.value == pytest.approx(by_length["0k"]["groups"]["babilong"]["acc,none"])
    assert zero.coverage == "20/20 tasks" and zero.n == 40
    one = row.cells["babilong_1k"]  # only qa1-qa10 ran at 1k: pooled over their samples, marked partial
    rows = [r for i in range(1, 11) for r in _sample_rows(next(_model_dir("babilong").glob(
        f"samples_babilong_qa{i}_{_date(by_length['1k'])}.jsonl")))]
    assert one.value == pytest.approx(sum(r["acc"] for r in rows) / len(rows))
    assert one.coverage == "10/20 tasks" and one.n == 20
    assert any("partial BABILong (lm-eval) at 1k: 10 of 20 tasks" in n and "not run at 1k: babilong_qa11" in n
               for n in sec.notes)
    assert set(row.series or {}) == set(stock.STOCK_BY_KEY["babilong"].tasks)
    assert set(row.series["babilong_qa1"]) == {"0k", "1k"} and set(row.series["babilong_qa20"]) == {"0k"}


def _date(data: dict) -> str:
    (name,) = [p.name for p in _model_dir("babilong").glob("results_*.json")
               if json.loads(p.read_text())["date"] == data["date"]]
    return name.removeprefix("results_").removesuffix(".json")


def test_longbench2_overall_and_breakdowns(board: bd.Board) -> None:
    sec = _section(board, "lm_eval_longbench2")
    assert "log-likelihood" in sec.title and "not the official generative protocol" in sec.description
    assert [c.label for c in sec.columns] == ["Overall", "Easy", "Hard", "Short", "Medium", "Long"]
    (data,) = _results("longbench2")
    row = _row(board, "lm_eval_longbench2", "longbench2")
    assert row.cells["longbench2_overall"].value == pytest.approx(data["results"]["longbench2"]["acc,none"])
    rows = [r for p in sorted(_model_dir("longbench2").glob("samples_*.jsonl")) for r in _sample_rows(p)]
    for field, val in (("difficulty", "easy"), ("difficulty", "hard"), ("length", "short")):
        sel = [r["acc"] for r in rows if r["doc"][field] == val]
        cell = row.cells[f"longbench2_{val}"]
        assert cell.value == pytest.approx(sum(sel) / len(sel)) and cell.n == len(sel)


def test_infinitebench_per_task_and_avg(board: bd.Board) -> None:
    (data,) = _results("infinitebench")
    row = _row(board, "lm_eval_infinitebench", "infinitebench")
    tasks = stock.STOCK_BY_KEY["infinitebench"].tasks
    for t in tasks:
        assert row.cells[f"infinitebench_{t}"].value == pytest.approx(data["results"][t]["score,none"])
    assert row.cells["infinitebench_avg"].value == pytest.approx(
        sum(data["results"][t]["score,none"] for t in tasks) / len(tasks))


def test_stock_tasks_are_not_other_tasks(board: bd.Board) -> None:
    assert not any(s.key == "other" for s in board.sections)
    sections = {s["key"] for s in to_json(board)["sections"]}
    assert {"lm_eval_ruler", "lm_eval_babilong", "lm_eval_longbench2", "lm_eval_infinitebench"} <= sections


def test_length_plots_per_model(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    assert lb_main(["build", f"ruler={_model_dir('ruler')}", f"babilong={_model_dir('babilong')}", "-o", str(out),
                    "--no-published", "--formats", "svg", "--iters", "100"]) == 0
    for fam in ("ruler", "babilong"):
        svg = (out / "plots" / f"{fam}_by_length.svg").read_text(encoding="utf-8")
        assert "max_seq_lengths" in svg and "niah_single_1" in svg if fam == "ruler" else "babilong_qa1" in svg
    html = (out / "leaderboard.html").read_text(encoding="utf-8")
    assert "RULER (lm-eval): score by length, per model" in html


def _copy(tmp_path: Path, family: str) -> Path:
    dst = tmp_path / family
    shutil.copytree(_model_dir(family), dst)
    return dst


def _edit_results(folder: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    path = sorted(folder.glob("results_*.json"))[0]
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


def test_unknown_task_is_listed_not_guessed(tmp_path: Path) -> None:
    folder = _copy(tmp_path, "ruler")

    def rename(data: dict) -> None:
        for key in ("results", "configs", "n-samples", "versions", "higher_is_better", "n-shot"):
            if "niah_multikey_2" in data.get(key, {}):
                data[key]["niah_multikey_9"] = data[key].pop("niah_multikey_2")
    for p in sorted(folder.glob("results_*.json")):
        data = json.loads(p.read_text())
        rename(data)
        p.write_text(json.dumps(data))
    board = bd.build_board(load_runs([f"r={folder}"]), with_published=False, iters=100)
    sec = _section(board, "lm_eval_ruler")
    assert any("not read (not a RULER (lm-eval) task of lm-eval 0.4.13" in n and "niah_multikey_9" in n
               for n in sec.notes)
    assert sec.rows[0].cells["ruler_4096"].coverage == "1/13 tasks"
    other = _section(board, "other")
    assert [c.key for c in other.columns] == ["other_niah_multikey_9"]


@pytest.mark.parametrize(("drop", "field"), [
    (lambda d: d["n-samples"].pop("niah_single_1"), "n-samples.niah_single_1"),
    (lambda d: d["configs"].pop("niah_single_1"), "configs.niah_single_1"),
    (lambda d: d.pop("versions"), "versions"),
    (lambda d: d["results"]["niah_single_1"].clear(), "results.niah_single_1"),
])
def test_missing_field_names_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            drop, field: str) -> None:  # type: ignore[no-untyped-def]
    folder = _copy(tmp_path, "ruler")
    path = _edit_results(folder, drop)
    assert lb_main(["build", str(folder), "-o", str(tmp_path / "out"), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert path.name in err and f"field '{field}'" in err and "Traceback" not in err


def test_missing_sample_field_names_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _copy(tmp_path, "babilong")
    path = sorted(folder.glob("samples_babilong_qa3_*.jsonl"))[0]
    lines = path.read_text().splitlines()
    row = json.loads(lines[1])
    del row["doc"]
    lines[1] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    assert lb_main(["build", str(folder), "-o", str(tmp_path / "out"), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert path.name in err and "line 2, field 'doc'" in err
