"""`lr-eval batch`: send a JSONL file of chat requests to a judge, write the answers in input order.

Resuming needs no bookkeeping: every completed answer is in the cache, so a
rerun over the same input sends only what is missing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .config import JudgeConfig, add_judge_args, build_client
from .jsonl import InputError, check_paths, read_jsonl, require, write_jsonl_atomic
from .judge import gather_or_cancel
from .progress import console
from .report import print_usage
from .types import ChatRequest, ChatResult, JudgeStop

ROLES = ("system", "user", "assistant")


def parse_request(rec: dict[str, Any], path: str | Path, line: int) -> ChatRequest:
    """Validate one input line into a ChatRequest."""
    require(rec, "id", (str, int), path, line)
    messages = require(rec, "messages", list, path, line)
    if not messages:
        raise InputError(path, line, "messages", "empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise InputError(path, line, f"messages[{i}]",
                             "each message needs a role (system/user/assistant) and a string content")
    kw: dict[str, Any] = {}
    temperature = require(rec, "temperature", (int, float), path, line, optional=True)
    if temperature is not None:
        kw["temperature"] = float(temperature)
    max_tokens = require(rec, "max_tokens", int, path, line, optional=True)
    if max_tokens is not None:
        if max_tokens <= 0:
            raise InputError(path, line, "max_tokens", "must be positive")
        kw["max_tokens"] = max_tokens
    logprobs = require(rec, "logprobs", bool, path, line, optional=True)
    if logprobs:
        kw["logprobs"] = True
    top = require(rec, "top_logprobs", int, path, line, optional=True)
    if top is not None:
        if not 0 <= top <= 20:
            raise InputError(path, line, "top_logprobs", "must be between 0 and 20")
        kw["top_logprobs"], kw["logprobs"] = top, True
    return ChatRequest.of(messages, **kw)


def output_record(rid: Any, res: ChatResult) -> dict[str, Any]:
    if not res.ok:
        return {"id": rid, "error": res.error}
    out: dict[str, Any] = {"id": rid, "content": res.content, "usage": res.usage.to_dict(), "cached": res.cached}
    if res.top_logprobs is not None:
        out["top_logprobs"] = res.top_logprobs
    return out


def run_batch(input_path: str | Path, output_path: str | Path, cfg: JudgeConfig) -> int:
    """Returns the number of failed lines (0 = all answered). Paths and every line are checked before any
    request is sent; a bad or repeated-id line is an error record of the output."""
    check_paths({"output": output_path, **cfg.written_paths()}, {"input": input_path, **cfg.read_paths()})
    rows: list[dict[str, Any]] = []        # output records in input order, filled in place
    pending: list[tuple[int, ChatRequest]] = []
    seen: set[str] = set()
    for n, rec in read_jsonl(input_path):
        if isinstance(rec, InputError):
            rows.append({"id": None, "line": n, "error": str(rec)})
            continue
        try:
            req = parse_request(rec, input_path, n)
            if str(rec["id"]) in seen:
                raise InputError(input_path, n, "id", f"duplicate id {rec['id']!r} (each id may appear once)")
        except InputError as e:
            rows.append({"id": rec.get("id"), "line": n, "error": str(e)})
            continue
        seen.add(str(rec["id"]))
        rows.append({"id": rec["id"]})
        pending.append((len(rows) - 1, req))
    for row in rows:
        if "error" in row:
            console.print(row["error"], style="red", markup=False)

    client = build_client(cfg)
    stop: Exception | None = None

    async def go() -> None:
        nonlocal stop
        with client.progress("batch", len(pending)):
            async def one(i: int, req: ChatRequest) -> None:
                res = await client.chat(req)
                rows[i] = output_record(rows[i]["id"], res)
            try:
                await gather_or_cancel([one(i, r) for i, r in pending])
            except JudgeStop as e:
                stop = e

    client.run_coroutine(go)
    if cfg.dry_run:
        print_usage(client.meter, title="dry run: estimate (nothing sent)")
        return 0
    for row in rows:
        if "content" not in row and "error" not in row:
            row["error"] = f"not sent: {stop}"
    write_jsonl_atomic(output_path, rows)
    print_usage(client.meter)
    failed = sum("error" in r for r in rows)
    if stop is not None:  # one line from the command's error handler; the answers received are written
        raise stop
    if failed:
        console.print(f"[red]{failed} of {len(rows)} lines failed (see 'error' in {output_path})")
    return failed


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("batch", help="send a JSONL file of chat requests to a judge (cached, resumable)",
                       description=__doc__)
    p.add_argument("input", help="JSONL: {id, messages, [temperature, max_tokens, logprobs, top_logprobs]}")
    p.add_argument("-o", "--output", required=True, help="JSONL: {id, content, usage, cached} or {id, error}")
    add_judge_args(p)
    p.set_defaults(func=lambda a: 1 if run_batch(a.input, a.output, JudgeConfig.from_args(a)) else 0)
