"""Long-RewardBench (LCM-Lab/Long-RM, arXiv 2510.06915): how good is a judge at long context.

1,900 items in 7 tasks (Cite, Code, ICL, LongQA, Math, Safety, Summ), one JSONL file per task. Each item is a
long-context prompt (``prompt_template``: chat messages) and either a pair (``chosen`` better than
``rejected``; ``tasktype`` PairWise or absent) or ``candidates`` listed best first (``tasktype`` BestOfN,
``subtype`` the number of candidates). ``source``, ``subtype`` and ``ctx_length_for_length`` (4k ... 128k)
label it. We read the records as the official evaluator does (``evaluate/evaluating/longreward_bench/`` at
commit :data:`OFFICIAL_COMMIT`): the task prompt is the contents of ``prompt_template`` joined by a blank
line, records are filtered by ``tasktype`` (a record without one is always kept), and ``index`` is the
record's position in its file.

Two ways to judge an item, both through the one judge client (cache, budget, resume):

* ``prompt`` (the benchmark's generative-judge protocol): the official system prompts (``PAIR_SYSTEM_PROMPT``,
  ``RANK_SYSTEM_PROMPT``, read from the pinned official ``utils/prompt.py``) and its user prompt layout
  ("[User Question]" then one "[The Start of Assistant X's Answer]" block per answer). Pairs are asked in
  both orders; a Best-of-N item once, its candidates in a seeded order. The choice is read only from the
  judge's own words (:mod:`lr_eval.trust` through :mod:`lr_eval.parsing`).
* ``longreward``: every candidate scored by the LongReward scorer (``lr_eval.reward.build_scorer``), the
  higher reward preferred (see :mod:`lr_eval.tasks.longrewardbench_metrics` for ties, unscored and
  partial rewards).

Data: a local folder of ``<Task>.jsonl`` files or one such file (``--data`` / ``--metadata
longrewardbench_data`` / ``LR_LONGREWARDBENCH_DATA``), else the hub dataset ``LCM-Lab/LongRewardBench`` at
revision :data:`HUB_REVISION`, each file SHA-256 checked against :data:`HUB_SHA256`.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lr_eval.formats import AnswerFormat, alt, label_format, lit, rep, seq
from lr_eval.jsonl import InputError, check_type, read_jsonl, require
from lr_eval.judge import JudgeClient, gather_or_cancel
from lr_eval.parsing import Parsed, ParseStats, ask_and_parse, result_to_parsed, unscored
from lr_eval.records import SCORED, TAMPERED, TEXT_CAUSE, UNSCORED, JudgeCall, JudgeReport, Verdict, cause_of
from lr_eval.trust import neutralise_markup, template_separators, tokens
from lr_eval.types import ChatRequest, ChatResult

from .data_files import download_checked
from .judged_samples import call_usage, count_verdicts, judge_cost
from .pinned import python_literal

#: The seven tasks, in the official evaluator's default order, and their item counts in the paper.
TASKS: tuple[str, ...] = ("LongQA", "Summ", "Safety", "ICL", "Cite", "Code", "Math")
PAPER_COUNTS: dict[str, int] = {"Cite": 390, "Code": 197, "ICL": 162, "LongQA": 522, "Summ": 429, "Safety": 140,
                                "Math": 60}
FORMATS: tuple[str, ...] = ("PairWise", "BestOfN")
#: The official length buckets (``ctx_length_for_length``), reported for PairWise items.
LENGTHS: tuple[str, ...] = ("4k", "8k", "16k", "32k", "64k", "128k")

#: The official evaluator and prompt file we read (LCM-Lab/Long-RM).
OFFICIAL_REPO = "LCM-Lab/Long-RM"
OFFICIAL_COMMIT = "bbc90f5454ae95e981dfdff71225c301ac03f09e"
PROMPT_PATH = "evaluate/evaluating/longreward_bench/utils/prompt.py"
PROMPT_URL = f"https://raw.githubusercontent.com/{OFFICIAL_REPO}/{OFFICIAL_COMMIT}/{PROMPT_PATH}"
PROMPT_SHA256 = "4c7ce1a40d847a429fb59b1e16e7b0c8eb7f012aaa7285c81ab8db7112520d66"
PROMPTS_KEY, PROMPTS_ENV = "longrewardbench_prompts", "LR_LONGREWARDBENCH_PROMPTS"

#: The hub dataset, pinned. SHA-256 digests are those of the commit's LFS pointers; a file whose digest we
#: could not read from the hub is not downloaded (pass a local copy instead).
HUB_DATASET = "LCM-Lab/LongRewardBench"
HUB_REVISION = "33687e31ca51d78808ca4c620d93de8bca429e4b"
HUB_SHA256: dict[str, str] = {
    "Cite": "5495e4422e8186fb0d4d1304f3558e33f94b435135584284172e27ce69e2e852",
    "Code": "3092057840ba060330b9b58c5625db7d634b33d765c13ee228f3527c8b1a7976",
}
DATA_KEY, DATA_ENV = "longrewardbench_data", "LR_LONGREWARDBENCH_DATA"
SEED = 42

LETTERS = "ABCDEFGHIJ"
TEMPLATE_ID = "longrewardbench.official"
#: Our part of the prompt (the user layout, the markup made inert): bump when it changes, so that no cached
#: judgement of another prompt is reused (the official system prompts' digest follows it in the version).
LAYOUT_VERSION = "2"
#: The scale of an item's value and of each judgement's: the official ``compare_shuffled`` score.
SCALE = (0.0, 1.0)


# ------------------------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class Item:
    """One Long-RewardBench record as the official evaluator reads it."""

    task: str                      # the file's stem (Cite, Code, ...)
    index: int                     # position in its file (0-based), the official ``index``
    tasktype: str                  # "PairWise" or "BestOfN"
    subtype: str | None
    length: str | None             # ctx_length_for_length
    source: str | None
    prompt: str                    # the prompt_template contents joined by a blank line
    question: str | None
    candidates: tuple[str, ...]    # best first: (chosen, rejected) for a pair

    @property
    def key(self) -> str:
        return f"{self.task}:{self.index}"

    def to_doc(self) -> dict[str, Any]:
        return {"task": self.task, "index": self.index, "tasktype": self.tasktype, "subtype": self.subtype,
                "length": self.length, "source": self.source, "prompt": self.prompt, "question": self.question,
                "candidates": list(self.candidates)}

    def labels(self, mode: str) -> dict[str, Any]:
        """What a verdict of this item carries beside its judgements (the metrics group by these)."""
        return {"key": self.key, "task": self.task, "index": self.index, "tasktype": self.tasktype,
                "subtype": self.subtype, "length": self.length, "source": self.source, "mode": mode}

    @staticmethod
    def from_doc(doc: Mapping[str, Any]) -> Item:
        return Item(str(doc["task"]), int(doc["index"]), str(doc["tasktype"]), doc.get("subtype"),
                    doc.get("length"), doc.get("source"), str(doc["prompt"]), doc.get("question"),
                    tuple(str(c) for c in doc["candidates"]))


def _label(rec: dict[str, Any], field: str, path: Path, line: int) -> str | None:
    value = rec.get(field)
    if value is None:
        return None
    check_type(value, (str, int), path, line, field)
    return str(value)


def parse_record(rec: dict[str, Any], task: str, index: int, path: Path, line: int) -> Item:
    """An Item from one JSONL record; an InputError names the file, line and field of a bad one."""
    messages = require(rec, "prompt_template", list, path, line)
    contents = []
    for n, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise InputError(path, line, f"prompt_template[{n}].content", "expected a message with string content")
        contents.append(m["content"])
    if not contents:
        raise InputError(path, line, "prompt_template", "no messages")
    tasktype = _label(rec, "tasktype", path, line) or "PairWise"
    if tasktype == "BestOfN":
        candidates = require(rec, "candidates", list, path, line)
        if len(candidates) < 2 or len(candidates) > len(LETTERS):
            raise InputError(path, line, "candidates", f"expected 2 to {len(LETTERS)} answers, got {len(candidates)}")
        for n, c in enumerate(candidates):
            check_type(c, str, path, line, f"candidates[{n}]")
    elif tasktype == "PairWise":
        candidates = [require(rec, "chosen", str, path, line), require(rec, "rejected", str, path, line)]
    else:
        raise InputError(path, line, "tasktype", f"expected PairWise or BestOfN, got {tasktype!r}")
    question = rec.get("question")
    return Item(task=task, index=index, tasktype=tasktype, subtype=_label(rec, "subtype", path, line),
                length=_label(rec, "ctx_length_for_length", path, line), source=_label(rec, "source", path, line),
                prompt="\n\n".join(contents), question=question if isinstance(question, str) and question else None,
                candidates=tuple(candidates))


def read_items(path: str | Path, task: str | None = None, formats: Sequence[str] = FORMATS) -> list[Item]:
    """The items of one task file (its stem is the task unless `task` is given), filtered by format as the
    official evaluator does: a record without ``tasktype`` is kept whatever the formats."""
    path = Path(path)
    task = task or path.stem
    items: list[Item] = []
    for index, (line, rec) in enumerate(read_jsonl(path)):
        if isinstance(rec, InputError):
            raise rec
        given = rec.get("tasktype")
        if given and given not in FORMATS:
            raise InputError(path, line, "tasktype", f"expected PairWise or BestOfN, got {given!r}")
        if given and given not in formats:
            continue
        items.append(parse_record(rec, task, index, path, line))
    return items


def task_files(metadata: Mapping[str, Any] | None, tasks: Sequence[str] = TASKS) -> list[tuple[str, Path]]:
    """(task, file) for each task: the local file or folder (``longrewardbench_data`` / env), else the hub."""
    metadata = metadata or {}
    source = metadata.get(DATA_KEY) or os.environ.get(DATA_ENV)
    if source:
        where = f"{DATA_KEY} (--data)" if metadata.get(DATA_KEY) else DATA_ENV
        path = Path(str(source)).expanduser()
        if path.is_file():
            return [(path.stem, path)]
        if not path.is_dir():
            raise FileNotFoundError(f"{where}: {path} does not exist")
        missing = [t for t in tasks if not (path / f"{t}.jsonl").is_file()]
        if missing:
            raise FileNotFoundError(f"{where}: {path} has no {', '.join(m + '.jsonl' for m in missing)}")
        return [(t, path / f"{t}.jsonl") for t in tasks]
    return [(t, hub_file(t)) for t in tasks]


def hub_file(task: str) -> Path:
    """``<task>.jsonl`` of the pinned hub revision, downloaded once and SHA-256 checked."""
    if task not in TASKS:
        raise ValueError(f"unknown Long-RewardBench task {task!r} (tasks: {', '.join(TASKS)})")
    hint = f"--data FOLDER (lm-eval: --metadata {DATA_KEY}=FOLDER, or {DATA_ENV})"
    digest = HUB_SHA256.get(task)
    if digest is None:
        raise FileNotFoundError(f"{task}.jsonl: no SHA-256 is pinned for it at {HUB_DATASET}@{HUB_REVISION[:7]}, so "
                                f"it is not downloaded; fetch the dataset yourself and pass {hint}")
    url = f"https://huggingface.co/datasets/{HUB_DATASET}/resolve/{HUB_REVISION}/{task}.jsonl"
    return download_checked(url, f"longrewardbench/{HUB_REVISION[:12]}/{task}.jsonl", digest, hint)


def load_items(metadata: Mapping[str, Any] | None = None, tasks: Sequence[str] = TASKS,
               formats: Sequence[str] = FORMATS) -> list[Item]:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown task format {unknown[0]!r} (formats: {', '.join(FORMATS)})")
    return [item for task, path in task_files(metadata, tasks) for item in read_items(path, task, formats)]


# ------------------------------------------------------------------------------------------------ prompts


@dataclass(frozen=True)
class Prompts:
    """The official generative-judge system prompts (templates as data, from the pinned file)."""

    pair_system: str
    rank_system: str
    version: str

    @staticmethod
    def from_source(text: str, origin: str) -> Prompts:
        pair = python_literal(text, "PAIR_SYSTEM_PROMPT", origin)
        rank = python_literal(text, "RANK_SYSTEM_PROMPT", origin)
        if not isinstance(pair, str) or not isinstance(rank, str):
            raise ValueError(f"{origin}: PAIR_SYSTEM_PROMPT and RANK_SYSTEM_PROMPT must be strings")
        for field in ("{number}", "{pattern}"):
            if field not in rank:
                raise ValueError(f"{origin}: RANK_SYSTEM_PROMPT has no {field}")
        digest = hashlib.sha256((pair + "\0" + rank).encode()).hexdigest()[:12]
        return Prompts(pair, rank, f"{LAYOUT_VERSION}+sha256:{digest}")

    @staticmethod
    def load(metadata: Mapping[str, Any] | None = None) -> Prompts:
        """From ``longrewardbench_prompts`` / env (a local copy of the official file), else the pinned download."""
        metadata = metadata or {}
        value = metadata.get(PROMPTS_KEY) or os.environ.get(PROMPTS_ENV)
        if value:
            path = Path(str(value)).expanduser()
            if not path.is_file():
                where = f"{PROMPTS_KEY} (--prompts)" if metadata.get(PROMPTS_KEY) else PROMPTS_ENV
                raise FileNotFoundError(f"{where}: {path} does not exist")
        else:
            path = download_checked(PROMPT_URL, f"longrewardbench/{OFFICIAL_COMMIT[:12]}/prompt.py", PROMPT_SHA256,
                                    f"--prompts FILE (lm-eval: --metadata {PROMPTS_KEY}=FILE, or {PROMPTS_ENV})")
        return Prompts.from_source(path.read_text(encoding="utf-8"), str(path))

    def system(self, n: int) -> str:
        """The official system prompt for `n` answers: the pair prompt for two (PairWise), else the ranking one."""
        if n == 2:
            return self.pair_system
        pattern = "[[" + ">".join(LETTERS[:n]) + "]]"
        return self.rank_system.format(number=n, pattern=pattern)


def user_prompt(question: str, answers: Sequence[str]) -> str:
    """The official user prompt layout: the question, then each answer between its start and end lines."""
    blocks = [f"[User Question]\n{question}"]
    for letter, answer in zip(LETTERS, answers, strict=False):
        blocks.append(f"[The Start of Assistant {letter}'s Answer]\n{answer}\n[The End of Assistant {letter}'s Answer]")
    return "\n\n".join(blocks)


def orders(item: Item, seed: int = SEED) -> list[tuple[int, ...]]:
    """The orders the item is shown in (position -> candidate index): both for a pair, one seeded shuffle for a
    Best-of-N item (the official evaluator shuffles once at random; we fix the shuffle by item and seed)."""
    n = len(item.candidates)
    if item.tasktype == "PairWise":
        return [(0, 1), (1, 0)]
    order = list(range(n))
    random.Random(f"{item.key}:{seed}").shuffle(order)
    return [tuple(order)]


def answer_format(n: int) -> AnswerFormat:
    """``[[A]]``/``[[B]]`` for a pair, ``[[X>Y>...]]`` of n letters otherwise (a grammar linear in n; a letter
    named twice is left to the parser, which does not read it as a ranking)."""
    if n == 2:
        return label_format("longrewardbench.pair", ["A", "B"], parse_choice)
    letter = alt(*(lit(x) for x in LETTERS[:n]))
    tail = seq(lit("[["), letter, rep(seq(lit(">"), letter), n - 1, n - 1), lit("]]"))
    return AnswerFormat(f"longrewardbench.rank{n}", lambda _budget: tail, parse_choice)


# ------------------------------------------------------------------------------------------------ parsing

_NOISE = re.compile(r"assistant|[:\s]", re.IGNORECASE)


def _ranking(inside: str) -> str | None:
    """The letters of a verdict's inside (``C > A > B``, ``Assistant A``), or None when it is not a verdict."""
    parts = [_NOISE.sub("", p) for p in inside.split(">")]
    if not parts or any(len(p) != 1 or p not in LETTERS for p in parts):
        return None
    if len(set(parts)) != len(parts):
        return None
    return "".join(parts)


