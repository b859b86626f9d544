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
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lr_eval.formats import AnswerFormat, alt, label_format, lit, rep, seq
from lr_eval.jsonl import InputError, check_type, read_jsonl, require
from lr_eval.parsing import Parsed, result_to_parsed, unscored
from lr_eval.trust import COPIED_ONLY
from lr_eval.types import ChatRequest, ChatResult

from .judging import JudgeSpec, download_checked
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
#: Our part of the prompt (the user layout, the markup defusing): bump when it changes, so that no cached
#: judgement of another prompt is reused (the official system prompts' digest follows it in the version).
LAYOUT_VERSION = "1"

# Chat markup an untrusted text could use to open a message or a role once a chat template renders it.
_MARKUP = re.compile(r"<\||\|>|\[/?INST\]|</?s>|<<SYS>>|<</SYS>>")


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


def defuse(text: str) -> str:
    """Untrusted text with chat markup made inert (``<|`` → ``‹|``, ``[INST]`` → ``[ INST]``, ...), so that no
    answer or context can open a message or a role once a chat template renders the prompt."""
    def sub(m: re.Match[str]) -> str:
        s = m.group(0)
        return s.replace("<", "‹").replace(">", "›") if "<" in s or ">" in s else "[ " + s[1:]
    return _MARKUP.sub(sub, text)


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

# A verdict token: [[...]] or [...], no newline or nested bracket, at most 60 characters inside (the grammar of
# lr_eval.trust's tokens, so every verdict read here is one the copy check examined).
_VERDICT = re.compile(r"\[\[([^\[\]\n]{1,60})\]\]|(?<!\[)\[([^\[\]\n]{1,60})\](?!\])")
_NOISE = re.compile(r"assistant|[:\s]", re.IGNORECASE)


def _ranking(inside: str) -> str | None:
    """The letters of a verdict's inside (``C > A > B``, ``Assistant A``), or None when it is not a verdict."""
    parts = [_NOISE.sub("", p) for p in inside.split(">")]
    if not parts or any(len(p) != 1 or p.upper() not in LETTERS or not p.isupper() for p in parts):
        return None
    if len(set(parts)) != len(parts):
        return None
    return "".join(parts)


def parse_choice(text: str | None) -> Parsed:
    """The judge's last verdict: ``[[A]]``/``[[B]]`` (a pair) or a ranking ``[[C>A>B]]`` (a ranking in single
    brackets is read too, as the official ranking pattern does; a single letter only in double brackets).

    The value codes the ranking: each letter's 1-based position as a digit, best first (``[[C>A>B]]`` → 312,
    ``[[B]]`` → 2); :func:`ranking_of` decodes it against the item's number of answers.
    """
    if text is None:
        return unscored("no answer")
    found = [r for m in _VERDICT.finditer(text)
             if (m.group(1) is not None or ">" in m.group(2)) and (r := _ranking(m.group(1) or m.group(2)))]
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


def planted_rankings(texts: Sequence[str], n: int) -> set[tuple[int, ...]]:
    """The rankings of n answers that untrusted `texts` spell as verdicts (neutralised ``[ [`` read as ``[[``)."""
    out = set()
    for text in texts:
        parsed = [parse_choice(m.group(0)) for m in _VERDICT.finditer(text.replace("[ [", "[[").replace("] ]", "]]"))]
        out.update(r for p in parsed if p.scored and (r := ranking_of(float(p.value), n)) is not None)  # type: ignore[arg-type]
    return out


def text_fault(reason: str | None) -> bool:
    """Whether an unscored verdict is the evaluated text's doing (its verdict syntax is all the judge's answer
    could have been read from): such a judgement counts against the item, never skips it."""
    return reason is not None and (reason == COPIED_ONLY or reason.startswith("tampered"))


