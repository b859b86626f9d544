"""`lr-eval demo`: end to end on the embedded model, offline.

A real model (SmolLM2-135M-Instruct, embedded) answers a question about a
bundled long-context sample, then the judge (the embedded model again unless
one is configured) rates the answer through the same client every score uses.
The parts add their own steps through the `lr_eval.demo` entry-point group
(e.g. the LongReward scores), so the demo grows as they land.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from rich.markup import escape

from .backends import TransformersBackend
from .cache import ResponseCache
from .config import JudgeConfig, add_judge_args, build_client
from .embedded import embedded_model_path
from .formats import rating_format
from .judge import JudgeClient
from .plugins import load_plugins
from .parsing import ask_and_parse, parse_bracket_score
from .progress import console
from .report import print_usage
from .types import ChatRequest

RATING_TEMPLATE = ("demo.rating", "1")
RATING_FORMAT = rating_format("demo.rating", 1, 10, lambda text: parse_bracket_score(text, 1, 10))
SMALL_JUDGE_WARNING = ("the embedded judge is a 135M model: its numbers say little about the answer. Configure a real "
                       "judge (--model, --base-url) for scores that mean something.")
RATING_PROMPT = """You are grading an answer to a question about a document you cannot see.
Judge only whether the answer addresses the question clearly and sensibly.
Write one or two sentences of reasoning, then end with a rating from 1 (useless) to 10 (excellent) written as [[N]].

<question>
{question}
</question>

<answer>
{answer}
</answer>"""


@dataclass
class DemoContext:
    """What a demo step receives."""

    sample: dict[str, Any]
    answer: str
    judge: JudgeClient
    results: dict[str, Any] = field(default_factory=dict)


def load_sample() -> dict[str, Any]:
    return dict(json.loads((resources.files("lr_eval") / "data" / "demo_sample.json").read_text(encoding="utf-8")))


def run_demo(cfg: JudgeConfig) -> int:
    sample = load_sample()
    console.rule("[bold]longreward-eval demo")
    console.print(f"sample: {sample['id']} ({len(sample['context'].split())} words)\nquestion: {sample['question']}")
    with console.status("preparing the embedded model (first run converts the GGUF, ~30 s)"):
        model_dir = embedded_model_path()
    cache_path = cfg.cache_path()
    answerer = JudgeClient(TransformersBackend(model_dir, model="SmolLM2-135M-Instruct"),
                           cache=ResponseCache(cache_path) if cache_path else None, show_progress=False)
    # v2: the report, then the question. With v1's instruction-first layout the embedded model restated the
    # question, and the judge rightly found no factual statement in that answer to check.
    prompt = f"{sample['context']}\n\nBased on the report above: {sample['question']}"
    with console.status("the embedded model is answering"):
        res = answerer.run([ChatRequest.of([{"role": "user", "content": prompt}], max_tokens=120,
                                           template_id="demo.answer", template_version="2")])[0]
    if not res.ok:
        console.print(f"[red]the model could not answer: {res.error}")
        return 1
    answer = (res.content or "").strip()
    console.print(f"\n[bold]answer[/] ({res.usage.output_tokens} tokens):\n{escape(answer)}\n")

    if not cfg.configured:
        cfg.backend = "embedded"
    # The embedded judge reuses the already loaded answering model.
    judge = build_client(cfg, backend=answerer.backend if cfg.backend == "embedded" else None)
    console.print(f"judge: {cfg.describe()}")
    req = ChatRequest.of([{"role": "user", "content": RATING_PROMPT.format(question=sample["question"],
                                                                         answer=answer)}],
                         max_tokens=64, template_id=RATING_TEMPLATE[0], template_version=RATING_TEMPLATE[1],
                         answer_format=RATING_FORMAT)
    console.print("answer formats: " + (f"enforced while decoding ({judge.structured}): every verdict has the "
                                        "required form, whatever the judge's skill" if judge.structured else
                                        "not enforced (--structured off): the judge writes free text"))
    if cfg.backend == "embedded":
        console.print(f"[yellow]note:[/] {SMALL_JUDGE_WARNING}")
    parsed, calls = judge.run_coroutine(lambda: ask_and_parse(judge, req, RATING_FORMAT.parse))
    console.print("[bold]judge rationale:[/] " + escape((calls[-1].content or calls[-1].error or "").strip()))
    if parsed.scored:
        console.print(f"[bold green]rating: {parsed.value:g} / 10[/]" + (" (clamped)" if parsed.clamped else "")
                      + (f" (from log-probabilities; likeliest {parsed.argmax:g})" if parsed.from_logprobs else ""))
    else:
        console.print(f"[bold yellow]unscored:[/] {escape(parsed.reason or '')} (counted, never a default score)")

    ctx = DemoContext(sample=sample, answer=answer, judge=judge)
    for name, step in load_plugins("lr_eval.demo"):
        console.rule(f"[bold]{name}")
        step(ctx)
    print_usage(judge.meter)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="end-to-end demo on the embedded model (offline)", description=__doc__)
    add_judge_args(p, dry_run=False)
    p.set_defaults(func=lambda a: run_demo(JudgeConfig.from_args(a)))