def parse_choice(text: str | None) -> Parsed:
    """The judge's last verdict among the tokens of the one verdict grammar (:func:`lr_eval.trust.tokens`):
    ``[[A]]``/``[[B]]`` (a pair) or a ranking ``[[C>A>B]]`` (a ranking in single brackets is read too, as the
    official ranking pattern does; a single letter only in double brackets).

    The value codes the ranking: each letter's 1-based position as a digit, best first (``[[C>A>B]]`` → 312,
    ``[[B]]`` → 2); :func:`ranking_of` decodes it against the item's number of answers.
    """
    if text is None:
        return unscored("no answer")
    found = [r for t in tokens(text) if (t.double or ">" in t.inside) and (r := _ranking(t.inside))]
    if not found:
        return unscored("no [[A]]/[[B]] choice or [[A>B>...]] ranking in the answer", text)
    return Parsed(value=float("".join(str(LETTERS.index(c) + 1) for c in found[-1])), raw=text)


def ranking_of(value: float, n: int) -> tuple[int, ...] | None:
    """Positions best first (0-based) from a :func:`parse_choice` code, None unless it ranks all n answers
    (a single letter ranks a pair: the other answer is second)."""
    digits = [int(d) - 1 for d in str(int(value))]
    if n == 2 and len(digits) == 1:
        digits.append(1 - digits[0])
    if sorted(digits) != list(range(n)):
        return None
    return tuple(digits)


