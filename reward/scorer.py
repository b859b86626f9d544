"""LongReward scoring: helpfulness, logicality, faithfulness and completeness of long-context answers.

This is the one implementation that evaluation tasks, DPO training and the
leaderboards call. A judge model (through `lr_eval.judge.JudgeClient`)
rates each response on four dimensions, 0-10; the reward is their weighted
mean over the dimensions that could be scored, and every dimension is kept.

Group scoring is the unit of work: the N sampled responses to one prompt
share one chunking and one embedding of the context, one completeness
extraction per (context, question), and one support judgment per distinct
statement. Identical responses are scored once. The judge cache does the rest
across runs.

Support judging is batched (`RewardConfig.support_batch`, default 8; 1 is
the paper's one call per statement). Once every response of a group has its
statements, the group's distinct statements are packed, in the document
order of their evidence and merged by shared passages, into balanced calls
of at most `support_batch` statements (template `support_batch`): the union
of their retrieved passages is shown once, numbered in document order, each
statement lists the ids of its own top-k passages and is judged against those only,
and the judge answers one `S<n>: [[verdict]]` line per statement. Statements
without a parseable line get one re-ask naming only them; still missing,
they are unscored like any unparseable verdict. A statement alone in its
batch gets the per-statement prompt, byte-identical to `support_batch=1`.
The packing depends only on the responses and their extracted statements,
not on timing, so a rerun sends the same prompts (cache hits).

Policies where the paper is silent (each is flagged in `ResponseScore.flags`
and counted by `LongRewardScorer.flag_counts`):
- empty response (blank after stripping): by rule 0 on helpfulness,
  logicality and completeness, faithfulness not applicable, no judge call
  ("empty_response"); `RewardConfig.empty_policy="unscored"` leaves it unscored.
- no factual statements: faithfulness is None with the reason in `unscored`,
  the reward averages the other dimensions ("no_factual_statements").
- a response whose prompt cannot fit the judge's window
  (`RewardConfig.judge_window`): every dimension unscored, nothing sent
  ("response_too_long").
- a context over `max_context_tokens`: the middle extraction chunks are
  dropped (head and tail kept, as LongBench cuts from the middle), retrieval
  only sees the kept span ("context_truncated"; the audit says what was cut).
- unparseable judge answers after `reasks` re-asks: that verdict is unscored
  with its reason. A statement or document part without a verdict is left out
  of faithfulness or completeness, flagged ("statements_unjudged",
  "extraction_incomplete"); below `min_parsed_fraction` the dimension is
  unscored instead.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import itertools
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lr_eval.formats import (
    AnswerFormat,
    item_block_format,
    label_format,
    label_lines_format,
    rating_format,
)
from lr_eval.judge import JudgeClient, gather_or_cancel, shared_task
from lr_eval.parsing import (
    Parsed,
    ParseStats,
    ask_and_parse,
    judged,
    own_answer,
    parse_bracket_score,
    reask_request,
    unscored,
)
from lr_eval.trust import Token, tokens
from lr_eval.types import ChatRequest, ChatResult

from . import prompts
from .prompts import NO_INFO_AT_ALL, NO_INFO_LABEL, Template, neutralise
from .records import DIMENSIONS, ResponseScore
from .settings import RewardConfig

_FROM_CONFIG: Any = object()  # sentinel: build the embedder / tokenizer named in the config


# ---------------------------------------------------------------------------------------------------------
# configuration and results
# ---------------------------------------------------------------------------------------------------------

def combine(scores: Mapping[str, float | None], weights: Mapping[str, float] | None = None,
            dims: Iterable[str] = DIMENSIONS) -> tuple[float | None, list[str]]:
    """Weighted mean of the scored dimensions among `dims`, and which dimensions it used.

    The agreement ablations use this too, so a leave-one-out reward is computed
    exactly like the full one.
    """
    weights = weights or {}
    used = [d for d in dims if scores.get(d) is not None and weights.get(d, 1.0) > 0]
    if not used:
        return None, []
    total = sum(weights.get(d, 1.0) for d in used)
    return sum(weights.get(d, 1.0) * float(scores[d] or 0.0) for d in used) / total, used  # used: scored, not None


# ---------------------------------------------------------------------------------------------------------
# parsers for the list and label verdicts (the 0-10 scores use lr_eval.parsing.parse_bracket_score)
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParsedItems(Parsed):
    """A parsed list verdict: `items` are the lines; `value` is their number (0 is a valid "none")."""

    items: tuple[str, ...] = ()


_BULLET = re.compile(r"^\s*(?:[-*•·]+|\(?\d{1,3}[.)、:]|（\d{1,3}）)\s*")


def _markers(text: str, name: str) -> list[Token]:
    """The ``[[name]]`` tokens of `text` (case and spacing free), in the one grammar (`lr_eval.trust.tokens`)."""
    key = " ".join(name.lower().split())
    return [t for t in tokens(text) if t.double and t.key == key]


def parse_item_block(text: str | None, start: str, none: str, end: str = "END") -> ParsedItems:
    """Items listed between [[start]] and [[end]], or none when [[none]] comes last.

    Whichever of the two markers appears last in the answer wins (a judge that
    quotes the format first and answers after is read correctly). A missing
    [[end]] is tolerated: the list runs to the end of the answer.
    """
    if text is None:
        return ParsedItems(value=None, reason="no answer")
    starts, nones = _markers(text, start), _markers(text, none)
    last_start = starts[-1].end if starts else -1
    last_none = nones[-1].end if nones else -1
    if last_start < 0 and last_none < 0:
        return ParsedItems(value=None, reason=f"no [[{start}]] list and no [[{none}]] in the answer", raw=text)
    if last_none > last_start:
        return ParsedItems(value=0.0, raw=text)
    body = text[last_start:]
    stop = _markers(body, end)
    if stop:
        body = body[:stop[0].start]
    items = []
    for line in body.splitlines():
        line = _BULLET.sub("", line).strip()
        if line and not re.fullmatch(r"\[\[.*\]\]", line):
            items.append(line)
    return ParsedItems(value=float(len(items)), items=tuple(items), raw=text)


def parse_statements(text: str | None) -> ParsedItems:
    """The statement list; empty means no factual statement ([[NO STATEMENTS]] of template v1 still reads)."""
    parsed = parse_item_block(text, "STATEMENTS", "NO STATEMENTS")
    if text is not None and not parsed.scored:  # v2 offers no marker: say only what the prompt asked for
        return replace(parsed, reason="no [[STATEMENTS]] list in the answer")
    return parsed


def parse_information(text: str | None) -> ParsedItems:
    return parse_item_block(text, "INFORMATION", "NO RELEVANT INFORMATION")


_LABELS = {
    "fully supported": 1.0, "fully": 1.0, "full": 1.0, "supported": 1.0, "完全支持": 1.0,
    "partially supported": 0.5, "partially": 0.5, "partial": 0.5, "部分支持": 0.5,
    "not supported": 0.0, "not": 0.0, "unsupported": 0.0, "none": 0.0, "不支持": 0.0,
}


def parse_support(text: str | None) -> Parsed:
    """The last [[fully supported]] / [[partially supported]] / [[not supported]] label → 1 / 0.5 / 0."""
    if text is None:
        return unscored("no answer")
    for t in reversed(tokens(text)):
        if t.double and t.key in _LABELS:
            return Parsed(value=_LABELS[t.key], raw=text)
    return unscored("no [[fully/partially/not supported]] label in the answer", text)


# A verdict line of a batched support answer: "S3: [[partially supported]]" (markdown bold and a full-width
# colon tolerated): a label token of the one grammar, right after its id. Anywhere in the answer; per id the
# last line with a known label wins, as in parse_support.
_VERDICT_ID = re.compile(r"(?<![\w\[])S(\d{1,3})\s*\**\s*[:：]\s*\**\s*$")


def parse_support_lines(text: str | None, labels: Sequence[str]) -> dict[str, Parsed]:
    """The verdict of each statement of a batched support answer, by its id ("S1", "S2", ...).

    A statement without a `S<n>: [[label]]` line with a known label is unscored with its reason. Only the
    judge's answer is read: statements and passages reach the judge neutralised, so text copied from them
    cannot form a verdict line.
    """
    if text is None:
        return {lab: unscored("no answer") for lab in labels}
    found: dict[str, float] = {}
    for t in tokens(text):
        m = _VERDICT_ID.search(text, max(0, t.start - 24), t.start) if t.double and t.key in _LABELS else None
        if m:
            found[f"S{int(m.group(1))}"] = _LABELS[t.key]
    return {lab: Parsed(value=found[lab], raw=text) if lab in found else
            unscored(f"no verdict line for {lab} in the answer", text) for lab in labels}


def _support_lines(res: ChatResult, request: ChatRequest, labels: Sequence[str]) -> dict[str, Parsed]:
    """parse_support_lines on the judge's own words only (a verdict line it copied is no verdict)."""
    own = own_answer(res, request)
    verdicts = parse_support_lines(own.text, labels)
    full = parse_support_lines(res.content, labels) if own.removed else verdicts
    verdicts = {lab: judged(own, p, full[lab], res.content or "", NOT_SUPPORTED) for lab, p in verdicts.items()}
    constrained = bool(request.structured and request.answer_format is not None)
    return {lab: replace(p, constrained=constrained) for lab, p in verdicts.items()}


