"""A canned LongReward judge for `lr_eval.testing.scripted_server.ScriptedServer`: tests, benchmarks, demos.

Every LongReward prompt starts its system message with a marker line
`[template longreward.<stage>.<lang> v<version>]`; `CannedJudge` routes on it
and answers each stage in the format the scorer parses. By default it is a
deterministic word-overlap "judge" (statements = sentences of the response,
support = share of a statement's words found in its own passages, also for
each statement of a batched support call, extraction = sentences of the
document part sharing words with the question), so that a
workload gets realistic call counts and answer sizes. Any stage can be
replaced by a fixed string or a function of the request body.
"""

from __future__ import annotations

import re
from typing import Any

from lr_eval.testing.scripted_server import Reply

_MARKER = re.compile(r"^\[template (longreward\.(\w+)\.(\w+)) v([^\]]+)\]")
_WORDS = re.compile(r"\w+")


def template_of(body: dict[str, Any]) -> tuple[str, str, str] | None:
    """(template id, stage, language) of a request body, or None for a request that is not ours."""
    msgs = body.get("messages") or []
    if not msgs:
        return None
    m = _MARKER.match(str(msgs[0].get("content", "")))
    return (m.group(1), m.group(2), m.group(3)) if m else None


def is_reask(body: dict[str, Any]) -> bool:
    return len(body.get("messages") or []) > 2


def user_text(body: dict[str, Any]) -> str:
    """The first user message (the data), not a re-ask."""
    for m in body.get("messages") or []:
        if m.get("role") == "user":
            return str(m.get("content", ""))
    return ""


def block(body: dict[str, Any], tag: str) -> str:
    """The text of the first <tag ...>...</tag> block of the user message ("" when absent)."""
    m = re.search(rf"<{tag}\b[^>]*>\n?(.*?)\n?</{tag}>", user_text(body), re.DOTALL)
    return m.group(1) if m else ""


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?。！？])\s*", text) if len(s.strip()) > 3]


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORDS.findall(text) if len(w) > 3 or not w.isascii()}


def default_statements(body: dict[str, Any]) -> str:
    found = sentences(block(body, "response"))
    if not found:
        return "Analysis: nothing factual.\n[[STATEMENTS]]\n[[END]]"
    return "Analysis: one statement per sentence.\n[[STATEMENTS]]\n" + "\n".join(f"- {s}" for s in found) + \
        "\n[[END]]"


def default_support(body: dict[str, Any]) -> str:
    st = words(block(body, "statement"))
    ev = words(block(body, "passages"))
    share = len(st & ev) / max(1, len(st))
    label = "fully supported" if share >= 0.8 else "partially supported" if share > 0.5 else "not supported"
    return f"Analysis: {share:.0%} of the statement's words occur in the passages.\nVerdict: [[{label}]]"


_PASSAGE = re.compile(r'<passage id="(\d+)">\n?(.*?)\n?</passage>', re.DOTALL)
_STATEMENT = re.compile(r'<statement id="(S\d+)" passages="([\d, ]*)">\n?(.*?)\n?</statement>', re.DOTALL)


def batch_statements(body: dict[str, Any]) -> list[tuple[str, list[int], str]]:
    """(id, own passage ids, text) of each statement of a batched support request."""
    return [(m.group(1), [int(x) for x in re.findall(r"\d+", m.group(2))], m.group(3))
            for m in _STATEMENT.finditer(block(body, "statements"))]


def batch_passages(body: dict[str, Any]) -> dict[int, str]:
    """{passage id: text} of a batched support request, in the order shown."""
    return {int(m.group(1)): m.group(2) for m in _PASSAGE.finditer(block(body, "passages"))}


def default_support_batch(body: dict[str, Any]) -> str:
    """The word-overlap verdict of each statement against its own passages only, one line per statement."""
    passages = batch_passages(body)
    analysis, lines = [], []
    for sid, own, text in batch_statements(body):
        st = words(text)
        ev = words(" ".join(passages.get(i, "") for i in own))
        share = len(st & ev) / max(1, len(st))
        label = "fully supported" if share >= 0.8 else "partially supported" if share > 0.5 else "not supported"
        analysis.append(f"{sid}: {share:.0%} of the statement's words occur in its passages.")
        lines.append(f"{sid}: [[{label}]]")
    return "Analysis:\n" + "\n".join(analysis) + "\nVerdicts:\n" + "\n".join(lines)


def default_extract(body: dict[str, Any]) -> str:
    q = words(block(body, "question"))
    found = [s for s in sentences(block(body, "document_part")) if len(words(s) & q) >= 2]
    if not found:
        return "Analysis: nothing here about the question.\n[[NO RELEVANT INFORMATION]]"
    return "Analysis: sentences sharing words with the question.\n[[INFORMATION]]\n" + \
        "\n".join(f"- {s}" for s in found[:12]) + "\n[[END]]"


class CannedJudge:
    """A responder for ScriptedServer answering each LongReward stage.

    `scores` gives the fixed 0-10 verdicts of helpfulness, logicality and
    completeness; `answers` overrides a stage ("helpfulness", "statements",
    "support", "extract", ...) with a string, a Reply or a function of the body;
    `reask` answers re-asks (default: the same as the first ask).
    Requests that are not LongReward's get `fallback`.
    """

    def __init__(self, scores: dict[str, float] | None = None, answers: dict[str, Any] | None = None,
                 reask: Any = None, fallback: str = "[[5]]"):
        self.scores = {"helpfulness": 7, "logicality": 8, "completeness": 6, **(scores or {})}
        self.answers = dict(answers or {})
        self.reask = reask
        self.fallback = fallback
        self.calls: list[tuple[str, str]] = []   # (stage, language) in arrival order

    def __call__(self, body: dict[str, Any]) -> str | Reply:
        t = template_of(body)
        if t is None:
            return self.fallback
        _, stage, lang = t
        self.calls.append((stage, lang))
        if is_reask(body) and self.reask is not None:
            return _answer(self.reask, body)
        if stage in self.answers:
            return _answer(self.answers[stage], body)
        if stage in self.scores:
            return f"Analysis: canned verdict for {stage}.\nScore: [[{self.scores[stage]:g}]]"
        return {"statements": default_statements, "support": default_support,
                "support_batch": default_support_batch, "extract": default_extract}[stage](body)


def _answer(spec: Any, body: dict[str, Any]) -> str | Reply:
    return spec(body) if callable(spec) else spec