def order_call(parsed: Parsed, order: Sequence[int], **details: Any) -> JudgeCall:
    """One judgement of one order as a judge call: its value is the official ``compare_shuffled`` score (the
    share of shown positions whose rank is the shown candidate's true rank); a tampered verdict (one the
    evaluated answers could have supplied, :mod:`lr_eval.trust`) scores the minimum, 0; an unscored one has
    none. ``details``: the order shown, the ranking read (candidate indexes, best first), what the caller adds."""
    n = len(order)
    base = {"order": list(order), "ranking": None, **details}
    if parsed.tampered:
        return JudgeCall(status=TAMPERED, value=SCALE[0], cause=TEXT_CAUSE, reason=parsed.reason, details=base)
    if not parsed.scored:
        return JudgeCall(status=UNSCORED, cause=cause_of(UNSCORED), reason=parsed.reason, details=base)
    ranking = ranking_of(float(parsed.value), n)  # type: ignore[arg-type]  # scored: value is a float
    if ranking is None:
        return JudgeCall(status=UNSCORED, cause=cause_of(UNSCORED),
                         reason=f"the verdict does not rank each of the {n} answers", details=base)
    predicted = [ranking.index(pos) for pos in range(n)]  # rank of each shown position
    value = sum(int(p == order[pos]) for pos, p in enumerate(predicted)) / n
    return JudgeCall(status=SCORED, value=value, details={**base, "ranking": [order[pos] for pos in ranking]})


