"""The bad-input corpus: every command that reads files × ordinary bad files (missing, a directory, empty,
BOM, CRLF, a non-UTF-8 byte, broken JSON, duplicate ids, structurally wrong records, unwritable output and
cache paths, output = input, stale resume state) → a clear one-line error naming file, line and field (or
the command's documented policy), a non-zero exit where the input was bad, no traceback, nothing paid
before validation (the scripted server counts requests) and the good lines' results kept.

Commands run in-process through their ``main(argv)``; a few through a subprocess to prove stderr holds no
traceback. ``python tests/test_bad_input.py`` prints the outcome counts (used for the before/after figures).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lr_eval.testing.canned_judge import CannedJudge
from lr_eval.testing.scripted_server import ScriptedServer

CONTEXT = "The Orvane lighthouse was built in 1874. It was electrified in 1932. Repairs cost 240,000 pounds. " * 3
QUESTION = "When was the Orvane lighthouse electrified?"
DATE = "2025-01-01T00-00-00.000000"


def minilm() -> str:
    from lr_eval.reward.chunking import minilm_path

    return str(minilm_path())


def lr_eval(argv: list[str]) -> int:
    from lr_eval.cli import main

    return main(argv)


def lr_train(argv: list[str]) -> int:
    from lr_eval.train.cli import main

    return main(argv)


def lr_leaderboard(argv: list[str]) -> int:
    from lr_eval.leaderboards.cli import main

    return main(argv)


# ------------------------------------------------------------------------------------------ files


def jsonl(recs: list[Any]) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in recs).encode()


def with_bad_byte(recs: list[Any], line: int) -> bytes:
    """The records as JSONL, with a Latin-1 byte inside the string values of line `line` (1-based)."""
    lines = jsonl(recs).split(b"\n")
    lines[line - 1] = lines[line - 1].replace(b'": "', b'": "\xe9', 1)
    return b"\n".join(lines)


def item(i: int, n: int = 2) -> dict[str, Any]:
    return {"id": f"p{i}", "context": CONTEXT, "question": QUESTION,
            "responses": [f"It was electrified in 1932 (variant {i}.{j})." for j in range(n)]}


def request(i: int) -> dict[str, Any]:
    return {"id": f"r{i}", "messages": [{"role": "user", "content": f"hello {i}"}]}


def pair(i: int, human: Any = 0) -> dict[str, Any]:
    return {"id": f"q{i}", "context": CONTEXT, "question": QUESTION,
            "responses": [f"In 1932 ({i}).", f"In 1874 ({i})."], "human": human}


def prompt(i: int) -> dict[str, Any]:
    return {"id": f"s{i}", "context": CONTEXT, "question": QUESTION}


def sample(i: int, n: int = 3) -> dict[str, Any]:
    return {**prompt(i), "responses": [f"It was electrified in 1932, sample {j} of {i}." for j in range(n)],
            "seeds": list(range(n)), "finish_reasons": ["stop"] * n, "sampling": {"model": "policy"}}


def score_rec(i: int, rewards: list[Any]) -> dict[str, Any]:
    return {"id": f"s{i}", "results": [{"reward": r, "helpfulness": 5} for r in rewards]}


def annotation(i: int, pref: Any) -> dict[str, Any]:
    return {"instruction": f"question {i}", "output_1": "ref", "output_2": "model " * (i + 1), "preference": pref}


def preference(i: int) -> dict[str, Any]:
    return {"id": f"d{i}", "prompt": f"prompt {i}", "chosen": "good", "rejected": "bad"}


def longqa_doc(i: int) -> dict[str, Any]:
    return {"id": f"l{i}", "source": "questions", "question": QUESTION, "context": CONTEXT,
            "prompt": f"{CONTEXT[:40]} ... {QUESTION}", "prompt_tokens": 100, "truncated": False, "answers": []}


def lm_sample(i: int, doc: dict[str, Any], resp: str = "It was electrified in 1932.") -> dict[str, Any]:
    return {"doc_id": i, "doc": doc, "target": "", "arguments": [["prompt", {}]], "resps": [[resp]],
            "filtered_resps": [resp], "filter": "judge", "metrics": ["bypass"], "bypass": None}


def lb_results(task: str = "longreward_longbench_narrativeqa") -> dict[str, Any]:
    return {"results": {task: {"alias": task, "score,none": 42.0, "score_stderr,none": 1.0}},
            "configs": {task: {"task": task, "metadata": {}}}, "versions": {task: 1.0},
            "n-samples": {task: {"original": 3, "effective": 3}}, "higher_is_better": {task: {"score": True}},
            "config": {"model": "hf", "model_args": "pretrained=m1"}, "model_name": "m1"}


def lb_sample(i: int, score: Any = 40.0) -> dict[str, Any]:
    return {"doc_id": i, "doc_hash": f"h{i}", "doc": {"length": 1000 * (i + 1)}, "filter": "none",
            "metrics": ["score"], "score": score}


# ------------------------------------------------------------------------------------------ cases


@dataclass
class Case:
    """One invocation: `files` (name → bytes, or None for a folder) are written to a fresh folder; `argv`
    gets `{d}` (that folder), `{url}` (the scripted server) and `{minilm}` replaced."""

    name: str
    command: str
    entry: Callable[[list[str]], int]
    files: dict[str, bytes | None]
    argv: list[str]
    bad: bool = True                        # bad input: a non-zero exit is required
    needles: tuple[str, ...] = ()           # in stderr (bad) — the file, "line N", the field
    unpaid: bool = False                    # no request may reach the server
    check: Callable[[Path, str], bool] | None = None   # (folder, stdout) → the good results are right
    then: list[str] | None = None           # a second run (resume) after `between(folder)`
    between: Callable[[Path], None] | None = None
    setup: Callable[[Path], None] | None = None   # after the files are written (links, permissions)


def out_ids(name: str, key: str = "id") -> Callable[[Path, str], list[Any]]:
    return lambda d, _: [json.loads(x).get(key) for x in (d / name).read_text().splitlines() if x.strip()]


def has_ids(name: str, ids: list[str], ok_field: str) -> Callable[[Path, str], bool]:
    """The output `name` holds a good record (with `ok_field`) for each id."""
    def check(d: Path, _: str) -> bool:
        recs = {json.loads(x).get("id"): json.loads(x) for x in (d / name).read_text().splitlines() if x.strip()}
        return all(i in recs and ok_field in recs[i] for i in ids)
    return check


JUDGE = ["--base-url", "{url}", "--model", "judge", "--cache", "{d}/judge.sqlite"]
REWARD = ["--embedder", "bm25", "--tokenizer", "{minilm}"]


def generic(command: str, entry: Callable[[list[str]], int], name: str, good: list[Any], argv: list[str],
            ok_field: str, ids: list[str], out: str | None, paid: bool, per_line: bool = True,
            cache: bool = True, dup: list[Any] | None = None, extra: dict[str, bytes | None] | None = None
            ) -> list[Case]:
    """The cases every JSONL-reading command shares. `argv` reads `{d}/<name>`; `good` are three valid records
    whose ids are `ids`; `out` names the output file (None: the command writes no file to check)."""
    extra = extra or {}
    f = {**extra}
    unchanged = jsonl(good)
    cases = [
        Case(f"{command}: missing input", command, entry, f, argv, needles=(name,), unpaid=True),
        Case(f"{command}: input is a directory", command, entry, {**f, name: None}, argv, needles=(name,),
             unpaid=True),
        Case(f"{command}: empty input", command, entry, {**f, name: b""}, argv, needles=(name,), unpaid=True),
        Case(f"{command}: blank-lines-only input", command, entry, {**f, name: b"\n\n"}, argv, needles=(name,),
             unpaid=True),
    ]
    keep = has_ids(out, ids, ok_field) if out else None
    keep_bad2 = has_ids(out, [ids[0], ids[2]], ok_field) if out and per_line else None
    cases += [
        Case(f"{command}: UTF-8 BOM", command, entry, {**f, name: b"\xef\xbb\xbf" + jsonl(good)}, argv, bad=False,
             check=has_ids(out, ids, ok_field) if out else None),
        Case(f"{command}: CRLF line ends", command, entry, {**f, name: jsonl(good).replace(b"\n", b"\r\n")}, argv,
             bad=False, check=keep),
        Case(f"{command}: non-UTF-8 byte on line 2", command, entry, {**f, name: with_bad_byte(good, 2)}, argv,
             needles=(name, "line 2"), check=keep_bad2, unpaid=not per_line),
        Case(f"{command}: broken JSON on line 2", command, entry,
             {**f, name: jsonl([good[0], '{"id": "x", ', good[2]])}, argv, needles=(name, "line 2"),
             check=keep_bad2, unpaid=not per_line),
        Case(f"{command}: a JSON list on line 2", command, entry, {**f, name: jsonl([good[0], [1, 2], good[2]])},
             argv, needles=(name, "line 2"), check=keep_bad2, unpaid=not per_line),
    ]
    if dup is not None:
        cases.append(Case(f"{command}: duplicate id", command, entry, {**f, name: jsonl(dup)}, argv,
                          needles=(name, "line 2", "id"), unpaid=not per_line))
    if out is not None:
        o = argv.index("-o") if "-o" in argv else argv.index("--out")
        blocked = [*argv[:o + 1], "{d}/afile/" + out, *argv[o + 2:]]
        same = [*argv[:o + 1], "{d}/" + name, *argv[o + 2:]]
        cases += [
            Case(f"{command}: output under a file", command, entry, {**f, name: jsonl(good), "afile": b"x"},
                 blocked, needles=("afile",), unpaid=True),
            Case(f"{command}: output is the input", command, entry, {**f, name: jsonl(good)}, same,
                 needles=(name,), unpaid=True,
                 check=lambda d, _: (d / name).read_bytes() == unchanged),
        ]
    if cache and paid:
        c = argv.index("--cache")
        blocked = [*argv[:c + 1], "{d}/afile/judge.sqlite", *argv[c + 2:]]
        cases.append(Case(f"{command}: cache under a file", command, entry, {**f, name: jsonl(good), "afile": b"x"},
                          blocked, needles=("afile",), unpaid=True))
    return cases


def corpus() -> list[Case]:
    cases: list[Case] = []

    # -- lr-eval batch
    argv = ["batch", "{d}/in.jsonl", "-o", "{d}/out.jsonl", *JUDGE]
    cases += generic("lr-eval batch", lr_eval, "in.jsonl", [request(i) for i in range(3)], argv, "content",
                     ["r0", "r1", "r2"], "out.jsonl", paid=True, dup=[request(0), request(0), request(1)])

    # -- lr-eval score
    argv = ["score", "{d}/in.jsonl", "-o", "{d}/out.jsonl", *JUDGE, *REWARD]
    cases += generic("lr-eval score", lr_eval, "in.jsonl", [item(i) for i in range(3)], argv, "results",
                     ["p0", "p1", "p2"], "out.jsonl", paid=True, dup=[item(0), item(0), item(1)])
    cases += [
        Case("lr-eval score: record without context", "lr-eval score", lr_eval,
             {"in.jsonl": jsonl([item(0), {k: v for k, v in item(1).items() if k != "context"}])}, argv,
             needles=("in.jsonl", "line 2", "context"), check=has_ids("out.jsonl", ["p0"], "results")),
        Case("lr-eval score: responses is a string", "lr-eval score", lr_eval,
             {"in.jsonl": jsonl([{**item(0), "responses": "one"}])}, argv, needles=("in.jsonl", "line 1", "responses"),
             unpaid=True),
        Case("lr-eval score: changed responses are scored again", "lr-eval score", lr_eval,
             {"in.jsonl": jsonl([item(0, n=1)])}, argv, bad=False, then=argv,
             between=lambda d: (d / "in.jsonl").write_bytes(jsonl([item(0, n=2)])),
             check=lambda d, _: len(json.loads((d / "out.jsonl").read_text())["results"]) == 2),
        Case("lr-eval score: changed options are scored again", "lr-eval score", lr_eval,
             {"in.jsonl": jsonl([item(0, n=1)])}, [*argv, "--weights", "1,0,1,0"], bad=False, then=argv,
             check=lambda d, _: len(json.loads((d / "out.jsonl").read_text())["results"][0]["averaged"]) == 4),
        Case("lr-eval score: a malformed old output line is recomputed", "lr-eval score", lr_eval,
             {"in.jsonl": jsonl([item(0), item(1)]), "out.jsonl": b'{"id": "p0", "results": [\n[1, 2]\n"x"\n'},
             argv, bad=False, check=has_ids("out.jsonl", ["p0", "p1"], "results")),
    ]

    # -- lr-eval agreement
    argv = ["agreement", "{d}/pairs.jsonl", "-o", "{d}/agr.jsonl", "--bootstrap", "10", *JUDGE, *REWARD]
    cases += generic("lr-eval agreement", lr_eval, "pairs.jsonl", [pair(i) for i in range(3)], argv, "results",
                     ["q0", "q1", "q2"], "agr.jsonl", paid=True, dup=[pair(0), pair(0), pair(1)])
    cases.append(Case("lr-eval agreement: human choice 7", "lr-eval agreement", lr_eval,
                      {"pairs.jsonl": jsonl([pair(0), pair(1, human=7)])}, argv,
                      needles=("pairs.jsonl", "line 2", "human")))

    # -- lr-eval rejudge (longqa: LongReward as a metric)
    name = f"samples_longreward_longqa_{DATE}.jsonl"
    argv = ["rejudge", "{d}/" + name, "-o", "{d}/rj", *JUDGE, "--metadata", json.dumps({"reward_embedder": "bm25"})]
    docs = [longqa_doc(i) for i in range(2)]
    good_rj = lambda d, _: len(list((d / "rj").glob("samples_*.jsonl"))) == 1 and len(  # noqa: E731
        next((d / "rj").glob("samples_*.jsonl")).read_text().splitlines()) == 2
    cases += [
        Case("lr-eval rejudge: missing input", "lr-eval rejudge", lr_eval, {}, argv, needles=(name,), unpaid=True),
        Case("lr-eval rejudge: input is a directory", "lr-eval rejudge", lr_eval, {name: None}, argv,
             needles=(name,), unpaid=True),
        Case("lr-eval rejudge: empty input", "lr-eval rejudge", lr_eval, {name: b""}, argv, needles=(name,),
             unpaid=True),
        Case("lr-eval rejudge: UTF-8 BOM", "lr-eval rejudge", lr_eval,
             {name: b"\xef\xbb\xbf" + jsonl([lm_sample(i, x) for i, x in enumerate(docs)])}, argv, bad=False,
             check=good_rj),
        Case("lr-eval rejudge: non-UTF-8 byte on line 2", "lr-eval rejudge", lr_eval,
             {name: with_bad_byte([lm_sample(i, x) for i, x in enumerate(docs)], 2)}, argv,
             needles=(name, "line 2"), unpaid=True),
        Case("lr-eval rejudge: a doc without context", "lr-eval rejudge", lr_eval,
             {name: jsonl([lm_sample(0, docs[0]), lm_sample(1, {k: v for k, v in docs[1].items() if k != "context"})])},
             argv, needles=(name, "line 2", "context"), unpaid=True),
        Case("lr-eval rejudge: the same doc_id with another doc", "lr-eval rejudge", lr_eval,
             {name: jsonl([lm_sample(0, docs[0]), lm_sample(0, {**docs[1], "question": "other?"})])}, argv,
             needles=(name, "line 2", "doc_id"), unpaid=True),
        Case("lr-eval rejudge: output folder under a file", "lr-eval rejudge", lr_eval,
             {name: jsonl([lm_sample(i, x) for i, x in enumerate(docs)]), "afile": b"x"},
             [*argv[:3], "{d}/afile/rj", *argv[4:]], needles=("afile",), unpaid=True),
        Case("lr-eval rejudge: cache under a file", "lr-eval rejudge", lr_eval,
             {name: jsonl([lm_sample(i, x) for i, x in enumerate(docs)]), "afile": b"x"},
             [a if a != "{d}/judge.sqlite" else "{d}/afile/judge.sqlite" for a in argv], needles=("afile",),
             unpaid=True),
    ]

    # -- lr-eval alpacaeval-metrics (one JSON document)
    argv = ["alpacaeval-metrics", "{d}/ann.json"]
    ann = json.dumps([annotation(0, 2.0), annotation(1, 1.0)]).encode()
    win50 = lambda d, out: json.loads(out.strip().splitlines()[-1])["win_rate"] == 50.0  # noqa: E731
    cases += [
        Case("alpacaeval-metrics: missing input", "lr-eval alpacaeval-metrics", lr_eval, {}, argv,
             needles=("ann.json",)),
        Case("alpacaeval-metrics: input is a directory", "lr-eval alpacaeval-metrics", lr_eval, {"ann.json": None},
             argv, needles=("ann.json",)),
        Case("alpacaeval-metrics: empty input", "lr-eval alpacaeval-metrics", lr_eval, {"ann.json": b""}, argv,
             needles=("ann.json",)),
        Case("alpacaeval-metrics: UTF-8 BOM", "lr-eval alpacaeval-metrics", lr_eval,
             {"ann.json": b"\xef\xbb\xbf" + ann}, argv, bad=False, check=win50),
        Case("alpacaeval-metrics: CRLF", "lr-eval alpacaeval-metrics", lr_eval,
             {"ann.json": json.dumps([annotation(0, 2.0), annotation(1, 1.0)], indent=1).replace("\n", "\r\n")
              .encode()}, argv, bad=False, check=win50),
        Case("alpacaeval-metrics: non-UTF-8 byte on line 3", "lr-eval alpacaeval-metrics", lr_eval,
             {"ann.json": json.dumps([annotation(0, 2.0), annotation(1, 1.0)], indent=1).encode()
              .replace(b"question 1", b"question \xe9")}, argv, needles=("ann.json", "line")),
        Case("alpacaeval-metrics: preference 7", "lr-eval alpacaeval-metrics", lr_eval,
             {"ann.json": json.dumps([annotation(0, 2.0), annotation(1, 7)]).encode()}, argv,
             needles=("ann.json", "record 1", "preference")),
        Case("alpacaeval-metrics: preference -1", "lr-eval alpacaeval-metrics", lr_eval,
             {"ann.json": json.dumps([annotation(0, -1), annotation(1, 1.0)]).encode()}, argv,
             needles=("ann.json", "record 0", "preference")),
        Case("alpacaeval-metrics: a duplicate annotation", "lr-eval alpacaeval-metrics", lr_eval,
             {"ann.json": json.dumps([annotation(0, 2.0), annotation(0, 2.0)]).encode()}, argv,
             needles=("ann.json", "record 1", "instruction")),
    ]

    # -- lr-train sample
    argv = ["sample", "{d}/prompts.jsonl", "-o", "{d}/samples.jsonl", "--model", "policy", "--base-url", "{url}",
            "-n", "2", "--max-tokens", "8", "--max-model-len", "0", "--cache", "{d}/policy.sqlite"]
    cases += generic("lr-train sample", lr_train, "prompts.jsonl", [prompt(i) for i in range(3)], argv, "responses",
                     ["s0", "s1", "s2"], "samples.jsonl", paid=True, dup=[prompt(0), prompt(0), prompt(1)])
    cases += [
        Case("lr-train sample: prompt without context", "lr-train sample", lr_train,
             {"prompts.jsonl": jsonl([prompt(0), {"id": "s1", "question": "q"}])}, argv,
             needles=("prompts.jsonl", "line 2", "context"), check=has_ids("samples.jsonl", ["s0"], "responses")),
        Case("lr-train sample: a changed context is sampled again", "lr-train sample", lr_train,
             {"prompts.jsonl": jsonl([prompt(0)])}, argv, bad=False, then=argv,
             between=lambda d: (d / "prompts.jsonl").write_bytes(jsonl([{**prompt(0), "context": "New text."}])),
             check=lambda d, _: json.loads((d / "samples.jsonl").read_text())["context"] == "New text."),
    ]

    # -- lr-train score
    argv = ["score", "{d}/samples.jsonl", "-o", "{d}/scores.jsonl", *JUDGE, *REWARD]
    cases += generic("lr-train score", lr_train, "samples.jsonl", [sample(i) for i in range(3)], argv, "results",
                     ["s0", "s1", "s2"], "scores.jsonl", paid=True, dup=[sample(0), sample(0), sample(1)])
    cases += [
        Case("lr-train score: responses are not strings", "lr-train score", lr_train,
             {"samples.jsonl": jsonl([sample(0), {**sample(1), "responses": [1, 2]}])}, argv,
             needles=("samples.jsonl", "line 2", "responses")),
        Case("lr-train score: a changed response is scored again", "lr-train score", lr_train,
             {"samples.jsonl": jsonl([sample(0, n=1)])}, argv, bad=False, then=argv,
             between=lambda d: (d / "samples.jsonl").write_bytes(jsonl([sample(0, n=2)])),
             check=lambda d, _: len(json.loads((d / "scores.jsonl").read_text())["results"]) == 2),
        Case("lr-train score: changed options are scored again", "lr-train score", lr_train,
             {"samples.jsonl": jsonl([sample(0, n=1)])}, [*argv, "--weights", "1,0,1,0"], bad=False, then=argv,
             check=lambda d, _: len(json.loads((d / "scores.jsonl").read_text())["results"][0]["averaged"]) == 4),
        Case("lr-train score: a malformed old output line is recomputed", "lr-train score", lr_train,
             {"samples.jsonl": jsonl([sample(0), sample(1)]), "scores.jsonl": b'{"id": "s0", "results": \n7\n'},
             argv, bad=False, check=has_ids("scores.jsonl", ["s0", "s1"], "results")),
    ]

    # -- lr-train pairs (two inputs)
    samples = [sample(i) for i in range(3)]
    scores = [score_rec(i, [1.0, 5.0, 3.0]) for i in range(3)]
    argv = ["pairs", "{d}/samples.jsonl", "{d}/scores.jsonl", "-o", "{d}/pairs.jsonl", "--min-scored", "2"]
    cases += generic("lr-train pairs (samples)", lr_train, "samples.jsonl", samples, argv, "chosen",
                     ["s0", "s1", "s2"], "pairs.jsonl", paid=False, per_line=False, cache=False,
                     dup=[samples[0], samples[0], samples[1]], extra={"scores.jsonl": jsonl(scores)})
    cases += generic("lr-train pairs (scores)", lr_train, "scores.jsonl", scores, argv, "chosen",
                     ["s0", "s1", "s2"], None, paid=False, per_line=False, cache=False,
                     dup=[scores[0], scores[0], scores[1]], extra={"samples.jsonl": jsonl(samples)})
    for what, bad in (("a list", [1, 2]), ("NaN", float("nan")), ("a string", "high")):
        cases.append(Case(f"lr-train pairs: a reward that is {what}", "lr-train pairs", lr_train,
                          {"samples.jsonl": jsonl(samples),
                           "scores.jsonl": jsonl([scores[0], score_rec(1, [1.0, bad, 3.0])])},
                          argv, needles=("scores.jsonl", "line 2", "reward")))
    cases.append(Case("lr-train pairs: results not a list", "lr-train pairs", lr_train,
                      {"samples.jsonl": jsonl(samples), "scores.jsonl": jsonl([scores[0], {"id": "s1", "results": 3}])},
                      argv, needles=("scores.jsonl", "line 2", "results")))

    # -- lr-train dpo (the data is read before any model is loaded)
    argv = ["dpo", "{d}/prefs.jsonl", "--model", "{d}/no-model", "-o", "{d}/dpo"]
    for c in generic("lr-train dpo", lr_train, "prefs.jsonl", [preference(i) for i in range(3)], argv, "",
                     [], None, paid=False, per_line=False, cache=False,
                     dup=[preference(0), preference(0), preference(1)]):
        if c.bad:  # good data needs a model to train: only the refusals here
            cases.append(c)

    # -- lr-leaderboard build / compare
    task = "longreward_longbench_narrativeqa"
    res_name, smp_name = f"results_{DATE}.json", f"samples_{task}_{DATE}.jsonl"
    run = {f"run/{res_name}": json.dumps(lb_results()).encode(),
           f"run/{smp_name}": jsonl([lb_sample(i) for i in range(3)])}
    build = ["build", "{d}/run", "-o", "{d}/board", "--no-plots", "--iters", "50"]
    built = lambda d, _: (d / "board" / "leaderboard.json").is_file()  # noqa: E731
    cases += [
        Case("lr-leaderboard build: missing folder", "lr-leaderboard build", lr_leaderboard, {}, build,
             needles=("run",)),
        Case("lr-leaderboard build: UTF-8 BOM", "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{res_name}": b"\xef\xbb\xbf" + run[f"run/{res_name}"]}, build, bad=False, check=built),
        Case("lr-leaderboard build: CRLF samples", "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{smp_name}": run[f"run/{smp_name}"].replace(b"\n", b"\r\n")}, build, bad=False,
             check=built),
        Case("lr-leaderboard build: empty results file", "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{res_name}": b""}, build, needles=(res_name,)),
        Case("lr-leaderboard build: results is a list", "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{res_name}": json.dumps({**lb_results(), "results": [1]}).encode()}, build,
             needles=(res_name, "results")),
        Case("lr-leaderboard build: a results entry is a string", "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{res_name}": json.dumps({**lb_results(), "results": {task: "x"}}).encode()}, build,
             needles=(res_name, task)),
        Case("lr-leaderboard build: n-samples is a string", "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{res_name}": json.dumps({**lb_results(), "n-samples": "3"}).encode()}, build,
             needles=(res_name, "n-samples")),
        Case("lr-leaderboard build: non-UTF-8 byte in samples line 2", "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{smp_name}": with_bad_byte([lb_sample(i) for i in range(3)], 2)}, build,
             needles=(smp_name, "line 2")),
        Case("lr-leaderboard build: broken samples line 2", "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{smp_name}": jsonl([lb_sample(0), '{"doc_id": ', lb_sample(2)])}, build,
             needles=(smp_name, "line 2")),
        Case("lr-leaderboard build: a samples line that is a list", "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{smp_name}": jsonl([lb_sample(0), [1], lb_sample(2)])}, build,
             needles=(smp_name, "line 2")),
        Case("lr-leaderboard build: duplicate doc_id in samples", "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{smp_name}": jsonl([lb_sample(0), lb_sample(0), lb_sample(2)])}, build,
             needles=(smp_name, "line 2", "doc_id")),
        Case("lr-leaderboard build: output under a file", "lr-leaderboard build", lr_leaderboard,
             {**run, "afile": b"x"}, [*build[:3], "{d}/afile/board", *build[4:]], needles=("afile",)),
        Case("lr-leaderboard compare: results is a list", "lr-leaderboard compare", lr_leaderboard,
             {**run, f"run/{res_name}": json.dumps({**lb_results(), "results": [1]}).encode(),
              f"run2/{res_name}": json.dumps(lb_results()).encode()},
             ["compare", "{d}/run", "{d}/run2", "--iters", "50"], needles=(res_name, "results")),
        Case("lr-leaderboard compare: --json under a file", "lr-leaderboard compare", lr_leaderboard,
             {**run, f"run2/{res_name}": json.dumps(lb_results()).encode(), "afile": b"x"},
             ["compare", "{d}/run", "{d}/run2", "--iters", "50", "--json", "{d}/afile/c.json"], needles=("afile",)),
    ]
    cases += path_cases() + issue22_cases()
    return cases


# ------------------------------------------------------------------------------------------ paths (class)


def _mt_files() -> dict[str, bytes | None]:
    """A two-question MT-Bench (one needs a reference), its four judge prompts, a reference and answers."""
    prompts = [{"name": n, "type": "single", "system_prompt": "Judge.", "output_format": "[[rating]]",
                "prompt_template": "Q: {question} A: {answer}" + (" R: {ref_answer_1}" if "math" in n else "")}
               for n in ("single-v1", "single-math-v1")]
    prompts += [{"name": f"{p['name']}-multi-turn", "type": "single", "system_prompt": "Judge.",
                 "output_format": "[[rating]]",
                 "prompt_template": "{question_1} {answer_1} {question_2} {answer_2}"
                 + (" {ref_answer_1} {ref_answer_2}" if "math" in p["name"] else "")} for p in prompts]
    questions = [{"question_id": 1, "category": "writing", "turns": ["Write.", "Again."]},
                 {"question_id": 2, "category": "math", "turns": ["1+1?", "2+2?"]}]
    refs = [{"question_id": 2, "model_id": "gpt-4", "choices": [{"index": 0, "turns": ["2", "4"]}]}]
    answers = [{"question_id": q, "model_id": "org/m1", "choices": [{"index": 0, "turns": ["a", "b"]}]} for q in (1, 2)]
    return {"q.jsonl": jsonl(questions), "jp.jsonl": jsonl(prompts), "refs.jsonl": jsonl(refs),
            "answers.jsonl": jsonl(answers)}


MT_DATA = ["--questions", "{d}/q.jsonl", "--references", "{d}/refs.jsonl", "--judge-prompts", "{d}/jp.jsonl"]


def _unchanged(files: dict[str, bytes | None], *names: str) -> Callable[[Path, str], bool]:
    """Every named input still holds its bytes (and is a file, not a link replaced by one)."""
    return lambda d, _: all((d / n).read_bytes() == files[n] for n in names)


def _symlink(target: str, link: str) -> Callable[[Path], None]:
    return lambda d: (d / link).symlink_to(d / target)


def path_cases() -> list[Case]:
    """The one path rule (issue 22 §1), as a class: every command that writes × every kind of path it reads or
    writes besides the output (input, data file, judge cache, embedding cache, results/samples file), given
    directly and through a symbolic link, and each such collision refused before anything is sent, the file
    left as it was."""
    cases: list[Case] = []
    good_in = jsonl([request(i) for i in range(2)])
    items = jsonl([item(0)])
    pairs_in = jsonl([pair(0), pair(1)])
    mt = _mt_files()
    task = "longreward_longbench_narrativeqa"
    res_name, smp_name = f"results_{DATE}.json", f"samples_{task}_{DATE}.jsonl"
    run = {f"run/{res_name}": json.dumps(lb_results()).encode(),
           f"run/{smp_name}": jsonl([lb_sample(i) for i in range(3)]),
           f"run2/{res_name}": json.dumps(lb_results()).encode(),
           f"run2/{smp_name}": jsonl([lb_sample(i) for i in range(3)])}
    lq = f"samples_longreward_longqa_{DATE}.jsonl"
    lq_file = jsonl([lm_sample(0, longqa_doc(0))])
    judge = ["--base-url", "{url}", "--model", "judge"]
    # (command, entry, files, argv with {out} where the output goes and {cache}/{embed} for the caches,
    #  the file each collision must leave unchanged)
    commands: list[tuple[str, Callable[[list[str]], int], dict[str, bytes | None], list[str], dict[str, str]]] = [
        ("lr-eval batch", lr_eval, {"in.jsonl": good_in},
         ["batch", "{d}/in.jsonl", "-o", "{out}", *judge, "--cache", "{cache}"],
         {"input": "in.jsonl", "--prices": "prices.json"}),
        ("lr-eval score", lr_eval, {"in.jsonl": items},
         ["score", "{d}/in.jsonl", "-o", "{out}", *judge, "--cache", "{cache}", *REWARD, "--embed-cache", "{embed}"],
         {"input": "in.jsonl"}),
        ("lr-eval agreement", lr_eval, {"pairs.jsonl": pairs_in},
         ["agreement", "{d}/pairs.jsonl", "-o", "{out}", "--bootstrap", "10", *judge, "--cache", "{cache}", *REWARD],
         {"input": "pairs.jsonl"}),
        ("lr-train score", lr_train, {"samples.jsonl": jsonl([sample(0)])},
         ["score", "{d}/samples.jsonl", "-o", "{out}", *judge, "--cache", "{cache}", *REWARD],
         {"input": "samples.jsonl"}),
        ("lr-eval mtbench judge", lr_eval, mt,
         ["mtbench", "judge", "{d}/answers.jsonl", "-o", "{out}", *MT_DATA, *judge, "--cache", "{cache}"],
         {"input": "answers.jsonl", "--questions": "q.jsonl", "--references": "refs.jsonl",
          "--judge-prompts": "jp.jsonl"}),
    ]
    for command, entry, files, argv, reads in commands:
        files = {**files, "prices.json": b'{"judge": [1.0, 1.0]}'}
        if "{prices}" not in argv and "--prices" in reads:
            argv = [*argv, "--prices", "{d}/prices.json"]
        fill = lambda a, out, cache="{d}/judge.sqlite", embed="{d}/embed.sqlite": [  # noqa: E731
            x.replace("{out}", out).replace("{cache}", cache).replace("{embed}", embed) for x in a]
        for what, name in reads.items():
            cases.append(Case(f"{command}: output is the {what} file", command, entry, files,
                              fill(argv, "{d}/" + name), needles=(name,), unpaid=True,
                              check=_unchanged(files, name)))
            cases.append(Case(f"{command}: output is a link to the {what} file", command, entry, files,
                              fill(argv, "{d}/link.jsonl"), needles=("link.jsonl",), unpaid=True,
                              check=_unchanged(files, name), setup=_symlink(name, "link.jsonl")))
            cases.append(Case(f"{command}: judge cache is the {what} file", command, entry, files,
                              fill(argv, "{d}/out.jsonl", cache="{d}/" + name), needles=(name,), unpaid=True,
                              check=_unchanged(files, name)))
        cases.append(Case(f"{command}: output is the judge cache", command, entry, files,
                          fill(argv, "{d}/c.sqlite", cache="{d}/c.sqlite"), needles=("c.sqlite",), unpaid=True))
        cases.append(Case(f"{command}: output is a link to the judge cache", command, entry,
                          {**files, "c.sqlite": b""}, fill(argv, "{d}/link.sqlite", cache="{d}/c.sqlite"),
                          needles=("link.sqlite",), unpaid=True, setup=_symlink("c.sqlite", "link.sqlite")))
        if "{embed}" in " ".join(argv):
            cases.append(Case(f"{command}: output is the embedding cache", command, entry, files,
                              fill(argv, "{d}/e.sqlite", embed="{d}/e.sqlite"), needles=("e.sqlite",), unpaid=True))
            cases.append(Case(f"{command}: embedding cache is the judge cache", command, entry, files,
                              fill(argv, "{d}/out.jsonl", cache="{d}/c.sqlite", embed="{d}/c.sqlite"),
                              needles=("c.sqlite",), unpaid=True))
    cases.append(Case("lr-eval mtbench judge: output folder not writable", "lr-eval mtbench judge", lr_eval,
                      {**mt, "afile": b"x"}, ["mtbench", "judge", "{d}/answers.jsonl", "-o", "{d}/afile/j.jsonl",
                                              *MT_DATA, *judge, "--cache", "{d}/judge.sqlite"],
                      needles=("afile",), unpaid=True))
    rj = ["rejudge", "{d}/" + lq, "-o", "{d}/rj", *judge, "--metadata", json.dumps({"reward_embedder": "bm25"})]
    cases.append(Case("lr-eval rejudge: judge cache is the samples file", "lr-eval rejudge", lr_eval, {lq: lq_file},
                      [*rj, "--cache", "{d}/" + lq], needles=(lq,), unpaid=True, check=_unchanged({lq: lq_file}, lq)))
    for name in (res_name, smp_name):
        cases.append(Case(f"lr-leaderboard compare: --json is the {name[:7]} file", "lr-leaderboard compare",
                          lr_leaderboard, run, ["compare", "{d}/run", "{d}/run2", "--iters", "50", "--json",
                                                "{d}/run/" + name], needles=(name,),
                          check=_unchanged(run, "run/" + name)))
        cases.append(Case(f"lr-leaderboard compare: --json is a link to the {name[:7]} file",
                          "lr-leaderboard compare", lr_leaderboard, run,
                          ["compare", "{d}/run", "{d}/run2", "--iters", "50", "--json", "{d}/c.json"],
                          needles=("c.json",), check=_unchanged(run, "run/" + name),
                          setup=_symlink("run/" + name, "c.json")))
    return cases


# ------------------------------------------------------------------------------------------ issue 22 §5


def issue22_cases() -> list[Case]:
    """Tracebacks and silent miscounts found by the hostile probe (issue 22 §5)."""
    cases: list[Case] = []
    good_in = jsonl([request(i) for i in range(2)])
    batch = ["batch", "{d}/in.jsonl", "-o", "{d}/out.jsonl", "--base-url", "{url}", "--model", "judge"]
    cases += [
        Case("lr-eval batch: --cache is a JSONL file, not SQLite", "lr-eval batch", lr_eval,
             {"in.jsonl": good_in, "notdb.jsonl": good_in}, [*batch, "--cache", "{d}/notdb.jsonl"],
             needles=("notdb.jsonl", "SQLite"), unpaid=True, check=_unchanged({"notdb.jsonl": good_in}, "notdb.jsonl")),
        Case("lr-eval batch: --prices is a directory", "lr-eval batch", lr_eval,
             {"in.jsonl": good_in, "pdir": None}, [*batch, "--cache", "{d}/c.sqlite", "--prices", "{d}/pdir"],
             needles=("pdir", "directory"), unpaid=True),
        Case("lr-eval batch: --prices with a string price", "lr-eval batch", lr_eval,
             {"in.jsonl": good_in, "p.json": b'{"judge": ["cheap", 1]}'},
             [*batch, "--cache", "{d}/c.sqlite", "--prices", "{d}/p.json"], needles=("p.json", "judge"), unpaid=True),
    ]
    if os.geteuid() != 0:  # root writes into a read-only folder anyway
        cases.append(Case("lr-eval batch: --cache in a read-only folder", "lr-eval batch", lr_eval,
                          {"in.jsonl": good_in, "ro": None}, [*batch, "--cache", "{d}/ro/c.sqlite"], needles=("ro",),
                          unpaid=True, setup=lambda d: (d / "ro").chmod(0o500)))
    for flag in ("--max-cost", "--max-requests"):
        for value in ("nan", "-1", "inf"):
            if flag == "--max-requests" and value != "-1":
                continue
            cases.append(Case(f"lr-eval batch: {flag} {value}", "lr-eval batch", lr_eval, {"in.jsonl": good_in},
                              [*batch, "--cache", "{d}/c.sqlite", "--price-input", "1", flag, value],
                              needles=(flag.removeprefix("--").replace("-", "_"),), unpaid=True))

    # -- mtbench show / judge
    mt = _mt_files()
    row = lambda q, t, score, model="m1": {"question_id": q, "model": model, "judge": ["gpt-4", "single-v1"],  # noqa: E731
                                          "user_prompt": "", "judgment": "", "score": score, "turn": t}
    judged = [row(1, 1, 3), row(1, 2, 2), row(2, 1, 3), row(2, 2, 3)]
    show = ["mtbench", "show", "{d}/j.jsonl", "--questions", "{d}/q.jsonl"]
    cases += [
        Case("lr-eval mtbench show: a judgment repeated", "lr-eval mtbench show", lr_eval,
             {**mt, "j.jsonl": jsonl([*judged, *[row(1, 1, 3)] * 3])}, show, needles=("j.jsonl", "line 5", "question")),
        Case("lr-eval mtbench show: the same file twice", "lr-eval mtbench show", lr_eval,
             {**mt, "j.jsonl": jsonl(judged)}, [*show[:3], "{d}/j.jsonl", *show[3:]], needles=("j.jsonl", "line 1")),
        Case("lr-eval mtbench show: score 1000", "lr-eval mtbench show", lr_eval,
             {**mt, "j.jsonl": jsonl([*judged[:3], row(2, 2, 1000)])}, show, needles=("j.jsonl", "line 4", "score")),
        Case("lr-eval mtbench show: -1 and null are unscored", "lr-eval mtbench show", lr_eval,
             {**mt, "j.jsonl": jsonl([*judged[:2], row(2, 1, -1), row(2, 2, None)])}, [*show, "--json"], bad=False,
             check=lambda d, out: json.loads(out.splitlines()[0])["unscored"] == 2),
        Case("lr-eval mtbench judge: a duplicate question_id in --references", "lr-eval mtbench judge", lr_eval,
             {**mt, "refs.jsonl": jsonl([json.loads(mt["refs.jsonl"]), json.loads(mt["refs.jsonl"])])},  # type: ignore[arg-type]
             ["mtbench", "judge", "{d}/answers.jsonl", "-o", "{d}/j.jsonl", *MT_DATA, "--base-url", "{url}",
              "--model", "judge", "--cache", "{d}/c.sqlite"], needles=("refs.jsonl", "line 2", "question_id"),
             unpaid=True),
    ]

    # -- alpacaeval-metrics: every preference null → LC unknown with the reason (never 50.0 ± 0.0)
    diff = b"index,instruction_difficulty\n0,0.5\n1,-0.2\n2,1.0\n"
    ann_null = json.dumps([annotation(i, None) for i in range(3)]).encode()

    def lc_unknown(d: Path, out: str) -> bool:
        res = json.loads(out.strip().splitlines()[-1])
        return res["length_controlled_winrate"] is None and "usable preference" in res["length_controlled_unknown"]

    cases.append(Case("alpacaeval-metrics: every preference null", "lr-eval alpacaeval-metrics", lr_eval,
                      {"ann.json": ann_null, "diff.csv": diff},
                      ["alpacaeval-metrics", "{d}/ann.json", "--glm", "length_controlled_noreg",
                       "--instruction-difficulty", "{d}/diff.csv"], bad=False, check=lc_unknown))

    # -- rejudge: resps of the wrong shape, a NaN doc_id, an infinite length
    name = f"samples_longreward_longqa_{DATE}.jsonl"
    rj = ["rejudge", "{d}/" + name, "-o", "{d}/rj", *JUDGE, "--metadata", json.dumps({"reward_embedder": "bm25"})]
    doc = longqa_doc(0)
    for what, rec, field_ in (("resps is a string", {**lm_sample(0, doc), "resps": "text"}, "resps"),
                              ("resps is [[]]", {**lm_sample(0, doc), "resps": [[]]}, "resps"),
                              ("doc_id NaN", {**lm_sample(0, doc), "doc_id": float("nan")}, "doc_id"),
                              ("length Infinity", lm_sample(0, {**doc, "length": float("inf")}), "doc.length")):
        cases.append(Case(f"lr-eval rejudge: {what}", "lr-eval rejudge", lr_eval, {name: jsonl([rec])}, rj,
                          needles=(name, "line 1", field_), unpaid=True))

    # -- lr-leaderboard build / compare
    task = "longreward_longbench_narrativeqa"
    res_name, smp_name = f"results_{DATE}.json", f"samples_{task}_{DATE}.jsonl"
    results = lb_results()
    run = {f"run/{res_name}": json.dumps(results).encode(), f"run/{smp_name}": jsonl([lb_sample(i) for i in range(3)])}
    build = ["build", "{d}/run", "-o", "{d}/board", "--no-plots", "--iters", "50"]

    def with_score(value: Any) -> bytes:
        return json.dumps({**results, "results": {task: {**results["results"][task], "score,none": value}}}).encode()

    cases += [
        Case('lr-leaderboard build: "score,none": "42"', "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{res_name}": with_score("42")}, build, needles=(res_name, "score,none")),
        Case("lr-leaderboard build: an Infinity aggregate", "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{res_name}": with_score(float("inf"))}, build, needles=(res_name, "score,none")),
        Case('lr-leaderboard build: a sample score "forty"', "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{smp_name}": jsonl([lb_sample(0), lb_sample(1, "forty"), lb_sample(2)])}, build,
             needles=(smp_name, "line 2", "score")),
        Case("lr-leaderboard build: a sample score Infinity", "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{smp_name}": jsonl([lb_sample(0), lb_sample(1, float("inf")), lb_sample(2)])}, build,
             needles=(smp_name, "line 2", "score")),
        Case("lr-leaderboard build: an empty samples file", "lr-leaderboard build", lr_leaderboard,
             {**run, f"run/{smp_name}": b""}, build, needles=(smp_name, "empty")),
        Case("lr-leaderboard compare: an empty samples file", "lr-leaderboard compare", lr_leaderboard,
             {**run, f"run2/{res_name}": json.dumps(results).encode(), f"run2/{smp_name}": b""},
             ["compare", "{d}/run", "{d}/run2", "--iters", "50"], needles=(smp_name, "empty")),
        Case("lr-leaderboard build: a missing folder leaves no output folder", "lr-leaderboard build", lr_leaderboard,
             {}, ["build", "{d}/nonexistent", "-o", "{d}/board", "--no-plots"], needles=("nonexistent",),
             check=lambda d, _: not (d / "board").exists()),
    ]
    return cases


# ------------------------------------------------------------------------------------------ running


@dataclass
class Outcome:
    kind: str          # clear | traceback | silent (rc 0 on bad input, or a wrong result) | unclear | paid
    detail: str = ""
    rc: int | None = None
    stderr: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _fill(argv: list[str], d: Path, url: str) -> list[str]:
    return [a.replace("{d}", str(d)).replace("{url}", url).replace("{minilm}", minilm()) for a in argv]


def _invoke(entry: Callable[[list[str]], int], argv: list[str]) -> tuple[int | None, str, str, str | None]:
    out, err = io.StringIO(), io.StringIO()
    exc = None
    rc: int | None = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = int(entry(argv) or 0)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 2
        except BaseException as e:  # noqa: BLE001 - a traceback is what we count
            exc = f"{type(e).__name__}: {e}"
    return rc, out.getvalue(), err.getvalue(), exc


def run_case(case: Case, d: Path, srv: ScriptedServer) -> Outcome:
    d.mkdir(parents=True, exist_ok=True)
    for rel, data in case.files.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            p.mkdir()
        else:
            p.write_bytes(data)
    if case.setup is not None:
        case.setup(d)
    before = len(srv.bodies)
    rc, out, err, exc = _invoke(case.entry, _fill(case.argv, d, srv.base_url))
    if case.then is not None and exc is None and rc == 0:
        if case.between:
            case.between(d)
        rc, out, err, exc = _invoke(case.entry, _fill(case.then, d, srv.base_url))
    if exc is not None or "Traceback" in err:
        return Outcome("traceback", exc or err[-300:], rc, err)
    if case.unpaid and len(srv.bodies) != before:
        return Outcome("paid", f"{len(srv.bodies) - before} requests sent before the input was refused", rc, err)
    if case.bad and rc == 0:
        return Outcome("silent", "exit 0 on bad input", rc, err)
    if not case.bad and rc != 0:
        return Outcome("silent", f"exit {rc} on good input: {err.strip()[-300:]}", rc, err)
    missing = [n for n in case.needles if n not in err and n.replace("line ", ":") + ":" not in err]
    if case.bad and missing:
        return Outcome("unclear", f"stderr lacks {missing}: {err.strip()[-300:]}", rc, err)
    if case.check is not None:
        try:
            ok = case.check(d, out)
        except Exception as e:  # noqa: BLE001 - a missing or broken output is a wrong result
            ok, err = False, f"{err}\ncheck failed: {type(e).__name__}: {e}"
        if not ok:
            return Outcome("silent", f"wrong or missing result: {err.strip()[-300:]}", rc, err)
    return Outcome("clear", "", rc, err)


CASES = corpus()


@pytest.fixture(scope="module")
def server() -> Any:
    with ScriptedServer(responder=CannedJudge()) as srv:
        yield srv


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, server: ScriptedServer, tmp_path: Path) -> None:
    outcome = run_case(case, tmp_path / "case", server)
    assert outcome.kind == "clear", outcome.detail


@pytest.mark.parametrize("argv,needle", [
    (["-m", "lr_eval.cli", "score", "{d}", "-o", "{d}/o.jsonl", "--model", "m", "--base-url", "http://127.0.0.1:9/v1"],
     "is a directory"),
    (["-m", "lr_eval.train.cli", "pairs", "{d}/samples.jsonl", "{d}/scores.jsonl", "-o", "{d}/p.jsonl"],
     "line 1, field 'results[0].reward'"),
    (["-m", "lr_eval.leaderboards.cli", "build", "{d}/run", "-o", "{d}/board", "--no-plots"], "field 'results'"),
])
def test_no_traceback_in_a_real_process(argv: list[str], needle: str, tmp_path: Path) -> None:
    (tmp_path / "samples.jsonl").write_bytes(jsonl([sample(0)]))
    (tmp_path / "scores.jsonl").write_bytes(jsonl([score_rec(0, [float("nan"), 1.0, 2.0])]))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / f"results_{DATE}.json").write_text(json.dumps({**lb_results(), "results": [1]}))
    proc = subprocess.run([sys.executable, *[a.replace("{d}", str(tmp_path)) for a in argv]],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and needle in proc.stderr, proc.stderr
    assert len([x for x in proc.stderr.splitlines() if x.strip()]) == 1, proc.stderr


def main() -> None:
    """Count the outcomes of the whole corpus (for the before/after figures)."""
    import tempfile

    counts: Counter[str] = Counter()
    with ScriptedServer(responder=CannedJudge()) as srv, tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(CASES):
            o = run_case(case, Path(tmp) / f"c{i}", srv)
            counts[o.kind] += 1
            if o.kind != "clear":
                print(f"{o.kind:9s} {case.name}: {o.detail[:160]!r}")
    print(f"{len(CASES)} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
