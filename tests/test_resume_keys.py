"""Resume reuses only what would be computed the same: every option that changes a result is in the resume
key of `lr-eval score`, `lr-train score` and `lr-train sample`, the judge's part from the one list its cache
key is built from (lr_eval.judge.KEYED_SETTINGS); options that change nothing reuse."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from lr_eval.judge import KEYED_SETTINGS, JudgeClient
from lr_eval.parsing import parse_bracket_score
from lr_eval.reward.cli import register
from lr_eval.testing.canned_judge import CannedJudge
from lr_eval.testing.scripted_server import ScriptedServer
from lr_eval.train import cli as train_cli
from lr_eval.types import ChatRequest

CONTEXT = "The ferry leaves at noon. It returns at six in the evening. Tickets cost four pounds. " * 5


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def lr_eval_score(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lr-eval")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def test_keyed_settings_are_what_the_cache_key_holds() -> None:
    """Each keyed setting changes the cache key of a request with a rating format (and so the list is the
    cache key's own); the other client settings do not."""
    from lr_eval.formats import rating_format

    class Stub:
        model = "judge"

    request = ChatRequest.of([{"role": "user", "content": "rate it"}], template_id="t", template_version="1",
                             answer_format=rating_format("r", 1, 10, parse_bracket_score))
    base = dict(system_prompt=None, default_max_tokens=512, structured=None, score_from="text")
    changed = dict(model="other", system_prompt="be fair", default_max_tokens=64, structured="structured_outputs",
                   score_from="logprobs")
    assert set(changed) == set(KEYED_SETTINGS)

    def key(**kw: Any) -> str:
        model = kw.pop("model", "judge")
        stub = Stub()
        stub.model = model
        client = JudgeClient(stub, cache=None, show_progress=False, **{**base, **kw})  # type: ignore[arg-type]
        return client.complete(dataclasses.replace(request, max_tokens=None)).cache_key(client.model)

    for name, value in changed.items():
        assert key(**{name: value}) != key(), name
    assert key(concurrency=3, max_retries=0) == key()


REWARD_AND_JUDGE = [["--structured", "on"], ["--score-from", "logprobs"], ["--system-prompt", "Be strict."],
                    ["--model", "judge-2"], ["--k", "3"], ["--support-batch", "1"], ["--weights", "1,1,1,0"],
                    ["--language", "en"], ["--max-statements", "1"], ["--no-audit"]]
SAME_RESULT = [["--concurrency", "2"], ["--groups-in-flight", "1"], ["--structured", "auto"], ["--max-retries", "1"]]


@pytest.mark.parametrize("command", ["lr-eval score", "lr-train score"])
def test_score_recomputes_after_each_result_option(command: str, tmp_path: Path) -> None:
    groups = [{"id": "a", "context": CONTEXT, "question": "When does the ferry leave?",
               "responses": ["It leaves at noon.", "It returns at six."]}]
    inp, out = write_lines(tmp_path / "in.jsonl", groups), tmp_path / "out.jsonl"
    run = lr_eval_score if command == "lr-eval score" else train_cli.main
    with ScriptedServer(responder=CannedJudge()) as srv:
        base = ["score", str(inp), "-o", str(out), "--base-url", srv.base_url, "--model", "judge", "--cache", "none",
                "--embedder", "bm25"]
        assert run(base) == 0
        sent = len(srv.bodies)
        assert sent > 0
        for extra in SAME_RESULT:  # the stored result is reused: nothing is sent
            assert run([*base, *extra]) == 0, extra
            assert len(srv.bodies) == sent, extra
        for extra in REWARD_AND_JUDGE:  # each changes a result: the group is scored again
            run([*base, *extra])
            assert len(srv.bodies) > sent, f"{command} {' '.join(extra)}: resumed instead of scoring again"
            sent = len(srv.bodies)
            run([*base, *extra])
            assert len(srv.bodies) == sent, extra  # and the new result is reused in turn
        if command == "lr-eval score":
            structured = [b for b in srv.bodies if "structured_outputs" in b]
            assert structured  # --structured on did send the constraint


def test_sample_recomputes_after_each_result_option(tmp_path: Path) -> None:
    prompts = write_lines(tmp_path / "prompts.jsonl", [{"id": "a", "context": "w1 w2 w3", "question": "w4"}])
    out = tmp_path / "samples.jsonl"

    def policy(body: dict[str, Any]) -> str:
        return f"answer {body['seed']}"

    with ScriptedServer(responder=policy) as srv:
        base = ["sample", str(prompts), "-o", str(out), "--model", "policy", "-n", "2", "--max-tokens", "16",
                "--base-url", srv.base_url, "--cache", "none", "--max-model-len", "0"]
        assert train_cli.main(base) == 0
        sent = len(srv.bodies)
        for extra in (["--concurrency", "1"], ["--prompts-in-flight", "1"], ["--timeout", "30"]):
            assert train_cli.main([*base, *extra]) == 0
            assert len(srv.bodies) == sent, extra
        for extra in (["-n", "3"], ["--temperature", "0.5"], ["--top-p", "0.9"], ["--max-tokens", "8"],
                      ["--seed", "7"], ["--model", "policy-2"]):
            assert train_cli.main([*base, *extra]) == 0, extra
            assert len(srv.bodies) > sent, f"lr-train sample {' '.join(extra)}: reused instead of sampling again"
            sent = len(srv.bodies)


def test_score_recomputes_when_the_default_tokenizer_changes(embedded_model: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The default chunking tokenizer depends on what is installed (the embedded model's, else
    all-MiniLM-L6-v2's) and chunk boundaries change retrieval: the resume key names the one resolved, so a
    file scored with one default is not resumed with the other."""
    from lr_eval.reward import chunking

    groups = [{"id": "a", "context": CONTEXT, "question": "When does the ferry leave?",
               "responses": ["It leaves at noon."]}]
    inp, out = write_lines(tmp_path / "in.jsonl", groups), tmp_path / "out.jsonl"
    with ScriptedServer(responder=CannedJudge()) as srv:
        base = ["score", str(inp), "-o", str(out), "--base-url", srv.base_url, "--model", "judge", "--cache", "none",
                "--embedder", "bm25"]
        assert lr_eval_score(base) == 0
        first = json.loads(out.read_text().splitlines()[-1])
        sent = len(srv.bodies)
        assert lr_eval_score(base) == 0 and len(srv.bodies) == sent  # same default: reused
        monkeypatch.setattr(chunking, "_embedded_tokenizer_folder", lambda: None)
        monkeypatch.setattr(chunking, "_embedded_gguf", lambda: None)
        chunking.load_tokenizer.cache_clear()
        try:
            assert lr_eval_score(base) == 0
            assert len(srv.bodies) > sent, "resumed a file chunked with another tokenizer"
        finally:
            chunking.load_tokenizer.cache_clear()
    last = json.loads(out.read_text().splitlines()[-1])
    assert chunking.EMBEDDED_TOKENIZER in json.dumps(first) and chunking.MINILM_TOKENIZER in json.dumps(last)