def item_verdict(labels: Mapping[str, Any], calls: Sequence[JudgeCall], model: str | None = None,
                 version: str | None = None, cost_usd: float | None = None, **details: Any) -> Verdict:
    """An item's verdict from its judgements (one per order shown, or one reward comparison).

    Tampered when any judgement is (0, the scale's minimum: a verdict the evaluated answers could have supplied
    never counts for the judge); unscored when none was read; else scored, its value the official per-item
    score: the mean over its judgements, one without a value counted 0. `labels`: :meth:`Item.labels`.
    """
    tampered = next((c for c in calls if c.status == TAMPERED), None)
    if tampered is not None:
        status, value, reason = TAMPERED, SCALE[0], tampered.reason
    elif all(c.status == UNSCORED for c in calls):
        status, value, reason = UNSCORED, None, calls[0].reason if calls else "no judgement"
    else:
        status, value, reason = SCORED, sum(c.value or 0.0 for c in calls) / len(calls), None
    judge = {"model": model, "template": f"{TEMPLATE_ID}@{version}"} if model else {}
    return Verdict(status=status, scale=SCALE, value=value, cause=cause_of(status), reason=reason,
                   calls=list(calls), judge=judge, cost_usd=cost_usd, details={**labels, **details})


# ---------------------------------------------------------------------------------------------- requests


