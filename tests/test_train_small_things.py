"""Small things a new `lr-train` user hit (issues 22 §5 and 23 §5): NaN seeds refused with file, line and field;
a missing model folder in one line; the first missing input named first; defaults shown in --help."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lr_eval.train import cli
from lr_eval.train.pairs import responses_sha


def _files(tmp_path: Path, seeds_text: str) -> tuple[Path, Path]:
    responses = ["w1 one", "w2 two"]
    sample = ('{"id": "p", "context": "c", "question": "q", "responses": ["w1 one", "w2 two"], '
              f'"seeds": {seeds_text}}}')
    score = {"id": "p", "responses_sha": responses_sha(responses),
             "results": [{"helpfulness": h, "logicality": h, "faithfulness": h, "completeness": h, "reward": h,
                          "averaged": ["helpfulness", "logicality", "faithfulness", "completeness"]} for h in (2, 8)]}
    sp, scp = tmp_path / "samples.jsonl", tmp_path / "scores.jsonl"
    sp.write_text('{"id": "ok", "error": "sampling failed"}\n' + sample + "\n")
    scp.write_text(json.dumps(score) + "\n")
    return sp, scp


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1.5"])
def test_pairs_refuses_non_integer_seeds_with_file_line_field(bad: str, tmp_path: Path, capsys: Any) -> None:
    sp, scp = _files(tmp_path, f"[0, {bad}]")
    out = tmp_path / "pairs.jsonl"
    assert cli.main(["pairs", str(sp), str(scp), "-o", str(out), "--min-scored", "2"]) == 2
    err = capsys.readouterr().err
    assert str(sp) in err and "line 2" in err and "seeds[1]" in err and "Traceback" not in err
    assert not out.exists()
    sp, scp = _files(tmp_path, "[0, 1]")  # the same file with integer seeds is fine, and its output is JSON
    assert cli.main(["pairs", str(sp), str(scp), "-o", str(out), "--min-scored", "2"]) == 0
    assert json.loads(out.read_text())["provenance"]["chosen_seed"] == 1


def test_pairs_names_the_first_missing_input(tmp_path: Path, capsys: Any) -> None:
    first, second = tmp_path / "missing1.jsonl", tmp_path / "missing2.jsonl"
    assert cli.main(["pairs", str(first), str(second), "-o", str(tmp_path / "p.jsonl")]) != 0
    err = capsys.readouterr().err
    assert str(first) in err and str(second) not in err


def test_dpo_missing_model_folder_is_one_clear_line(tmp_path: Path, capsys: Any) -> None:
    pytest.importorskip("torch")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
    for model in (str(tmp_path / "no" / "such" / "model"), "./missing-sft"):
        rc = cli.main(["dpo", str(pairs), "--model", model, "-o", str(tmp_path / "run")])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1, err
        assert model in err and "no such model folder" in err and "Traceback" not in err


def test_help_shows_the_defaults(capsys: Any) -> None:
    from lr_eval.cli import main as lr_eval_main

    def helptext(argv: list[str], main: Any) -> str:
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        return " ".join(capsys.readouterr().out.split())

    score = helptext(["score"], lr_eval_main)
    for shown in ("tokens per retrieval chunk (the paper's) (default 128)", "(default 4096)",
                  "judge requests in flight (default 16)", "per-request timeout in seconds (default 120)",
                  "retries of a failed request (default 6)", "(default 16)"):
        assert shown in score, shown
    assert "judge requests in flight (default 16)" in helptext(["score"], cli.main)
    sample = helptext(["sample"], cli.main)
    for shown in ("requests in flight (default 16)", "per request, in seconds (default 600)",
                  "retries of a failed request (default 6)", "samples per prompt (default 10)"):
        assert shown in sample, shown


@pytest.mark.parametrize(("table", "match"), [
    ({"sample": {"input": "p.jsonl", "model": "m", "n": "four"}}, r"\[sample\]: n expected an integer, got 'four'"),
    ({"score": {"concurrency": "x"}}, r"\[score\]: concurrency expected an integer"),
    ({"score": {"k": "x"}}, r"\[score\]: field 'k': expected an integer"),
    ({"pairs": {"ties": "random"}}, r"\[pairs\]: ties expected one of first, shortest, drop"),
    ({"score": {"dry_run": "yes"}}, r"\[score\]: dry_run must be true or false"),
    ({"dpo": {"model": "m", "max_steps": 2.5}}, r"\[dpo\]: max_steps expected an integer"),
])
def test_run_config_values_are_typed_by_the_settings_fields(table: dict[str, Any], match: str) -> None:
    from lr_eval.train.pipeline import plan

    base = {"run": {"workdir": "w"}, "sample": {"input": "p.jsonl", "model": "m"}, "dpo": {"model": "m"}}
    with pytest.raises(ValueError, match=match):
        plan({**base, **table})


def test_run_config_aliases_and_plan() -> None:
    from lr_eval.train.pipeline import plan

    steps = dict(plan({"run": {"workdir": "w"}, "sample": {"input": "p.jsonl", "model": "m"},
                       "dpo": {"model": "m", "lr": 1e-5, "epochs": 2, "max_length": 0}}))
    assert steps["dpo"][3:] == ["--model", "m", "--learning-rate", "1e-05", "--num-epochs", "2", "--max-length", "0"]