def order_outcome(parsed: Parsed, order: Sequence[int], shown: Sequence[str] = ()) -> dict[str, Any]:
    """One judgement of one order: the official ``compare_shuffled`` score (share of positions whose rank is the
    shown candidate's true rank), or why there is none.

    `shown` are the untrusted texts of the prompt: a verdict one of them spells (in any spelling the parser
    reads) is one the answers could have supplied, so the judgement is ``tampered`` and scores 0.
    """
    n = len(order)
    if not parsed.scored:
        status = "tampered" if text_fault(parsed.reason) else "unscored"
        return {"status": status, "value": 0.0 if status == "tampered" else None, "reason": parsed.reason,
                "order": list(order), "ranking": None}
    ranking = ranking_of(float(parsed.value), n)  # type: ignore[arg-type]
    if ranking is None:
        return {"status": "unscored", "value": None, "reason": f"the verdict does not rank each of the {n} answers",
                "order": list(order), "ranking": None}
    if ranking in planted_rankings(shown, n):
        return {"status": "tampered", "value": 0.0, "order": list(order), "ranking": None,
                "reason": "tampered: the evaluated text spells this verdict"}
    predicted = [ranking.index(pos) for pos in range(n)]  # rank of each shown position
    value = sum(int(p == order[pos]) for pos, p in enumerate(predicted)) / n
    return {"status": "scored", "value": value, "reason": None, "order": list(order),
            "ranking": [order[pos] for pos in ranking]}


# ---------------------------------------------------------------------------------------------- judge spec


class OfficialJudgeSpec(JudgeSpec):
    """The benchmark's generative-judge protocol for :func:`lr_eval.tasks.judging.judge_samples`.

    A doc is an :meth:`Item.to_doc` dict; the "response" is unused (the candidates are in the doc).
    """

    template_id = TEMPLATE_ID
    scale = (0.0, 1.0)

    def __init__(self, task: str, prompts: Prompts, seed: int = SEED, max_tokens: int = 2048,
                 metadata: dict[str, Any] | None = None):
        super().__init__(task, metadata, max_tokens)
        self.prompts = prompts
        self.seed = seed
        self.template_version = prompts.version

    def request(self, item: Item, order: Sequence[int]) -> ChatRequest:
        return official_request(self.prompts.system(len(order)), self.prompts.version, item, order, self.max_tokens)

    def requests(self, doc: dict[str, Any], response: str) -> list[ChatRequest]:
        item = Item.from_doc(doc)
        return [self.request(item, order) for order in orders(item, self.seed)]

    def parse(self, text: str | None) -> Parsed:
        return parse_choice(text)

    def combine(self, doc: dict[str, Any], ratings: list[Parsed]) -> Parsed:
        """The item's accuracy (0-100) as the paper counts it: mean over its orders, a judgement without a
        verdict or a tampered one counting 0; unscored only when no order got any answer read."""
        item = Item.from_doc(doc)
        outcomes = [order_outcome(p, o, self.request(item, o).untrusted)
                    for p, o in zip(ratings, orders(item, self.seed), strict=True)]
        if all(o["status"] == "unscored" for o in outcomes):
            return unscored(outcomes[0]["reason"] or "unscored")
        return Parsed(value=100.0 * sum(o["value"] or 0.0 for o in outcomes) / len(outcomes))

    def call_info(self, doc: dict[str, Any], index: int) -> dict[str, Any]:
        return {"order": list(orders(Item.from_doc(doc), self.seed)[index])}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "official": f"{OFFICIAL_REPO}@{OFFICIAL_COMMIT}:{PROMPT_PATH}",
                "seed": self.seed, "orders": "pairs in both orders; Best-of-N once, seeded shuffle"}


def official_request(system: str, version: str, item: Item, order: Sequence[int],
                     max_tokens: int = 2048) -> ChatRequest:
    """The official judge messages (`system`: :meth:`Prompts.system`) for `item` with its candidates in `order`,
    chat markup defused."""
    question = defuse(item.prompt)
    shown = [defuse(item.candidates[i]) for i in order]
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user_prompt(question, shown)}]
    return ChatRequest.of(messages, temperature=0.0, top_p=1.0, max_tokens=max_tokens, template_id=TEMPLATE_ID,
                          template_version=version, untrusted=[question, *shown],
                          answer_format=answer_format(len(shown)))


def read_generated(system: str, version: str, item: Item, order: Sequence[int], answer: str) -> dict[str, Any]:
    """The outcome of a judgement generated outside the judge client (lm-eval's model as the judge), read through
    the same trust layer as a client's answer."""
    request = official_request(system, version, item, order)
    parsed = result_to_parsed(ChatResult(content=answer), parse_choice, request)
    return order_outcome(parsed, order, request.untrusted)


# ------------------------------------------------------------------------------------------------ judging


