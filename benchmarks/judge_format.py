"""Does the embedded judge's answer parse? Unconstrained vs constrained decoding, per judge template.

The embedded judge (SmolLM2-135M-Instruct, in-process, CPU) answers every template of the project on a
fixed set of inputs: the demo sample plus 20 short invented ones (question, a short context, an answer).
Each template is asked twice per input, with `--structured off` (free text, today's behaviour) and with the
template's answer format enforced (`--structured on`, llguidance). Printed per template and mode: the
unscored rate (the answer, read through the judge-trust layer, gives no verdict), generated tokens and
seconds per verdict, and for the two list stages the share of empty lists (every input has statements and
relevant information, so an empty list is the judge declining). No re-asks: this measures the first answer.

Templates: LongReward's seven stages (English), judged LongBench (QA 1-3, summaries 1-5), the demo's
rating and, when the official templates are at ../shared/data (or --shared-data), LongBench-Chat and
AlpacaEval. Output budgets are the demo's (a small judge on a CPU).

The RESULT line is the worst constrained unscored rate over the templates (target <= 0.05); the line before
it is constrained seconds per verdict over unconstrained ones (target <= 1.3).

    python benchmarks/judge_format.py [--inputs 21] [--templates helpfulness,statements,...] [--threads 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lr_eval.config import JudgeConfig, build_client
from lr_eval.demo import RATING_FORMAT, RATING_PROMPT, load_sample
from lr_eval.parsing import ask_and_parse
from lr_eval.reward import prompts
from lr_eval.reward.demo import DEMO_MAX_TOKENS
from lr_eval.reward.prompts import neutralise
from lr_eval.reward.scorer import FORMATS, support_batch_format
from lr_eval.types import ChatRequest

PLACES = ["Aldmoor", "Brenholt", "Cressing", "Dunmere", "Elsworth", "Farrow", "Galton", "Hessle", "Ivybridge",
          "Jarrow", "Kestow", "Lindale", "Marlow", "Norham", "Otterby", "Penrith", "Quorn", "Rydal", "Selby",
          "Thirsk"]
THINGS = ["reservoir", "bridge", "library", "harbour", "railway", "school", "mill", "hospital", "market", "canal"]


@dataclass
class Input:
    question: str
    context: str
    answer: str
    reference: str
    statements: list[str] = field(default_factory=list)


def make_inputs(n: int) -> list[Input]:
    """The demo sample, then n-1 short invented ones (seeded: the same inputs every run)."""
    sample = load_sample()
    demo_answer = ("The connection was used more in 2023 because of the drought and repairs at the main works; "
                   "the board plans a second supply to reduce the risk.")
    out = [Input(sample["question"], sample["context"][:1500], demo_answer, demo_answer,
                 ["The connection was used more in 2023.", "The board plans a second supply."])]
    rng = random.Random(15)
    for i in range(n - 1):
        place, thing = PLACES[i % len(PLACES)], THINGS[rng.randrange(len(THINGS))]
        year, cost = rng.randrange(1950, 2020), rng.randrange(2, 90)
        context = (f"The {thing} at {place} was opened in {year}. It was rebuilt in {year + 31} at a cost of "
                   f"{cost} million pounds after a flood. The council now plans to sell the old site.")
        right = rng.random() < 0.5
        said = year if right else year + 7
        answer = f"The {thing} at {place} opened in {said} and was rebuilt after a flood for {cost} million pounds."
        out.append(Input(f"When did the {thing} at {place} open and why was it rebuilt?", context, answer,
                         f"It opened in {year}; it was rebuilt after a flood.",
                         [f"The {thing} at {place} opened in {said}.", f"The {thing} was rebuilt after a flood."]))
    return out


def longreward(stage: str) -> Callable[[Input], ChatRequest]:
    """A request of one LongReward stage for an input (English templates)."""
    t = prompts.template(stage, "en")

    def build(x: Input) -> ChatRequest:
        if stage in ("helpfulness", "logicality", "statements"):
            fields = {"question": x.question, "response": x.answer}
        elif stage == "support":
            fields = {"passages": f'<passage id="1">\n{neutralise(x.context)}\n</passage>',
                      "statement": x.statements[0]}
        elif stage == "support_batch":  # framed as the scorer frames a batch (prompt v3)
            fields = {"passages": f'<passage id="1">{neutralise(x.context)}</passage>',
                      "statements": "\n".join(f'<statement id="S{i + 1}" passages="1">{neutralise(s)}'
                                              f'</statement>' for i, s in enumerate(x.statements)),
                      "ids": "S1-S2"}
        elif stage == "extract":
            fields = {"question": x.question, "position": "0%-100%", "chunk": x.context}
        else:
            fields = {"question": x.question, "information": f'<part position="0%-100%">\n- '
                      f'{neutralise(x.reference)}\n</part>', "response": x.answer}
        raw = tuple(k for k in ("passages", "statements", "information") if k in fields)
        fmt = support_batch_format(["S1", "S2"]) if stage == "support_batch" else FORMATS[stage]
        return ChatRequest.of(t.messages(raw, **fields), max_tokens=DEMO_MAX_TOKENS[stage], temperature=0.0,
                              template_id=t.id, template_version=t.version, answer_format=fmt,
                              untrusted=[v if k in raw else neutralise(v) for k, v in fields.items()])

    return build


def judged_longbench(summary: bool) -> Callable[[Input], ChatRequest]:
    from lr_eval.tasks.longbench_judged import LongBenchJudgeSpec

    spec = LongBenchJudgeSpec("longreward_longbench_judged_" + ("gov_report" if summary else "qasper"),
                              max_tokens=DEMO_MAX_TOKENS["helpfulness"])
    return lambda x: spec.requests({"input": x.question, "answers": [x.reference]}, x.answer)[0]


def demo_rating(x: Input) -> ChatRequest:
    return ChatRequest.of([{"role": "user", "content": RATING_PROMPT.format(question=x.question, answer=x.answer)}],
                          max_tokens=DEMO_MAX_TOKENS["helpfulness"], template_id="demo.rating",
                          template_version="1", answer_format=RATING_FORMAT)


def official(shared: Path) -> dict[str, tuple[Callable[[Input], ChatRequest], Callable[[Any], Any]]]:
    """LongBench-Chat and AlpacaEval with their official templates, when ../shared/data has them."""
    out: dict[str, tuple[Callable[[Input], ChatRequest], Callable[[Any], Any]]] = {}
    chat = shared / "longbench_chat" / "prompt_fs.txt"
    if chat.is_file():
        from lr_eval.tasks.longbench_chat import ChatJudgeSpec

        spec = ChatJudgeSpec("longreward_longbench_chat", {"longbench_chat_template": str(chat)},
                             max_tokens=DEMO_MAX_TOKENS["helpfulness"])
        shots = [{"answer": "A short answer.", "score": "3"}, {"answer": "A correct answer.", "score": "8"},
                 {"answer": "A wrong answer.", "score": "1"}]
        out["longbench_chat"] = (lambda x: spec.requests({"query": x.question, "answer": x.reference,
                                                          "judge_examples": shots}, x.answer)[0], spec.parse)
    alpaca = shared / "alpacaeval" / "annotator_template_alpaca_eval_clf.txt"
    if alpaca.is_file():
        from lr_eval.tasks.alpacaeval2 import FORMAT, Annotator

        ann = Annotator(alpaca.read_text(encoding="utf-8"))
        out["alpacaeval2"] = (lambda x: ann.request(x.question, x.reference, x.answer), FORMAT.parse)
    return out


#: List verdicts: every input has statements and relevant information, so an empty list is a judge declining.
LIST_TEMPLATES = ("longreward.statements", "longreward.extract")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, default=21, help="the demo sample + N-1 invented inputs (default 21)")
    ap.add_argument("--templates", default="", help="comma-separated subset of the template names")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--short", action="store_true",
                    help="smaller output budgets (ratings 24 tokens, lists 64, batched support 96): for a loaded CPU")
    ap.add_argument("--shared-data", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
    args = ap.parse_args(argv)
    if args.short:
        DEMO_MAX_TOKENS.update(helpfulness=24, logicality=24, completeness=24, support=32, statements=64,
                               extract=64, support_batch=96)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    templates: dict[str, tuple[Callable[[Input], ChatRequest], Callable[[Any], Any]]] = {
        f"longreward.{s}": (longreward(s), (support_batch_format(["S1", "S2"]) if s == "support_batch"
                                            else FORMATS[s]).parse)
        for s in ("helpfulness", "logicality", "statements", "support", "support_batch", "extract", "completeness")}
    templates["longbench_judged.qa"] = (judged_longbench(False), judged_longbench(False)(make_inputs(1)[0])
                                        .answer_format.parse)
    templates["longbench_judged.summary"] = (judged_longbench(True), judged_longbench(True)(make_inputs(1)[0])
                                             .answer_format.parse)
    templates["demo.rating"] = (demo_rating, RATING_FORMAT.parse)
    templates.update(official(Path(args.shared_data)))
    if args.templates:
        keep = set(args.templates.split(","))
        templates = {k: v for k, v in templates.items() if k in keep or k.split(".")[-1] in keep}
    inputs = make_inputs(args.inputs)
    off = build_client(JudgeConfig(backend="embedded", cache="none", structured="off"), show_progress=False)
    on = build_client(JudgeConfig(backend="embedded", cache="none", structured="on"), show_progress=False,
                      backend=off.backend)
    print(f"embedded judge {off.model}, {len(inputs)} inputs x {len(templates)} templates, CPU", flush=True)
    rows = []
    totals = {"off": [0.0, 0, 0], "on": [0.0, 0, 0]}  # seconds, tokens, verdicts
    for name, (build, parse) in templates.items():
        row: dict[str, Any] = {"template": name}
        parser = _as_parsed(parse)
        for mode, client in (("off", off), ("on", on)):
            unscored = tokens = empty = 0
            seconds = 0.0
            for x in inputs:
                req = build(x)
                t0 = time.perf_counter()
                parsed, results = client.run_coroutine(
                    lambda req=req, client=client, p=parser: ask_and_parse(client, req, p, reasks=0))
                seconds += time.perf_counter() - t0
                tokens += sum(r.usage.output_tokens for r in results)
                unscored += int(not parsed.scored)
                empty += int(parsed.scored and getattr(parsed, "items", None) == ())
            n = len(inputs)
            row[mode] = (unscored / n, tokens / n, seconds / n)
            row[f"empty_{mode}"] = empty / n
            totals[mode][0] += seconds
            totals[mode][1] += tokens
            totals[mode][2] += n
        rows.append(row)
        print(f"{name:28s} unscored off {row['off'][0]:5.2f} on {row['on'][0]:5.2f} | tokens/verdict off "
              f"{row['off'][1]:6.1f} on {row['on'][1]:6.1f} | s/verdict off {row['off'][2]:6.2f} on "
              f"{row['on'][2]:6.2f}" + (f" | empty list off {row['empty_off']:4.2f} on {row['empty_on']:4.2f}"
                                        if name in LIST_TEMPLATES else ""), flush=True)
    s_off = totals["off"][0] / totals["off"][2]
    s_on = totals["on"][0] / totals["on"][2]
    print(f"all templates: unscored off {_mean(rows, 'off'):.3f} on {_mean(rows, 'on'):.3f}; s/verdict off "
          f"{s_off:.2f} on {s_on:.2f}")
    print(f"constrained_seconds_per_verdict_ratio {s_on / s_off:.2f} (target <= 1.3)")
    worst = max(r["on"][0] for r in rows)
    print(f"RESULT embedded_unscored_rate_constrained {worst:.3f} (target <= 0.05)")
    return 0


def _as_parsed(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """AlpacaEval's parse gives a preference (or None); the others a Parsed."""
    from lr_eval.parsing import Parsed, unscored

    def go(text: Any) -> Parsed:
        p = parse(text)
        if isinstance(p, Parsed):
            return p
        return Parsed(value=float(p)) if p is not None else unscored("neither m nor M")

    return go


def _mean(rows: list[dict[str, Any]], mode: str) -> float:
    return sum(r[mode][0] for r in rows) / len(rows)


if __name__ == "__main__":
    sys.exit(main())