SCORE_MIN, SCORE_MAX = 0.0, 10.0  # the 0-10 scale of every dimension


def parse_score(text: str | None) -> Parsed:
    return parse_bracket_score(text, SCORE_MIN, SCORE_MAX)


# The answer format of each stage (both languages: the verdict markers are English in both): the grammar a
# local judge is held to and the parser every answer goes through, declared together (lr_eval.formats).
_SUPPORT_LABELS = ("fully supported", "partially supported", "not supported")
NOT_SUPPORTED = 0.0  # the lowest support verdict: what a tampered one scores
FORMATS: dict[str, AnswerFormat] = {
    "helpfulness": rating_format("longreward.helpfulness", 0, 10, parse_score),
    "logicality": rating_format("longreward.logicality", 0, 10, parse_score),
    "completeness": rating_format("longreward.completeness", 0, 10, parse_score),
    # v2: the analysis is one paragraph and "no statement" is the empty list (README, "Answer formats")
    "statements": item_block_format("longreward.statements", "STATEMENTS", None, parse_statements, version="2",
                                    one_paragraph=True),
    "extract": item_block_format("longreward.extract", "INFORMATION", "NO RELEVANT INFORMATION",
                                 parse_information),
    "support": label_format("longreward.support", _SUPPORT_LABELS, parse_support, minimum=NOT_SUPPORTED),
}


def support_batch_format(labels: Sequence[str]) -> AnswerFormat:
    """The batched support answer for statements `labels` (S1, S2, ...): analysis, "Verdicts:", one line each."""
    return label_lines_format("longreward.support_batch", labels, _SUPPORT_LABELS,
                              lambda text: _lines_parsed(parse_support_lines(text, labels)), minimum=NOT_SUPPORTED)


def _lines_parsed(verdicts: dict[str, Parsed]) -> Parsed:
    """A batched answer as one verdict: scored when every statement has its line (for the format's checks)."""
    missing = [lab for lab, p in verdicts.items() if not p.scored]
    if missing:
        return unscored(f"no verdict line for {', '.join(missing)}")
    return Parsed(value=float(len(verdicts)))


# Stage-specific re-asks. None of them contains a parseable example verdict: a weak judge that
# parrots the re-ask must come out unscored, not with the example's score (the core REASK_PROMPT
# shows "[[7]]", which such a judge would return verbatim).
_REASK_SCORE = ("Your reply did not end with a verdict in the required format. Reply again with only the "
                "score: an integer from 0 to 10 written inside double square brackets, nothing else.")
REASK_VERSION = "2"  # bump when a re-ask text below changes (it is part of the re-ask's cache key)
REASK = {
    "helpfulness": _REASK_SCORE,
    "logicality": _REASK_SCORE,
    "completeness": _REASK_SCORE,
    "statements": "Your reply did not follow the required format. Reply again with only the list: the line "
                  "[[STATEMENTS]], one statement per line, then [[END]] (with no line between them if there is no "
                  "factual statement).",
    "extract": "Your reply did not follow the required format. Reply again with only the list: the line "
               "[[INFORMATION]], one item per line, then [[END]] (or only [[NO RELEVANT INFORMATION]]).",
    "support": "Your reply did not end with a verdict in the required format. Reply again with only one of "
               "[[fully supported]], [[partially supported]] or [[not supported]], nothing else.",
}


