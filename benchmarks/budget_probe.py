"""Spend against the budget under misreporting servers (issue 22 §2), through `lr-eval batch`'s own code.

300 requests of about 1,000 characters each (a 1,250-byte bound with the per-message overhead; 256 max
tokens), prices 50 / 200 USD per million input / output tokens, `--max-cost` as given, scripted servers on
127.0.0.1 answering with 10 ms latency. Each case prints: the budget, what the meter charged, the bill the
server claims (its reported usage at the prices), the bill at honest usage (4 characters a token),
answers paid, rows with an answer, rows "not sent", and the not-sent count of the stop line.

    python benchmarks/budget_probe.py            # every case

It ends with `RESULT max_spend_over_budget`: over the cases, the larger of the meter's charge and the bill at
honest usage, over the budget (target <= 1.0); a case whose paid answers are not all in the output, or
whose stop line miscounts the rows not sent, makes it infinite.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from lr_eval import batch
from lr_eval.config import JudgeConfig
from lr_eval.testing.scripted_server import Reply, ScriptedServer
from lr_eval.types import JudgeStop

N, CHARS, MAX_TOKENS, PRICE = 300, 1000, 256, (50.0, 200.0)


def honest(body: dict[str, Any]) -> tuple[int, int]:
    return sum(len(m["content"]) for m in body["messages"]) // 4, 40


def responder(mode: str, log: list[tuple[int, int, int, int]]) -> Any:
    def answer(body: dict[str, Any]) -> Reply:
        real = honest(body)
        if mode == "inflated":
            usage: tuple[int, int] | None = (real[0] * 1000, real[1] * 1000)
        elif mode == "zero":
            usage = (0, 0)
        else:
            usage = real
        log.append((*real, *(usage or (0, 0))))
        reply = Reply(content="a " * 40, usage=usage)
        if mode == "missing":
            if hasattr(reply, "omit_usage"):
                reply.omit_usage = True  # type: ignore[attr-defined]
            else:  # before issue 22 the server could not leave usage out: zero is what the client saw
                reply.usage = (0, 0)
        return reply
    return answer


def run(mode: str, budget: float, concurrency: int) -> dict[str, Any]:
    log: list[tuple[int, int, int, int]] = []
    captured: dict[str, Any] = {}
    build = batch.build_client

    def capture(cfg: JudgeConfig) -> Any:
        captured["client"] = build(cfg)
        return captured["client"]

    batch.build_client = capture  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory() as d, ScriptedServer(responder=responder(mode, log), latency=0.01) as srv:
            inp, out = Path(d) / "in.jsonl", Path(d) / "out.jsonl"
            inp.write_text("".join(json.dumps({"id": i, "max_tokens": MAX_TOKENS, "messages": [
                {"role": "user", "content": f"{i:04d} " + "x" * (CHARS - 5)}]}) + "\n" for i in range(N)))
            cfg = JudgeConfig.load(env={}, overrides={
                "base_url": srv.base_url, "model": "m", "cache": str(Path(d) / "c.sqlite"), "max_cost": budget,
                "price_input": PRICE[0], "price_output": PRICE[1], "concurrency": concurrency})
            stop = ""
            try:
                batch.run_batch(inp, out, cfg)
            except JudgeStop as e:
                stop = str(e)
            rows = [json.loads(x) for x in out.read_text().splitlines()]
    finally:
        batch.build_client = build  # type: ignore[assignment]
    meter = captured["client"].meter

    def bill(usages: list[tuple[int, int]]) -> float:
        return sum(i * PRICE[0] + o * PRICE[1] for i, o in usages) / 1e6

    stop_count = stop.split(" requests not sent")[0].rsplit(" ", 1)[-1] if "requests not sent" in stop else "-"
    return {"mode": mode, "budget": budget, "concurrency": concurrency, "charged": round(meter.cost or 0.0, 4),
            "server_bill": round(bill([(a, b) for _, _, a, b in log]), 4),
            "honest_bill": round(bill([(a, b) for a, b, _, _ in log]), 4), "paid": srv.total_paid,
            "rows_answered": sum("content" in r for r in rows),
            "rows_not_sent": sum("not sent" in r.get("error", "") for r in rows), "stop_line_not_sent": stop_count}


def main() -> int:
    cases = [("inflated", 1.0, 16), ("inflated", 1.0, 1), ("missing", 1.0, 16), ("zero", 1.0, 16),
             ("honest", 1.0, 16), ("honest", 1.0, 64), ("honest", 5.0, 16), ("honest", 5.0, 64)]
    only = sys.argv[1:]
    worst = 0.0
    for mode, budget, conc in cases:
        if only and mode not in only:
            continue
        r = run(mode, budget, conc)
        print(json.dumps(r), flush=True)
        # What the budget must hold: the meter's charge, and the true cost of what was sent (honest usage).
        worst = max(worst, r["charged"] / budget, r["honest_bill"] / budget)
        counted = 0 if r["stop_line_not_sent"] == "-" else int(r["stop_line_not_sent"])  # "-": no stop, none refused
        kept = r["paid"] == r["rows_answered"] and counted == r["rows_not_sent"]
        if not kept:
            print(f"case {mode} {budget} {conc}: paid answers or the not-sent count disagree with the output")
            worst = max(worst, float("inf"))
    print(f"RESULT max_spend_over_budget {worst:.3f} (target <= 1.0)")
    return 0 if worst <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