def separators(n: int) -> tuple[str, ...]:
    """The official user layout's own lines for n answers: an answer that spells one broke the prompt's fences."""
    return template_separators(user_prompt("{question}", ["{answer}"] * n))


#: The official evaluator's cut of an over-long prompt (``utils/prompt.py``, ``get_prompt``): the judge's
#: chat-templated token ids, when there are CUT_LIMIT or more, keep the first CUT_HEAD and the last CUT_TAIL.
CUT_LIMIT, CUT_HEAD, CUT_TAIL = 131072, 65536, 65531


class PromptCutter:
    """The official middle cut with the judge's tokenizer, for a judge reached by chat messages.

    The official evaluator templates the messages, cuts the token ids and decodes them into the raw prompt
    it generates from. A chat endpoint applies the template itself, so the cut is carried into the user
    message: its content becomes the decoded prompt less the template's text before and after the user's
    part, and templating the result gives back the official prompt string. A cut that reaches into the
    system prompt or the template (a window far smaller than the prompt's fixed parts) is an error.
    """

    def __init__(self, tokenizer: Any, name: str):
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"--cut-tokenizer {name}: the tokenizer has no chat template")
        self.tokenizer, self.name = tokenizer, name

    def _ids(self, messages: list[dict[str, str]]) -> list[int]:
        ids = self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        return list(ids["input_ids"] if isinstance(ids, Mapping) else ids)  # transformers 5 gives an encoding

    def __call__(self, messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], int | None]:
        """(messages, templated tokens before the cut) when cut; (messages unchanged, None) when short enough."""
        ids = self._ids(messages)
        if len(ids) < CUT_LIMIT:
            return messages, None
        prompt = self.tokenizer.decode(ids[:CUT_HEAD] + ids[len(ids) - CUT_TAIL:])
        whole = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        user = messages[-1]["content"]
        at = whole.rfind(user)
        before, after = whole[:at], whole[at + len(user):]
        if at < 0 or not prompt.startswith(before) or not prompt.endswith(after) or \
                len(before) + len(after) > len(prompt):
            raise ValueError(f"--cut-tokenizer {self.name}: the official cut reaches outside the user message")
        return [*messages[:-1], {"role": "user", "content": prompt[len(before):len(prompt) - len(after)]}], len(ids)