def reask_support_batch(missing: Sequence[str]) -> str:
    """The re-ask of a batched support answer, naming only the statements still without a verdict line.
    It shows no verdict line itself: a judge that parrots it gets nothing parseable."""
    return (f"Your reply has no verdict line for {', '.join(missing)}. Reply again with only the verdict lines of "
            "these statements, one line each: the statement's id, a colon, then its verdict written exactly as "
            "in the instructions, inside double square brackets. Nothing else.")


# ---------------------------------------------------------------------------------------------------------
# the scorer
# ---------------------------------------------------------------------------------------------------------

@dataclass
class _Ask:
    """One verdict with the judge results that produced it."""

    parsed: Parsed
    results: list[ChatResult]
    skipped: str | None = None   # why nothing was sent (prompt over the window, dry run placeholder...)

    @property
    def answer(self) -> str | None:
        for r in reversed(self.results):
            if r.content is not None:
                return r.content
        return None


@dataclass
class _Dim:
    """The outcome of one dimension for one response."""

    value: float | None
    reason: str | None
    audit: dict[str, Any]
    results: list[ChatResult]
    flags: list[str] = field(default_factory=list)
    #: The verdict could be the evaluated text's (lr_eval.trust): `value` is the minimum, `reason` says why.
    tampered: bool = False

    @staticmethod
    def of(a: _Ask, audit: dict[str, Any], flags: list[str] | None = None) -> _Dim:
        """A dimension read from one verdict: a tampered one scores the scale's minimum (0)."""
        p = a.parsed
        value = SCORE_MIN if p.tampered else p.value
        return _Dim(value, p.reason, audit, a.results, flags or [], tampered=p.tampered)


@dataclass
class _Support:
    """The support verdict of one statement, and the judge call(s) behind it."""

    chunks: list[int]                     # its own top-k evidence chunk ids, in document order
    parsed: Parsed
    ask: _Ask                             # shared by every statement of a batch
    label: str | None = None              # its id in a batched call ("S3"); None: a call of its own
    batch_size: int = 1
    passages: list[int] = field(default_factory=list)  # batched: the union of passage ids shown in the call


