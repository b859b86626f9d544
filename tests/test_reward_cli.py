"""`lr-eval score` and `lr-eval agreement` against the scripted judge: output, bad lines, resume,
dry run, summary table; the agreement arithmetic and bootstrap."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from lr_eval.testing.scripted_server import ScriptedServer
from lr_eval.reward import agreement as agr
from lr_eval.reward.cli import register
from lr_eval.reward.scorer import ResponseScore
from lr_eval.testing.canned_judge import CannedJudge, block, template_of

CONTEXT = ("The Orvane lighthouse was built in 1874. It was electrified in 1932. A storm in 1990 damaged the "
           "lantern room; repairs cost 240,000 pounds. ") * 30
QUESTION = "When was the Orvane lighthouse electrified?"


def run_cli(argv: list[str]) -> int:
    """The subcommands as `lr-eval` would run them (independent of the installed entry points)."""
    parser = argparse.ArgumentParser(prog="lr-eval")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def judge_args(srv: ScriptedServer, tmp: Path) -> list[str]:
    return ["--base-url", srv.base_url, "--model", "judge", "--cache", str(tmp / "c.sqlite"), "--embedder", "bm25"]


def write_lines(path: Path, lines: list[Any]) -> None:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))


def item(i: int, n: int = 2) -> dict[str, Any]:
    return {"id": f"p{i}", "context": CONTEXT, "question": QUESTION,
            "responses": [f"It was electrified in 1932 (variant {i}.{j})." for j in range(n)]}


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_score_writes_results_reports_bad_lines_and_resumes(tmp_path: Path, capsys: Any) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(inp, [item(0), '{"id": "bad", "context": ', item(1),
                      {"id": "p2", "context": CONTEXT, "question": QUESTION, "responses": "not a list"},
                      {"id": "p3", "context": CONTEXT, "question": QUESTION, "responses": ["ok", 7]}, item(4)])
    with ScriptedServer(responder=CannedJudge()) as srv:
        rc = run_cli(["score", str(inp), "-o", str(out), *judge_args(srv, tmp_path)])
        assert rc == 1  # some lines could not be scored
        recs = read(out)
        assert [r.get("id") for r in recs] == ["p0", None, "p1", "p2", "p3", "p4"]  # input order
        assert "line 2" in recs[1]["error"]
        assert "line 4, field 'responses'" in recs[3]["error"]
        assert "field 'responses[1]'" in recs[4]["error"]
        good = recs[0]["results"]
        assert len(good) == 2 and good[0]["helpfulness"] == 7 and good[0]["logicality"] == 8
        assert good[0]["reward"] == pytest.approx((7 + 8 + good[0]["faithfulness"] + 6) / 4)
        assert good[0]["audit"]["faithfulness"]["statements"][0]["verdict"] == "partially supported"
        text = capsys.readouterr().out
        assert "helpfulness" in text and "reward" in text and "p10 / p50 / p90" in text
        assert "input lines not scored" in text
        sent = len(srv.bodies)

        # a rerun skips the finished ids: nothing is sent, even without the judge cache
        rc = run_cli(["score", str(inp), "-o", str(out), *judge_args(srv, tmp_path)[:-4], "--cache", "none",
                      "--embedder", "bm25"])
        assert rc == 1 and len(srv.bodies) == sent
        assert read(out) == recs


def test_score_resumes_after_an_interrupted_run(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(inp, [item(i) for i in range(3)])
    with ScriptedServer(responder=CannedJudge()) as srv:
        assert run_cli(["score", str(inp), "-o", str(out), *judge_args(srv, tmp_path)]) == 0
        first = read(out)
    # as if killed while writing item p1: p0 complete, p1 cut mid-line, p2 missing
    out.write_text(json.dumps(first[0]) + "\n" + json.dumps(first[1])[:50])
    with ScriptedServer(responder=CannedJudge()) as srv:
        assert run_cli(["score", str(inp), "-o", str(out), *judge_args(srv, tmp_path)[:-4], "--cache",
                        str(tmp_path / "fresh.sqlite"), "--embedder", "bm25"]) == 0
        asked = {block(b, "response") for b in srv.bodies if template_of(b)[1] == "helpfulness"}
        assert asked == {f"It was electrified in 1932 (variant {i}.{j})." for i in (1, 2) for j in range(2)}
    again = read(out)
    assert [r["id"] for r in again] == ["p0", "p1", "p2"] and again[0] == first[0]
    assert [r["results"][0]["reward"] for r in again] == [r["results"][0]["reward"] for r in first]


def test_score_dry_run_estimates_and_sends_nothing(tmp_path: Path, capsys: Any) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(inp, [item(0, n=3), item(1, n=3)])
    with ScriptedServer(responder=CannedJudge()) as srv:
        assert run_cli(["score", str(inp), "-o", str(out), *judge_args(srv, tmp_path), "--dry-run",
                        "--price-input", "2.5", "--price-output", "10"]) == 0
        assert srv.bodies == [] and not out.exists()
    text = capsys.readouterr().out
    assert "dry run" in text and "judge calls" in text and "$" in text


def test_score_options_reach_the_method(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(inp, [item(0, n=1)])
    with ScriptedServer(responder=CannedJudge()) as srv:
        assert run_cli(["score", str(inp), "-o", str(out), *judge_args(srv, tmp_path), "--weights", "1,0,1,0",
                        "--k", "3", "--language", "zh", "--no-audit"]) == 0
        stages = {template_of(b)[1] for b in srv.bodies}
        assert stages == {"helpfulness", "statements", "support"}
        assert all(template_of(b)[2] == "zh" for b in srv.bodies)
        support = next(b for b in srv.bodies if template_of(b)[1] == "support")
        assert support["messages"][1]["content"].count("<passage id=") == 3
    [rec] = read(out)
    assert rec["results"][0]["averaged"] == ["helpfulness", "faithfulness"] and "audit" not in rec["results"][0]
    with pytest.raises(ValueError, match="weights"):
        run_cli(["score", str(inp), "-o", str(out), "--model", "m", "--weights", "1,2"])


# -- agreement ----------------------------------------------------------------------------------------------

def score(**dims: float | None) -> ResponseScore:
    from lr_eval.reward.scorer import combine

    s = ResponseScore(**dims)  # type: ignore[arg-type]
    s.reward, s.averaged = combine(s.scores())
    return s


def test_agreement_arithmetic() -> None:
    assert agr.outcome(7, 5, 0) == 1 and agr.outcome(7, 5, 1) == 0 and agr.outcome(6, 6, 0) == 0.5
    assert agr.outcome(None, 5, 0) is None
    a = score(helpfulness=9, logicality=5, faithfulness=10, completeness=2)
    b = score(helpfulness=3, logicality=5, faithfulness=None, completeness=8)
    rows = {r.name: r for r in agr.agreement_table([(a, b)], [0], n_boot=50)}
    assert rows["reward"].accuracy == 1.0  # 6.5 vs 5.33
    assert rows["helpfulness only"].accuracy == 1.0 and rows["completeness only"].accuracy == 0.0
    assert rows["logicality only"].accuracy == 0.5  # equal scores: half right
    assert rows["faithfulness only"].accuracy is None and rows["faithfulness only"].excluded == 1
    assert rows["without helpfulness"].accuracy == 0.0  # (5+10+2)/3 = 5.67 < (5+8)/2 = 6.5: b preferred
    assert rows["reward"].paper == 0.662 and rows["without completeness"].paper == 0.578
    assert len(rows) == 9


def test_bootstrap_ci_is_deterministic_and_covers_the_mean() -> None:
    outs = [1.0] * 66 + [0.0] * 34
    lo, hi = agr.bootstrap_ci(outs, n_boot=2000, seed=1)
    assert lo < 0.66 < hi and 0.5 < lo and hi < 0.8
    assert agr.bootstrap_ci(outs, n_boot=2000, seed=1) == (lo, hi)


def test_pair_formats_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    write_lines(path, [
        {"context": "c", "question": "q", "responses": ["a", "b"], "human": "b"},
        {"context": "c", "question": "q", "response_a": "a", "response_b": "b", "human": 0},
        {"context": "c", "question": "q", "chosen": "a", "rejected": "b"},
        {"context": "c", "question": "q", "responses": ["a", "b"], "human": "tie"},
        {"context": "c", "question": "q", "responses": ["a"], "human": 0},
        {"context": "c", "question": "q", "responses": ["a", "b"], "human": 3},
        {"question": "q", "responses": ["a", "b"], "human": 0},
    ])
    pairs, errors, ties = agr.read_pairs(path)
    assert [p.human for p in pairs] == [1, 0, 0] and ties == 1
    assert [e.field for e in errors] == ["responses", "human", "context"] and errors[0].line == 5


def test_agreement_command(tmp_path: Path, capsys: Any) -> None:
    # The canned judge likes responses that mention 1932; the human agrees on 3 of 4 pairs.
    def helpful(body: dict[str, Any]) -> str:
        return "[[9]]" if "1932" in block(body, "response") else "[[2]]"

    canned = CannedJudge(answers={"helpfulness": helpful, "completeness": helpful})
    good, bad = "It was electrified in 1932.", "It was painted red in 1950."
    pairs = [{"id": f"x{i}", "context": CONTEXT, "question": QUESTION, "responses": [good + f" ({i})", bad + f" ({i})"],
              "human": h} for i, h in enumerate([0, 0, 0, 1])]
    pairs.append({"id": "t", "context": CONTEXT, "question": QUESTION, "responses": [good, bad], "human": "tie"})
    path, out = tmp_path / "pairs.jsonl", tmp_path / "agreement.jsonl"
    write_lines(path, pairs)
    with ScriptedServer(responder=canned) as srv:
        assert run_cli(["agreement", str(path), "-o", str(out), "--bootstrap", "200",
                        *judge_args(srv, tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "judge-human agreement: 4 pairs (1 human ties" in text
    summary = read(out)[-1]
    rows = {r["name"]: r for r in summary["rows"]}
    assert rows["reward"]["accuracy"] == 0.75 and rows["helpfulness only"]["accuracy"] == 0.75
    assert rows["logicality only"]["accuracy"] == 0.5  # the canned logicality is constant
    assert rows["reward"]["ci95"][0] <= 0.75 <= rows["reward"]["ci95"][1]


def test_demo_step_prints_the_four_scores(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from lr_eval.backends import OpenAIBackend
    from lr_eval.demo import DemoContext, load_sample
    from lr_eval.judge import JudgeClient
    from lr_eval.progress import console
    from lr_eval.reward import demo
    from lr_eval.reward.scorer import RewardConfig

    monkeypatch.setattr(demo, "demo_config", lambda judge: RewardConfig(embedder="bm25"))
    with ScriptedServer(responder=CannedJudge()) as srv, console.capture() as cap:
        client = JudgeClient(OpenAIBackend("judge", srv.base_url, "k"), show_progress=False)
        ctx = DemoContext(sample=load_sample(), answer="The connection at Cressing was open for 47 days in 2023.",
                          judge=client)
        demo.step(ctx)
    text = cap.get()
    for word in ("helpfulness", "logicality", "faithfulness", "completeness", "reward"):
        assert word in text
    assert ctx.results["longreward"]["helpfulness"] == 7