def official_request(system: str, version: str, item: Item, order: Sequence[int], max_tokens: int = 2048,
                     cut: PromptCutter | None = None) -> tuple[ChatRequest, int | None]:
    """The official judge messages (`system`: :meth:`Prompts.system`) for `item` with its candidates in `order`,
    and the templated tokens they had when `cut` cut them (else None). Chat markup in the untrusted texts is
    made inert (``lr_eval.trust.neutralise_markup``) and the candidates are named as the evaluated texts, so
    that only the judge's own words are read."""
    question = neutralise_markup(item.prompt)
    shown = [neutralise_markup(item.candidates[i]) for i in order]
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user_prompt(question, shown)}]
    cut_from = None
    if cut is not None:
        messages, cut_from = cut(messages)
    request = ChatRequest.of(messages, temperature=0.0, top_p=1.0, max_tokens=max_tokens, template_id=TEMPLATE_ID,
                             template_version=version, untrusted=[question, *shown],
                             evaluated=[item.candidates[i] for i in order], separators=separators(len(order)),
                             answer_format=answer_format(len(shown)))
    return request, cut_from


def read_generated(system: str, version: str, item: Item, order: Sequence[int], answer: str) -> JudgeCall:
    """The judgement of an answer generated outside the judge client (lm-eval's model as the judge), read
    through the same trust layer as a client's answer."""
    request, _ = official_request(system, version, item, order)
    parsed = result_to_parsed(ChatResult(content=answer), parse_choice, request)
    call = order_call(parsed, order)
    call.template_id, call.template_version, call.answer = TEMPLATE_ID, version, answer
    return call