def item_record(item: Item, mode: str, outcomes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """What the metrics read (and the per-item output file holds) for one judged item."""
    return {"key": item.key, "task": item.task, "index": item.index, "tasktype": item.tasktype,
            "subtype": item.subtype, "length": item.length, "source": item.source, "mode": mode,
            "orders": outcomes, **extra}


def judge_official(items: Sequence[Item], client: Any, prompts: Prompts, seed: int = SEED, reasks: int = 0,
                   judge: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every item with the official prompts through :func:`judge_samples` (one concurrent batch); one record
    per item and the judge report."""
    from .judging import judge_samples

    spec = OfficialJudgeSpec("longrewardbench", prompts, seed, max_tokens=client.default_max_tokens)
    docs = [item.to_doc() for item in items]
    verdicts, report = judge_samples(spec, client, docs, [""] * len(docs), reasks,
                                     desc="judging Long-RewardBench", judge=judge)
    records = []
    for item, verdict in zip(items, verdicts, strict=True):
        outcomes = []
        for order, call in zip(orders(item, seed), verdict["judgements"], strict=True):
            parsed = Parsed(value=call["rating"], reason=call["reason"])
            shown = spec.request(item, order).untrusted
            outcomes.append({**order_outcome(parsed, order, shown), "rationale": call["rationale"]})
        records.append(item_record(item, "prompt", outcomes, cost_usd=verdict["cost_usd"]))
    return records, report


def reward_outcome(item: Item, scores: Sequence[Any]) -> dict[str, Any]:
    """One comparison of the candidates' LongReward rewards (``ResponseScore``s, in candidate order).

    The higher reward is preferred. A candidate without a reward makes it ``unscored``; rewards that average
    different dimensions (``averaged``) are not the same quantity: ``partial_reward``; equal rewards ``tie``.
    None of these is guessed.
    """
    n = len(item.candidates)
    base = {"order": list(range(n)), "ranking": None, "value": None,
            "rewards": [s.reward for s in scores], "averaged": [list(s.averaged) for s in scores]}
    missing = [i for i, s in enumerate(scores) if s.reward is None]
    if missing:
        why = "; ".join(f"{d}: {r}" for d, r in sorted(scores[missing[0]].unscored.items())) or "no reward"
        return {**base, "status": "unscored", "reason": f"candidate {missing[0]} has no reward ({why})"}
    if len({tuple(sorted(s.averaged)) for s in scores}) > 1:
        return {**base, "status": "partial_reward", "reason": "the rewards average different dimensions"}
    rewards = [float(s.reward) for s in scores]
    if len(set(rewards)) < n:
        return {**base, "status": "tie", "reason": "equal rewards"}
    ranking = sorted(range(n), key=lambda i: -rewards[i])
    value = sum(int(ranking.index(i) == i) for i in range(n)) / n
    return {**base, "status": "scored", "reason": None, "ranking": ranking, "value": value}


def judge_longreward(items: Sequence[Item], scorer: Any, judge: Any, groups_in_flight: int = 16
                     ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every item's candidates scored by `scorer` (``lr_eval.reward.build_scorer(settings, judge)``; one group per
    item, so the context work is shared) and compared; one record per item and the judge report."""
    from lr_eval.records import JudgeReport

    groups = [(defuse(item.prompt), defuse(item.question or item.prompt), [defuse(c) for c in item.candidates])
              for item in items]
    scored = scorer.score_groups(groups, groups_in_flight, None, "LongReward Long-RewardBench")
    records = [item_record(item, "longreward", [reward_outcome(item, scores)],
                           scores=[s.to_dict() for s in scores]) for item, scores in zip(items, scored, strict=True)]
    usage = scorer.client.summary()
    statuses = Counter(r["orders"][0]["status"] for r in records)
    report = JudgeReport(
        model=scorer.client.model, judge=judge.describe(), usage=usage, cost_usd=usage.get("cost_usd"),
        samples={"judged": len(records), "scored": statuses.get("scored", 0),
                 "unscored": len(records) - statuses.get("scored", 0), "statuses": dict(statuses)},
        details={"method": "LongReward (lr_eval.reward.scorer)", "reward_config": scorer.config.to_dict(),
                 "flags": dict(scorer.flag_counts),
                 "calls": {stage: stats.to_dict() for stage, stats in scorer.parse_stats.items()}})
    return records, report.to_dict()
