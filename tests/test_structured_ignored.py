"""A constraint that did not take effect is said, not assumed (issue 19 §4): a server that ignores the grammar's
request field (vLLM >= 0.12 drops `guided_regex` and answers 200 with free text) is caught by checking each
constrained answer against its format, said once per field, and counted (answers_outside_format)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lr_eval.config import JudgeConfig, build_client
from lr_eval.formats import rating_format
from lr_eval.parsing import parse_bracket_score
from lr_eval.reward.cli import register
from lr_eval.testing.canned_judge import CannedJudge
from lr_eval.testing.scripted_server import ScriptedServer
from lr_eval.types import ChatRequest

FMT = rating_format("test.rating", 1, 10, parse_bracket_score)


def current_vllm(answer: Any = None) -> Any:
    """A responder that behaves as vLLM >= 0.12: it enforces `structured_outputs`, and answers any other
    grammar field (it no longer knows `guided_regex`) as if there were none: free text after the verdict."""
    def respond(body: dict[str, Any]) -> str:
        text = answer(body) if answer else "Fine.\n[[7]]"
        return text if "structured_outputs" in body else text + "\nThat is my rating, all things considered."

    return respond


def ask(srv: ScriptedServer, form: str, n: int = 3) -> tuple[Any, list[Any]]:
    client = build_client(JudgeConfig(model="j", base_url=srv.base_url, cache="none", structured="on",
                                      structured_form=form), show_progress=False)
    requests = [ChatRequest.of([{"role": "user", "content": f"rate {i}"}], max_tokens=64, answer_format=FMT)
                for i in range(n)]
    return client, client.run(requests)


def test_an_ignored_field_is_said_once_and_counted(capsys: Any) -> None:
    with ScriptedServer(responder=current_vllm()) as srv:
        client, results = ask(srv, "guided_regex")
        assert all(b["guided_regex"] == FMT.regex(64) for b in srv.bodies)  # the old field was sent
        assert all("That is my rating" in r.content for r in results)  # and ignored: free text came back
        assert client.meter.off_format == 3 and client.summary()["answers_outside_format"] == 3
        err = capsys.readouterr().err
        assert err.count("ignored the `guided_regex` request field") == 1  # said once, not per answer
        assert "--structured-form structured_outputs" in " ".join(err.split())

        # the current field (the default form) takes effect: nothing outside the format, nothing said
        client, results = ask(srv, "structured_outputs")
        assert srv.bodies[-1]["structured_outputs"] == {"regex": FMT.regex(64)}
        assert all(r.content == "Fine.\n[[7]]" for r in results)
        assert client.meter.off_format == 0 and "answers_outside_format" not in client.summary()
        assert "ignored" not in capsys.readouterr().err


def test_lr_eval_score_reports_answers_outside_their_format(tmp_path: Path, capsys: Any) -> None:
    canned = CannedJudge()
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    context = "The Orvane lighthouse was built in 1874. It was electrified in 1932. " * 20
    inp.write_text(json.dumps({"id": "a", "context": context, "question": "When was it electrified?",
                               "responses": ["It was electrified in 1932."]}) + "\n")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    with ScriptedServer(responder=current_vllm(canned)) as srv:
        argv = ["score", str(inp), "-o", str(out), "--base-url", srv.base_url, "--model", "judge", "--cache", "none",
                "--embedder", "bm25", "--structured", "on"]
        args = parser.parse_args([*argv, "--structured-form", "guided_regex"])
        args.func(args)
        sent = len(srv.bodies)
        printed = " ".join(capsys.readouterr().err.split())
        assert "answers_outside_format" in printed and "ignored the `guided_regex` request field" in printed
        args = parser.parse_args([*argv, "-o", str(tmp_path / "out2.jsonl")])
        args.func(args)
        assert len(srv.bodies) > sent and "answers_outside_format" not in capsys.readouterr().err