# ------------------------------------------------------------------------------------------------ judging


def judge_official(items: Sequence[Item], client: JudgeClient, prompts: Prompts, seed: int = SEED,
                   reasks: int = 0, judge: str | None = None,
                   cut: PromptCutter | None = None) -> tuple[list[Verdict], JudgeReport]:
    """Every item with the official prompts, in one concurrent batch through the judge client (cache, budget,
    resume; every answer read by :func:`lr_eval.parsing.ask_and_parse`); one verdict per item, the report.
    With `cut`, prompts of CUT_LIMIT templated tokens or more are cut as the official evaluator cuts them
    (each such judgement says from how many tokens); without it they are sent whole."""
    plan = [(i, order, *official_request(prompts.system(len(order)), prompts.version, item, order,
                                         client.default_max_tokens, cut))
            for i, item in enumerate(items) for order in orders(item, seed)]
    stats = ParseStats()

    async def run_all() -> list[tuple[Parsed, list[ChatResult]]]:
        with client.progress("judging Long-RewardBench", len(plan)):
            return await gather_or_cancel([ask_and_parse(client, req, parse_choice, reasks, stats)
                                           for _, _, req, _ in plan])

    outcomes = client.run_coroutine(run_all)
    per_item: list[list[tuple[JudgeCall, list[ChatResult]]]] = [[] for _ in items]
    for (i, order, _, n), (parsed, results) in zip(plan, outcomes, strict=True):
        call = order_call(parsed, order)
        if n is not None:
            call.details["cut_from_tokens"] = n
        call.template_id, call.template_version = TEMPLATE_ID, prompts.version
        call.answer = results[0].content if results[0].ok else None
        call.usage, call.cost_usd = call_usage(results), judge_cost(results, client)
        if len(results) > 1:
            call.details["reask_answer"] = results[-1].content
        per_item[i].append((call, results))
    verdicts = [item_verdict(item.labels("prompt"), [c for c, _ in calls], client.model, prompts.version,
                             judge_cost([r for _, rs in calls for r in rs], client))
                for item, calls in zip(items, per_item, strict=True)]
    report = JudgeReport(
        model=client.model, judge=judge, template_id=TEMPLATE_ID, template_version=prompts.version,
        samples={**count_verdicts(verdicts), **judgement_counts(verdicts)}, usage=client.summary(),
        cost_usd=None if client.meter.price is None else round(sum(v.cost_usd or 0.0 for v in verdicts), 6),
        details={"official": f"{OFFICIAL_REPO}@{OFFICIAL_COMMIT}:{PROMPT_PATH}", "seed": seed, "reasks": reasks,
                 "orders": "pairs in both orders; Best-of-N once, seeded shuffle", "sample_scale": list(SCALE),
                 "calls": stats.to_dict(),
                 "cut": None if cut is None else {"tokenizer": cut.name, "limit": CUT_LIMIT, "head": CUT_HEAD,
                                                  "tail": CUT_TAIL,
                                                  "judgements_cut": sum(n is not None for *_, n in plan)}})
    return verdicts, report


