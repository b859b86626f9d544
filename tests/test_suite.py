"""The benchmark-suite table (lr_eval.suite): its invariants, task-name classification, and the board's
sections driven by it (a family the board has no layout for gets one column per dataset)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lr_eval import suite
from lr_eval.leaderboards import board as bd
from lr_eval.leaderboards.reader import Run, TaskResult
from lr_eval.tasks import longbench as lb


def test_longbench_tables_come_from_the_suite() -> None:
    fam = suite.FAMILY["longbench"]
    assert len(fam.datasets) == 21 and set(fam.names) == set(lb.DATASET_METRIC)
    assert lb.CATEGORIES == bd.CATEGORIES == fam.categories()
    assert list(fam.categories()) == list(suite.CATEGORY_LABELS)
    e = suite.FAMILY["longbench_e"]
    assert len(e.datasets) == 13 and e.length_buckets == suite.LENGTH_BUCKETS == bd.LENGTH_BUCKETS
    assert lb.LONGBENCH_E_DATASETS == tuple(f"{n}_e" for n in e.names)
    assert [n for n in fam.names if n in e.names] == list(e.names)  # a subset in the same order
    assert suite.FAMILY["longbench_judged"].categories() == {c: fam.categories()[c] for c in
                                                             ("single_doc_qa", "multi_doc_qa", "summarization")}
    assert {d.name for d in fam.datasets if d.language == "zh"} == {
        "multifieldqa_zh", "dureader", "vcsum", "lsht", "passage_retrieval_zh"}


@pytest.mark.parametrize(("length", "bucket"), [(0, "0-4k"), (3999, "0-4k"), (4000, "4-8k"), (7999.5, "4-8k"),
                                                 (8000, "8k+"), (10**7, "8k+")])
def test_length_bucket_bounds(length: float, bucket: str) -> None:
    assert suite.length_bucket(length) == bucket == lb.length_bucket(length) == bd.length_bucket(length)


def test_every_task_of_every_family_classifies_back() -> None:
    for fam in suite.FAMILIES:
        for ds in fam.datasets or (None,):
            name = fam.task(ds.name if ds else None)
            assert suite.classify(name) == (fam, ds)
            assert suite.classify(name.upper().replace("_", "-")) == (fam, ds)
            bare = name.removeprefix("longreward_")  # lm-eval's own LongBench names stay lm-eval's
            assert suite.classify(bare) == (None if bare in suite.LM_EVAL_OWN else (fam, ds))
            assert bd.classify(name) == (fam.kind, ds.name if ds else None)
    assert suite.classify("alpaca_eval") == (suite.FAMILY["alpacaeval2"], None)
    assert suite.classify("longreward_longbench_single_doc_qa") is None  # a group, not a task
    with pytest.raises(ValueError, match="not a dataset"):
        suite.FAMILY["longbench"].task("nope")


def test_lm_eval_own_task_names_are_never_ours() -> None:
    """Every task, group and tag name lm-eval 0.4.13 ships (its task folder's YAML files): none is classified as
    ours, and LM_EVAL_OWN lists exactly those that the optional prefix would have made ours."""
    import re

    import lm_eval

    names: set[str] = set()
    for path in (Path(lm_eval.__file__).parent / "tasks").rglob("*.yaml"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if m := re.match(r"^(?:task|group|tag):\s*['\"]?([\w.\-]+)['\"]?\s*$", line):
                names.add(m[1])
    assert len(names) > 1000
    assert [n for n in sorted(names) if suite.classify(n) is not None] == []
    assert set(suite.LM_EVAL_OWN) <= names
    assert {n for n in names if suite.task_index(suite.FAMILIES).get("longreward_" + n.lower().replace("-", "_"))} \
        == set(suite.LM_EVAL_OWN)
    fam = suite.FAMILY["longbench"]
    assert suite.classify("longreward_longbench_qasper") == (fam, next(d for d in fam.datasets if d.name == "qasper"))


def test_scales_and_decimals() -> None:
    assert suite.FAMILY["longqa"].scale == "0-10" and suite.FAMILY["longqa"].decimals == 2
    assert suite.FAMILY["longbench"].decimals == 1
    with pytest.raises(ValueError, match="unknown scale"):
        suite.Family("x", "X", "x", "score", "0-5")  # type: ignore[arg-type]
    twice = (suite.FAMILY["longqa"], dataclasses.replace(suite.FAMILY["longqa"], key="other", kind="other"))
    with pytest.raises(ValueError, match="two families"):
        suite.task_index(twice)


def test_a_new_family_gets_its_own_board_section(monkeypatch: pytest.MonkeyPatch) -> None:
    new = suite.Family("infinitebench_demo", "InfiniteBench demo", "longreward_ib_demo", "sub_em", "0-100",
                       (suite.Dataset("en_qa"), suite.Dataset("zh_qa", language="zh")), section="infinitebench")
    families = (*suite.FAMILIES, new)
    monkeypatch.setattr(suite, "FAMILIES", families)
    monkeypatch.setattr(suite, "_TASKS", suite.task_index(families))
    monkeypatch.setattr(bd, "FAMILIES", families)
    assert bd.classify("longreward_ib_demo_zh_qa") == ("infinitebench_demo", "zh_qa")
    sec = bd.standard_sections()[-1]
    assert sec.key == "infinitebench" and [c.key for c in sec.columns] == [
        "infinitebench_demo_en_qa", "infinitebench_demo_zh_qa", "infinitebench_avg"]
    tasks = {f"longreward_ib_demo_{d}": TaskResult(f"longreward_ib_demo_{d}", {"sub_em": v}, {"sub_em": None})
             for d, v in (("en_qa", 40.0), ("zh_qa", 60.0))}
    run = Run(Path("m"), "m", "m", {}, tasks, {}, {}, {}, [], {})
    board = bd.build_board([run], with_published=False, iters=50)
    assert [s.key for s in board.sections] == ["infinitebench"]
    cells = board.sections[0].rows[0].cells
    assert cells["infinitebench_demo_en_qa"].value == 40.0 and cells["infinitebench_avg"].value == 50.0
    assert cells["infinitebench_avg"].coverage is None  # both columns present

    other = suite.Family("ib_other", "Other demo", "longreward_ib_other", "score", "1-10", section="infinitebench")
    both = (*families, other)
    monkeypatch.setattr(suite, "FAMILIES", both)
    monkeypatch.setattr(suite, "_TASKS", suite.task_index(both))
    monkeypatch.setattr(bd, "FAMILIES", both)
    sec = bd.standard_sections()[-1]  # two families share a section; scales differ: no mean
    assert [c.key for c in sec.columns] == ["infinitebench_demo_en_qa", "infinitebench_demo_zh_qa", "ib_other"]
    assert sec.columns[2].decimals == 2 and sec.title == "InfiniteBench demo / Other demo"