@dataclass
class _Group:
    """What all responses to one (context, question) share."""

    context: str
    question: str
    lang: str
    fine: list[Any]                       # retrieval chunks (Chunk), in document order
    coarse: list[Any]                     # extraction chunks
    total_chars: int
    context_tokens: int
    dropped: list[str]                    # position labels of extraction chunks cut from the middle
    extraction: asyncio.Future[list[dict[str, Any]]] | None = None
    extraction_asks: list[_Ask] = field(default_factory=list)
    retriever: asyncio.Future[Any] | None = None
    support: dict[str, asyncio.Future[_Support]] = field(default_factory=dict)
    # Batched support (support_batch > 1): each distinct response puts its statements in its slot; once every
    # slot is filled, one round packs the group's distinct statements into support calls.
    slots: list[asyncio.Future[list[str]]] = field(default_factory=list)
    support_round: asyncio.Future[None] | None = None
    flags: list[str] = field(default_factory=list)
    embedded_tokens: int = 0              # context chunks and statements embedded for this group

    by_index: dict[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_index = {c.index: c for c in self.fine}


class LongRewardScorer:
    """Scores responses to long-context questions with the LongReward method.

    `embedder`: an `lr_eval.embed.Embedder`, None for BM25 retrieval, or left out
    to build `config.embedder`. `tokenizer`: the chunking tokenizer object, or
    left out to load `config.tokenizer`. Both are built lazily on first use.
    """

    def __init__(self, client: JudgeClient, config: RewardConfig | None = None, embedder: Any = _FROM_CONFIG,
                 tokenizer: Any = _FROM_CONFIG):
        self.client = client
        self.config = config or RewardConfig()
        self._embedder = embedder
        self._tokenizer = tokenizer
        # named now, while it is known whether the tokenizer comes from the config or was handed in
        self._tokenizer_label: str | None = None if tokenizer is _FROM_CONFIG else str(
            getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
        self._build_lock = threading.Lock()    # lazy loading of the embedder and tokenizer
        self._lock = threading.Lock()          # embedding: one model shared by all groups' threads
        self.parse_stats: dict[str, ParseStats] = {s: ParseStats() for s in prompts.STAGES}
        self.flag_counts: Counter[str] = Counter()
        self.embedded_tokens = 0
        self._count_cached = functools.lru_cache(maxsize=32768)(self._count_uncached)

    # -- lazily built helpers ---------------------------------------------------------------------------
    @property
    def embedder(self) -> Any:
        with self._build_lock:
            if self._embedder is _FROM_CONFIG:
                from lr_eval.embed import build_embedder

                self._embedder = build_embedder(self.config.embedder)
            return self._embedder

    @property
    def tokenizer(self) -> Any:
        with self._build_lock:
            if self._tokenizer is _FROM_CONFIG:
                from .chunking import load_tokenizer

                self._tokenizer = load_tokenizer(self.config.tokenizer)
            return self._tokenizer

    @property
    def tokenizer_label(self) -> str:
        """The chunking tokenizer's stable name: the configured one, the default that loads, or (for an
        object handed in) its `name_or_path`."""
        if self._tokenizer_label is None:
            from .chunking import tokenizer_label

            self._tokenizer_label = tokenizer_label(self.config.tokenizer)
        return self._tokenizer_label

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` under the chunking tokenizer (a proxy for the judge's)."""
        return self._count_cached(text) if text else 0

    def _count_uncached(self, text: str) -> int:
        from .chunking import token_spans

        return len(token_spans(text, self.tokenizer))

    def templates(self, lang: str) -> dict[str, Template]:
        return {s: prompts.template(s, lang) for s in prompts.STAGES}

    # -- public API -------------------------------------------------------------------------------------
    def score(self, context: str, question: str, response: str) -> ResponseScore:
        """Score one response (synchronous)."""
        return self.score_groups([(context, question, [response])])[0][0]

    def score_groups(self, items: Sequence[Any], max_in_flight: int = 16,
                     on_done: Callable[[int, list[ResponseScore]], None] | None = None,
                     desc: str = "LongReward") -> list[list[ResponseScore]]:
        """Score many groups at once (synchronous), all behind one progress bar.

        Each item is (context, question, responses) or a mapping with those keys.
        Up to `max_in_flight` groups are prepared and judged concurrently (this
        bounds the memory of chunk embeddings); all their judge calls are in
        flight together, limited by the client's concurrency. `on_done(i, scores)`
        is called as each group finishes, e.g. to write results incrementally.
        A fatal judge error or a spent budget stops the batch and is raised.
        """
        return self.client.run_coroutine(lambda: self.ascore_groups(items, max_in_flight, on_done, desc))

    async def ascore_groups(self, items: Sequence[Any], max_in_flight: int = 16,
                            on_done: Callable[[int, list[ResponseScore]], None] | None = None,
                            desc: str = "LongReward") -> list[list[ResponseScore]]:
        groups = [_unpack(it) for it in items]
        sem = asyncio.Semaphore(max(1, max_in_flight))
        # A first estimate (4 calls per response); stages grow the bar when they know more.
        estimate = sum(4 * len({x for x in r if x.strip()}) for _, _, r in groups)

        async def one(i: int) -> list[ResponseScore]:
            async with sem:
                res = await self.score_group(*groups[i])
            if on_done is not None:
                on_done(i, res)
            return res

        with self.client.progress(desc, estimate):
            return await gather_or_cancel([one(i) for i in range(len(groups))])

    async def score_group(self, context: str, question: str, responses: Sequence[str]) -> list[ResponseScore]:
        """Score the responses to one prompt, sharing every piece of work that does not depend on the response."""
        if isinstance(responses, str) or not all(isinstance(r, str) for r in responses):
            raise TypeError("responses must be a list of strings")
        g = await self._prepare(context, question)
        unique = list(dict.fromkeys(responses))
        if self.config.support_batch > 1 and "faithfulness" in self.config.enabled():
            loop = asyncio.get_running_loop()
            g.slots = [loop.create_future() for _ in unique]
        scored = await gather_or_cancel([self._score_in_slot(g, r, i) for i, r in enumerate(unique)])
        by_text = dict(zip(unique, scored, strict=True))
        out: list[ResponseScore] = []
        first: dict[str, int] = {}
        for i, r in enumerate(responses):
            if r in first:
                dup = copy.deepcopy(by_text[r])
                dup.audit["duplicate_of"] = first[r]
                dup.usage = {**dup.usage, "calls": 0, "input_tokens": 0, "output_tokens": 0, "note":
                             f"identical to response {first[r]}: scored once"}
                out.append(dup)
            else:
                first[r] = i
                out.append(by_text[r])
        # Shared by the whole group: the completeness extraction and the embedding of context and statements.
        shared = {**_usage([r for a in g.extraction_asks for r in a.results]), "embedded_tokens": g.embedded_tokens,
                  "responses": len(responses), "distinct_responses": len(unique),
                  "distinct_statements": len(g.support)}
        for s in out:
            s.usage["group"] = shared
            self.flag_counts.update(s.flags)
        return out

    # -- group preparation ------------------------------------------------------------------------------
    async def _prepare(self, context: str, question: str) -> _Group:
        cfg = self.config
        lang = cfg.language if cfg.language != "auto" else prompts.detect_language(question, context)
        return await asyncio.to_thread(self._chunk, context, question, lang)

    def _chunk(self, context: str, question: str, lang: str) -> _Group:
        from .chunking import chunk_text

        cfg = self.config
        tok = self.tokenizer
        coarse = chunk_text(context, cfg.extraction_chunk_tokens, tok)
        fine = chunk_text(context, cfg.retrieval_chunk_tokens, tok)
        total_tokens = sum(c.n_tokens for c in coarse)
        total_chars = max(1, len(context))
        dropped: list[str] = []
        flags: list[str] = []
        if cfg.max_context_tokens is not None and total_tokens > cfg.max_context_tokens:
            from .chunking import position_label

            budget = cfg.max_context_tokens
            head: list[Any] = []
            tail: list[Any] = []
            lo, hi, used = 0, len(coarse) - 1, 0
            while lo <= hi:  # alternate head and tail so that the middle is what gets cut
                take_head = len(head) <= len(tail)
                c = coarse[lo] if take_head else coarse[hi]
                if used + c.n_tokens > budget:
                    break
                used += c.n_tokens
                if take_head:
                    head.append(c)
                    lo += 1
                else:
                    tail.append(c)
                    hi -= 1
            kept = head + tail[::-1]
            dropped = [position_label(c, total_chars) for c in coarse[lo:hi + 1]]
            spans = [(c.start, c.end) for c in kept]
            fine = [c for c in fine if any(a <= c.start < b for a, b in spans)]
            coarse = kept
            flags.append("context_truncated")
        return _Group(context=context, question=question, lang=lang, fine=fine, coarse=coarse,
                      total_chars=total_chars, context_tokens=total_tokens, dropped=dropped, flags=flags)

    # -- asking -----------------------------------------------------------------------------------------
    def _request(self, t: Template, stage: str, raw: tuple[str, ...] = (), fmt: AnswerFormat | None = None,
                 evaluated: Sequence[str] = (), **fields: str) -> ChatRequest:
        """The request of one stage; `evaluated` (default: the response field) are the texts under evaluation
        as written, for the copy rule (a statement is the response's, as the judge extracted it)."""
        evaluated = list(evaluated) or [fields[k] for k in ("response", "statement") if k in fields]
        return ChatRequest.of(t.messages(raw, **fields), max_tokens=self.config.max_tokens[stage],
                              temperature=self.config.temperature, template_id=t.id, template_version=t.version,
                              untrusted=[v if k in raw else neutralise(v) for k, v in fields.items()],
                              evaluated=evaluated,
                              answer_format=fmt or FORMATS[stage])

    def _fits(self, t: Template, stage: str, data_tokens: int) -> str | None:
        """Why a prompt cannot be sent (over the judge window), or None when it fits."""
        window = self.config.judge_window
        if window is None:
            return None
        need = self.count_tokens(t.system) + self.count_tokens(t.user) + data_tokens + self.config.max_tokens[stage]
        if need > window:
            return f"prompt needs about {need} tokens with the answer, over the judge window of {window}"
        return None

    async def _ask(self, stage: str, request: ChatRequest, parser: Callable[[str | None], Parsed]) -> _Ask:
        parsed, results = await ask_and_parse(self.client, request, parser, self.config.reasks,
                                              self.parse_stats[stage], reask_prompt=REASK[stage],
                                              reask_tag=f"reask-lr{REASK_VERSION}")
        return _Ask(parsed, results)

    # -- one response -----------------------------------------------------------------------------------
    async def _score_in_slot(self, g: _Group, response: str, slot: int) -> ResponseScore:
        try:
            return await self._score_response(g, response, slot)
        finally:
            self._release(g, slot, [])  # an empty or too long response judges no statement

    async def _score_response(self, g: _Group, response: str, slot: int | None = None) -> ResponseScore:
        cfg = self.config
        tpl = self.templates(g.lang)
        enabled = cfg.enabled()
        s = ResponseScore()
        s.flags.extend(g.flags)
        s.audit = {"language": g.lang, "templates": {k: f"{t.id}@{t.version}" for k, t in tpl.items()},
                   "tokenizer": self.tokenizer_label, "context_tokens": g.context_tokens,
                   "retrieval_chunks": len(g.fine), "extraction_chunks": len(g.coarse)}
        if g.dropped:
            s.audit["context_dropped"] = g.dropped
        text = response.strip()
        if not text:
            return self._empty(s, enabled)
        q_tokens = self.count_tokens(g.question)
        r_tokens = self.count_tokens(text)
        s.audit["response_tokens"] = r_tokens
        too_long = self._fits(tpl["helpfulness"], "helpfulness", q_tokens + r_tokens)
        if too_long:
            s.flags.append("response_too_long")
            for d in enabled:
                s.unscored[d] = f"response of {r_tokens} tokens cannot be shown to the judge: {too_long}"
            return self._finish(s, [], g)

        jobs = {
            "helpfulness": lambda: self._simple(g, "helpfulness", tpl["helpfulness"], text),
            "logicality": lambda: self._simple(g, "logicality", tpl["logicality"], text),
            "faithfulness": lambda: self._faithfulness(g, tpl, text, slot),
            "completeness": lambda: self._completeness(g, tpl, text, q_tokens + r_tokens),
        }
        outcomes: list[_Dim] = await gather_or_cancel([jobs[d]() for d in enabled])
        results: list[ChatResult] = []
        for dim, o in zip(enabled, outcomes, strict=True):
            setattr(s, dim, o.value)
            if o.tampered:
                s.tampered[dim] = o.reason or "tampered"
            elif o.value is None:
                s.unscored[dim] = o.reason or "unscored"
            s.audit[dim] = o.audit
            results.extend(o.results)
            s.flags.extend(f for f in o.flags if f not in s.flags)
        return self._finish(s, results, g)

    def _empty(self, s: ResponseScore, enabled: list[str]) -> ResponseScore:
        s.flags.append("empty_response")
        s.audit["rule"] = "empty response: no judge call"
        for d in enabled:
            if d == "faithfulness":
                s.unscored[d] = "not applicable: an empty response makes no factual statement"
            elif self.config.empty_policy == "zero":
                setattr(s, d, 0.0)
            else:
                s.unscored[d] = "empty response (empty_policy=unscored)"
        return self._finish(s, [], None)

    def _finish(self, s: ResponseScore, results: list[ChatResult], g: _Group | None) -> ResponseScore:
        weights = dict(zip(DIMENSIONS, self.config.weights, strict=True))
        s.reward, s.averaged = combine(s.scores(), weights, self.config.enabled())
        s.usage = _usage(results)
        return s

    async def _simple(self, g: _Group, stage: str, t: Template, response: str) -> _Dim:
        """Helpfulness or logicality: question + response, analysis, then [[0-10]]."""
        req = self._request(t, stage, question=g.question, response=response)
        a = await self._ask(stage, req, parse_score)
        return _Dim.of(a, _verdict_audit(a))

    # -- faithfulness -----------------------------------------------------------------------------------
    async def _faithfulness(self, g: _Group, tpl: dict[str, Template], response: str,
                            slot: int | None = None) -> _Dim:
        try:
            return await self._faithfulness_of(g, tpl, response, slot)
        finally:
            self._release(g, slot, [])  # no statements to judge (or failed): the group round need not wait

    async def _faithfulness_of(self, g: _Group, tpl: dict[str, Template], response: str,
                               slot: int | None) -> _Dim:
        cfg = self.config
        req = self._request(tpl["statements"], "statements", question=g.question, response=response)
        ext = await self._ask("statements", req, parse_statements)
        audit: dict[str, Any] = {"extraction": _verdict_audit(ext)}
        results = list(ext.results)
        flags: list[str] = []
        parsed = ext.parsed
        if self.client.dry_run:
            # Nothing was answered: estimate with one statement per sentence, as the paper's judge roughly does.
            parsed = ParsedItems(value=1.0, items=tuple(_sentences(response)) or (response,))
            flags.append("dry_run_estimate")
        if parsed.tampered:
            return _Dim(SCORE_MIN, f"statement extraction: {parsed.reason}", audit, results, flags, tampered=True)
        if not parsed.scored:
            return _Dim(None, f"statement extraction: {parsed.reason}", audit, results, flags)
        statements = list(dict.fromkeys(" ".join(x.split()) for x in getattr(parsed, "items", ())))
        if cfg.max_statements is not None and len(statements) > cfg.max_statements:
            audit["statements_dropped"] = statements[cfg.max_statements:]
            statements = statements[:cfg.max_statements]
            flags.append("statements_capped")
        if not statements:
            flags.append("no_factual_statements")
            audit["statements"] = []
            return _Dim(None, "not applicable: the response makes no factual statement", audit, results, flags)

        if cfg.support_batch > 1:
            verdicts = await self._supports_batched(g, tpl, statements, slot)
        else:
            verdicts = await self._supports(g, tpl["support"], statements)
        rows = []
        judged: list[float] = []
        tampered: list[str] = []
        counted: set[int] = set()
        for st, v in zip(statements, verdicts, strict=True):
            if id(v.ask) not in counted:  # a batched call counts once per response, however many statements
                counted.add(id(v.ask))
                results.extend(v.ask.results)
            row: dict[str, Any] = {"statement": st, "chunks": v.chunks, "support": v.parsed.value,
                                   "verdict": _support_label(v.parsed.value), "rationale": v.ask.answer}
            if v.parsed.constrained:
                row["constrained"] = True
            if v.label is not None:
                row["rationale"] = _batch_rationale(v.ask)
                row["batch"] = {"id": v.label, "statements": v.batch_size, "passages": v.passages}
                if len(v.ask.results) > 1:
                    row["reasked"] = len(v.ask.results) - 1
            if v.parsed.tampered:
                row["tampered"] = v.parsed.reason
                tampered.append(st)
            elif not v.parsed.scored:
                row["unscored"] = v.ask.skipped or v.parsed.reason
            else:
                judged.append(float(v.parsed.value))  # type: ignore[arg-type]  # scored: value set
            rows.append(row)
        audit["statements"] = rows
        audit["judged"] = len(judged)
        if tampered:  # a support verdict the statement could have supplied: the dimension scores its minimum
            return _Dim(SCORE_MIN, f"{len(tampered)} of {len(statements)} support verdicts copied from the "
                                   "evaluated text", audit, results, flags, tampered=True)
        if len(judged) < len(statements):
            flags.append("statements_unjudged")
        if not judged or len(judged) < cfg.min_parsed_fraction * len(statements):
            reasons = Counter(r.get("unscored") for r in rows if "unscored" in r)
            return _Dim(None, f"only {len(judged)} of {len(statements)} statements got a support verdict "
                              f"({_top_reasons(reasons)})", audit, results, flags)
        return _Dim(10.0 * sum(judged) / len(judged), None, audit, results, flags)

    # -- support: one call per statement (support_batch = 1, the paper's protocol) ---------------------
    async def _supports(self, g: _Group, t: Template, statements: list[str]) -> list[_Support]:
        """Support verdicts for statements, each distinct statement retrieved and judged once per group."""
        new = [st for st in statements if st not in g.support]
        if new:
            self.client.expect_more(len(new))
            retrieval = shared_task(self._retrieve(g, new))
            for i, st in enumerate(new):
                g.support[st] = shared_task(self._support_one(g, t, st, retrieval, i))
        return list(await gather_or_cancel([_shielded(g.support[st]) for st in statements]))

    async def _support_one(self, g: _Group, t: Template, statement: str, retrieval: asyncio.Future[Any],
                           i: int) -> _Support:
        ids = (await asyncio.shield(retrieval))[i]
        return await self._judge_one(g, t, statement, ids)

    async def _judge_one(self, g: _Group, t: Template, statement: str, ids: list[int]) -> _Support:
        """One statement against its own passages, in a call of its own (template `support`)."""
        chunks = [g.by_index[j] for j in ids]
        passages = "\n".join(f'<passage id="{c.index}">\n{neutralise(c.text)}\n</passage>' for c in chunks)
        if not chunks:
            passages = "(the document is empty)"
        why = self._fits(t, "support", sum(c.n_tokens for c in chunks) + self.count_tokens(statement))
        if why:
            return _Support(ids, unscored(why), _Ask(unscored(why), [], skipped=why))
        req = self._request(t, "support", raw=("passages",), passages=passages, statement=statement)
        a = await self._ask("support", req, parse_support)
        return _Support(ids, a.parsed, a)

    # -- support: batched (support_batch > 1) ---------------------------------------------------------
    @staticmethod
    def _release(g: _Group, slot: int | None, statements: list[str] | None = None) -> None:
        """Put a response's statements (or none) in its slot of the group round; only the first call counts."""
        if slot is not None and slot < len(g.slots) and not g.slots[slot].done():
            g.slots[slot].set_result(list(statements or []))

    async def _supports_batched(self, g: _Group, tpl: dict[str, Template], statements: list[str],
                                slot: int | None) -> list[_Support]:
        """Support verdicts with several statements per call.

        In a group (slot given) the distinct statements of all responses are packed together once every
        response has put its statements in its slot, so the batches do not depend on which response's
        extraction finished first (same batches, same prompts, same cache keys on a rerun). A response
        scored outside a group round (slot None) has its own new statements packed at once.
        """
        if slot is None or slot >= len(g.slots):
            new = [st for st in statements if st not in g.support]
            if new:
                self._plan_support(g, tpl, new)
        else:
            self._release(g, slot, statements)
            if g.support_round is None:
                g.support_round = shared_task(self._support_round(g, tpl))
            await asyncio.shield(g.support_round)
        return list(await gather_or_cancel([_shielded(g.support[st]) for st in statements]))

    async def _support_round(self, g: _Group, tpl: dict[str, Template]) -> None:
        lists = await asyncio.gather(*g.slots)  # in response order: the packing is deterministic
        new = [st for st in dict.fromkeys(st for sts in lists for st in sts) if st not in g.support]
        if new:
            self._plan_support(g, tpl, new)

    def _plan_support(self, g: _Group, tpl: dict[str, Template], statements: list[str]) -> None:
        """Register a verdict future for each statement and start retrieving and judging them."""
        loop = asyncio.get_running_loop()
        futs: dict[str, asyncio.Future[_Support]] = {st: loop.create_future() for st in statements}
        g.support.update(futs)
        task = shared_task(self._judge_statements(g, tpl, statements, futs))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # errors reach the futures' waiters

    async def _judge_statements(self, g: _Group, tpl: dict[str, Template], statements: list[str],
                                futs: dict[str, asyncio.Future[_Support]]) -> None:
        try:
            ids = await self._retrieve(g, statements)
            batches = self._pack(g, tpl["support_batch"], statements, ids)
            self.client.expect_more(len(batches))

            async def one(batch: list[int]) -> None:
                out = await self._support_batch(g, tpl, [statements[i] for i in batch], [ids[i] for i in batch])
                for i, v in zip(batch, out, strict=True):
                    futs[statements[i]].set_result(v)

            await gather_or_cancel([one(b) for b in batches])
        except BaseException as e:
            for f in futs.values():
                if not f.done():
                    if isinstance(e, asyncio.CancelledError):
                        f.cancel()
                    else:
                        f.set_exception(e)
            raise

    def _pack(self, g: _Group, t: Template, statements: list[str], ids: list[list[int]]) -> list[list[int]]:
        """Statement indices packed into calls of at most `support_batch`, showing few passage tokens.

        Statements about the same facts retrieve the same chunks, and a passage shared in a call is shown
        once, so calls are formed by merging: starting from one call per statement, the two calls whose
        passages overlap most (in tokens; ties: the smaller merged call, then evidence order) are merged
        while two still fit in one call of the balanced size (n statements in ceil(n / support_batch)
        calls, so none is left alone when it need not be). Deterministic; windows of 64 statements in the
        document order of their evidence bound the work. A batch over the judge window is halved until it fits (one
        statement: the per-statement template).
        """
        n = len(statements)
        cap = -(-n // -(-n // self.config.support_batch))  # balanced: as few calls as support_batch allows
        order = sorted(range(n), key=lambda i: (ids[i], i))
        batches: list[list[int]] = []
        for w in range(0, n, _PACK_WINDOW):
            batches += self._merge_batches(g, order[w:w + _PACK_WINDOW], ids, cap)
        batches = [sorted(b, key=lambda i: (ids[i], i)) for b in batches]
        batches.sort(key=lambda b: (ids[b[0]], b[0]))
        return [part for b in batches for part in self._split_to_fit(g, t, b, statements, ids)]

    @staticmethod
    def _merge_batches(g: _Group, members: list[int], ids: list[list[int]], cap: int) -> list[list[int]]:
        """Merge calls pairwise by passage tokens shared; batches are keyed by their first statement's rank
        in `members`, so ties go to evidence order. Only the merged call's overlaps are recomputed."""
        batches = {r: [i] for r, i in enumerate(members)}
        shown = {r: set(ids[i]) for r, i in enumerate(members)}
        weight = {j: g.by_index[j].n_tokens for own in shown.values() for j in own}

        def shared(a: int, b: int) -> int:
            return sum(weight[j] for j in shown[a] & shown[b])

        overlap = {(a, b): shared(a, b) for a, b in itertools.combinations(batches, 2)}
        while True:
            fits = [(-w, size, a, b) for (a, b), w in overlap.items()
                    if (size := len(batches[a]) + len(batches[b])) <= cap]
            if not fits:
                return list(batches.values())
            _, _, a, b = min(fits)
            batches[a] += batches.pop(b)
            shown[a] |= shown.pop(b)
            overlap = {k: w for k, w in overlap.items() if b not in k and a not in k}
            overlap.update({(min(a, c), max(a, c)): shared(a, c) for c in batches if c != a})

    def _split_to_fit(self, g: _Group, t: Template, batch: list[int], statements: list[str],
                      ids: list[list[int]]) -> list[list[int]]:
        if len(batch) == 1 or self.config.judge_window is None:
            return [batch]
        union = set().union(*(ids[i] for i in batch))
        data = sum(g.by_index[j].n_tokens + 12 for j in union) + sum(
            self.count_tokens(statements[i]) + 16 + 3 * len(ids[i]) for i in batch)
        if not self._fits(t, "support_batch", data):
            return [batch]
        mid = len(batch) // 2
        return (self._split_to_fit(g, t, batch[:mid], statements, ids)
                + self._split_to_fit(g, t, batch[mid:], statements, ids))

    async def _support_batch(self, g: _Group, tpl: dict[str, Template], members: list[str],
                             ids: list[list[int]]) -> list[_Support]:
        """Several statements in one call (template `support_batch`): the union of their passages shown once,
        in document order, each statement with the ids of its own passages; one verdict line per statement,
        one bounded re-ask naming only the statements still without one."""
        if len(members) == 1:
            return [await self._judge_one(g, tpl["support"], members[0], ids[0])]
        t = tpl["support_batch"]
        labels = [f"S{i + 1}" for i in range(len(members))]
        union = sorted(set().union(*ids))
        local = {j: n for n, j in enumerate(union, 1)}
        passages = "\n".join(f'<passage id="{local[j]}">{neutralise(g.by_index[j].text)}</passage>' for j in union)
        stmts = "\n".join(f'<statement id="{lab}" passages="{", ".join(str(local[j]) for j in own)}">{neutralise(st)}'
                          f'</statement>' for lab, st, own in zip(labels, members, ids, strict=True))
        req = self._request(t, "support_batch", raw=("passages", "statements"), fmt=support_batch_format(labels),
                            evaluated=members, passages=passages or "(the document is empty)", statements=stmts,
                            ids=f"{labels[0]}-{labels[-1]}")
        req = self.client.complete(req)  # as keyed and sent: its structured form decides how verdicts are marked
        stats = self.parse_stats["support_batch"]
        results = [await self.client.chat(req)]
        if results[-1].ok:
            verdicts = _support_lines(results[-1], req, labels)
        else:
            verdicts = {lab: unscored(f"judge call failed: {results[-1].error}") for lab in labels}
        for _ in range(self.config.reasks):
            missing = [lab for lab in labels if not verdicts[lab].scored]
            if not missing or not results[-1].ok:
                break
            req = replace(reask_request(req, results[-1].content or "", reask_support_batch(missing),
                                        f"{t.version}+reask-lr{REASK_VERSION}"),
                          answer_format=support_batch_format(missing))
            stats.reasked += 1
            self.client.expect_more(1)
            results.append(await self.client.chat(req))
            if results[-1].ok:
                again = _support_lines(results[-1], req, missing)
                verdicts.update({lab: p for lab, p in again.items() if p.scored})
        done = sum(p.scored for p in verdicts.values())
        ask = _Ask(Parsed(value=float(done)), results)
        out = []
        for lab, own in zip(labels, ids, strict=True):
            stats.add(verdicts[lab])
            out.append(_Support(own, verdicts[lab], ask, label=lab, batch_size=len(labels), passages=union))
        return out

    async def _retrieve(self, g: _Group, statements: list[str]) -> list[list[int]]:
        if self.client.dry_run:  # no embedding in a dry run: the first k chunks stand in for the evidence
            return [[c.index for c in g.fine[:self.config.k]] for _ in statements]
        if g.retriever is None:
            g.retriever = shared_task(asyncio.to_thread(self._build_retriever, g.fine))
        retriever = await asyncio.shield(g.retriever)
        ids, _ = await asyncio.to_thread(self._top_k, retriever, statements)
        g.embedded_tokens = retriever.embedded_tokens
        return ids

    def _build_retriever(self, chunks: list[Any]) -> Any:
        from .retrieval import Retriever

        embedder = self.embedder
        with self._lock:
            r = Retriever.build(chunks, embedder)
            self.embedded_tokens += r.embedded_tokens
        return r

    def _top_k(self, retriever: Any, statements: list[str]) -> tuple[list[list[int]], int]:
        with self._lock:  # one retriever per group, but the embedder is shared by all groups
            before = retriever.embedded_tokens
            ids = retriever.top_k(statements, self.config.k)
            tokens = retriever.embedded_tokens - before
            self.embedded_tokens += tokens
        return ids, tokens

    # -- completeness -----------------------------------------------------------------------------------
    async def _completeness(self, g: _Group, tpl: dict[str, Template], response: str, data_tokens: int) -> _Dim:
        if g.extraction is None:
            g.extraction = shared_task(self._extract_all(g, tpl["extract"]))
        parts = await asyncio.shield(g.extraction)
        flags: list[str] = []
        audit: dict[str, Any] = {"information": parts}
        if not parts:
            flags.append("empty_context")
        if self.client.dry_run:  # nothing was answered: stand-in information of a typical size, for the estimate
            parts = [{**p, "status": "relevant", "items": ["x" * 400] * 3} for p in parts]
            flags.append("dry_run_estimate")
        ok = [p for p in parts if p["status"] != "unparsed"]
        if len(ok) < len(parts):
            flags.append("extraction_incomplete")
        if parts and (not ok or len(ok) < self.config.min_parsed_fraction * len(parts)):
            reasons = Counter(p.get("reason") for p in parts if p["status"] == "unparsed")
            return _Dim(None, f"information extraction failed for {len(parts) - len(ok)} of {len(parts)} "
                              f"document parts ({_top_reasons(reasons)})", audit, [], flags)
        if not any(p["status"] == "relevant" for p in ok):
            flags.append("no_relevant_information")
        info = _render_information(ok, g.lang)
        why = self._fits(tpl["completeness"], "completeness", data_tokens + self.count_tokens(info))
        if why:
            return _Dim(None, why, audit, [], flags)
        req = self._request(tpl["completeness"], "completeness", raw=("information",), question=g.question,
                            information=info, response=response)
        a = await self._ask("completeness", req, parse_score)
        audit.update(_verdict_audit(a))
        return _Dim.of(a, audit, flags)

    async def _extract_all(self, g: _Group, t: Template) -> list[dict[str, Any]]:
        """Per extraction chunk, the information relevant to the question: once per (context, question)."""
        from .chunking import position_label

        self.client.expect_more(len(g.coarse))
        q_tokens = self.count_tokens(g.question)

        async def one(c: Any) -> dict[str, Any]:
            pos = position_label(c, g.total_chars)
            why = self._fits(t, "extract", q_tokens + c.n_tokens)
            if why:
                a = _Ask(unscored(why), [], skipped=why)
            else:
                req = self._request(t, "extract", question=g.question, position=pos, chunk=c.text)
                a = await self._ask("extract", req, parse_information)
            g.extraction_asks.append(a)
            part: dict[str, Any] = {"chunk": c.index, "position": pos}
            if not a.parsed.scored:
                part.update(status="unparsed", reason=a.parsed.reason, items=None)
            else:
                items = list(getattr(a.parsed, "items", ()))
                part.update(status="relevant" if items else "none", items=items)
            part["rationale"] = a.answer
            return part

        return list(await gather_or_cancel([one(c) for c in g.coarse]))


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------

async def _shielded(fut: asyncio.Future[Any]) -> Any:
    """Await a task shared by several responses without one response's cancellation cancelling it."""
    return await asyncio.shield(fut)


def _top_reasons(reasons: Counter[Any]) -> str:
    return "; ".join(f"{n}x {r}" for r, n in reasons.most_common(2))


def _verdict_audit(a: _Ask) -> dict[str, Any]:
    out: dict[str, Any] = {"rationale": a.answer}
    if a.parsed.clamped:
        out["clamped"] = True
    if a.parsed.constrained:
        out["constrained"] = True
    if a.parsed.from_logprobs:
        out["score_from"] = "logprobs"
        out["rating_argmax"] = a.parsed.argmax
    if len(a.results) > 1:
        out["reasked"] = len(a.results) - 1
    if a.skipped:
        out["not_sent"] = a.skipped
    return out


def _batch_rationale(a: _Ask) -> str | None:
    """A batched call's answer, with the re-ask's answer after it when there was one."""
    answers = [r.content for r in a.results if r.content is not None]
    return "\n\n[answer to the re-ask]\n".join(answers) if answers else None


def _support_label(value: float | None) -> str | None:
    # the ignore below: None: no label
    return {1.0: "fully supported", 0.5: "partially supported", 0.0: "not supported"}.get(value)  # type: ignore[arg-type]


def _render_information(parts: list[dict[str, Any]], lang: str) -> str:
    """The extracted information as <part position=...> blocks; each judge-written item is neutralised."""
    if not parts or not any(p["status"] == "relevant" for p in parts):
        return NO_INFO_AT_ALL[lang]
    blocks = []
    for p in parts:
        body = "\n".join(f"- {neutralise(x)}" for x in p["items"]) if p["items"] else NO_INFO_LABEL[lang]
        blocks.append(f'<part position="{p["position"]}">\n{body}\n</part>')
    return "\n".join(blocks)


def _usage(results: Iterable[ChatResult]) -> dict[str, Any]:
    """Judge calls and tokens behind a verdict (cached answers count their original tokens)."""
    calls = inp = out = cached = failed = 0
    for r in results:
        calls += 1
        inp += r.usage.input_tokens
        out += r.usage.output_tokens
        cached += int(r.cached)
        failed += int(not r.ok)
    return {"calls": calls, "input_tokens": inp, "output_tokens": out, "cached": cached, "failed": failed}


_PACK_WINDOW = 64  # statements considered together when packing support calls (bounds the pairwise search)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if len(s.strip()) > 3]


def _unpack(item: Any) -> tuple[str, str, list[str]]:
    if isinstance(item, Mapping):
        return str(item["context"]), str(item["question"]), list(item["responses"])
    context, question, responses = item
    if isinstance(responses, str):
        raise TypeError("responses must be a list of strings, not one string")
    return context, question, list(responses)