def judgement_counts(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """The judge report's counts of judgements (orders or reward comparisons): by status, ties, partial rewards."""
    calls = [c for v in verdicts for c in v.calls]
    return {"judgements": {s: sum(c.status == s for c in calls) for s in (SCORED, TAMPERED, UNSCORED)},
            "ties": sum(bool(c.details.get("tie")) for c in calls),
            "partial_reward": sum(bool(c.details.get("partial_reward")) for c in calls)}


def reward_call(item: Item, scores: Sequence[Any]) -> JudgeCall:
    """One comparison of the candidates' LongReward rewards (``ResponseScore``s, in candidate order).

    The higher reward is preferred. A candidate with a dimension the evaluated text could have supplied makes
    the comparison tampered (0: no answer's tampering counts for the judge); one without a reward makes it
    unscored; rewards that average different dimensions (``averaged``) are not the same quantity: unscored,
    ``partial_reward``; equal rewards are a ``tie``: scored 0, no ranking. None of these is guessed.
    """
    n = len(item.candidates)
    details: dict[str, Any] = {"order": list(range(n)), "ranking": None, "rewards": [s.reward for s in scores],
                               "averaged": [list(s.averaged) for s in scores]}
    usage = {k: sum(int(s.usage.get(k) or 0) for s in scores) for k in ("calls", "input_tokens", "output_tokens")}
    tampered = [(i, d, r) for i, s in enumerate(scores) for d, r in sorted(s.tampered.items())]
    if tampered:
        i, dim, why = tampered[0]
        return JudgeCall(status=TAMPERED, value=SCALE[0], cause=TEXT_CAUSE, usage=usage, details=details,
                         reason=f"candidate {i}: {dim}: {why}")
    missing = [i for i, s in enumerate(scores) if s.reward is None]
    if missing:
        why = "; ".join(f"{d}: {r}" for d, r in sorted(scores[missing[0]].unscored.items())) or "no reward"
        return JudgeCall(status=UNSCORED, cause=cause_of(UNSCORED), usage=usage, details=details,
                         reason=f"candidate {missing[0]} has no reward ({why})")
    if len({tuple(sorted(s.averaged)) for s in scores}) > 1:
        return JudgeCall(status=UNSCORED, cause=cause_of(UNSCORED), usage=usage,
                         details={**details, "partial_reward": True},
                         reason="partial_reward: the rewards average different dimensions")
    rewards = [float(s.reward) for s in scores]
    if len(set(rewards)) < n:
        return JudgeCall(status=SCORED, value=SCALE[0], usage=usage, details={**details, "tie": True},
                         reason="equal rewards")
    ranking = sorted(range(n), key=lambda i: -rewards[i])
    value = sum(int(ranking.index(i) == i) for i in range(n)) / n
    return JudgeCall(status=SCORED, value=value, usage=usage, details={**details, "ranking": ranking})


def judge_longreward(items: Sequence[Item], scorer: Any, judge: Any, groups_in_flight: int = 16
                     ) -> tuple[list[Verdict], JudgeReport]:
    """Every item's candidates scored by `scorer` (``lr_eval.reward.build_scorer(settings, judge)``; one group per
    item, so the context work is shared) and compared; one verdict per item (the candidates' score records in
    its ``scores``) and the judge report."""
    groups = [(neutralise_markup(item.prompt), neutralise_markup(item.question or item.prompt),
               [neutralise_markup(c) for c in item.candidates]) for item in items]
    scored = scorer.score_groups(groups, groups_in_flight, None, "LongReward Long-RewardBench")
    model = scorer.client.model
    verdicts = [item_verdict(item.labels("longreward"), [reward_call(item, scores)], model,
                             scores=[s.to_dict() for s in scores])
                for item, scores in zip(items, scored, strict=True)]
    for v in verdicts:
        v.judge = {"model": model, "method": "LongReward"}
    usage = scorer.client.summary()
    report = JudgeReport(
        model=model, judge=judge.describe(), usage=usage, cost_usd=usage.get("cost_usd"),
        samples={**count_verdicts(verdicts), **judgement_counts(verdicts)},
        details={"method": "LongReward (lr_eval.reward.scorer)", "reward_config": scorer.config.to_dict(),
                 "tokenizer": scorer.tokenizer_label,
                 "sample_scale": list(SCALE), "flags": dict(scorer.flag_counts),
                 "calls": {stage: stats.to_dict() for stage, stats in scorer.parse_stats.items()}})
    return verdicts, report
