"""MT-Bench, FastChat's llm_judge single-answer grading, through our judge client.

Shared by the lm-eval task ``longreward_mtbench`` (:mod:`lr_eval.tasks.mtbench_task`) and
``lr-eval mtbench judge/show`` (:mod:`lr_eval.tasks.mtbench_cli`).

Data (lm-sys/FastChat, folder ``fastchat/llm_judge/data``, Apache-2.0), downloaded from the repository at a
pinned commit, checked against its SHA-256 and cached; each file has a local override (no checksum then):

==========================  =========================  =============================  ===============
file                        --metadata key             environment variable           CLI option
==========================  =========================  =============================  ===============
mt_bench/question.jsonl     ``mtbench_questions``      ``LR_MTBENCH_QUESTIONS``       --questions
mt_bench/reference_answer/  ``mtbench_references``     ``LR_MTBENCH_REFERENCES``      --references
gpt-4.jsonl
judge_prompts.jsonl         ``mtbench_judge_prompts``  ``LR_MTBENCH_JUDGE_PROMPTS``   --judge-prompts
==========================  =========================  =============================  ===============

Protocol, as FastChat's ``gen_judgment.py --mode single`` and ``common.py`` run it:

* Turn 1 of a question is judged with the prompt ``single-v1``; math, reasoning and coding questions with
  ``single-math-v1`` and the reference answer. Turn 2 with the ``-multi-turn`` variant of the same prompt,
  over both questions, both answers (and both reference turns). The template is filled with ``str.format``
  (fields ``question``, ``answer``, ``ref_answer_1``; ``question_1/2``, ``answer_1/2``, ``ref_answer_1/2``);
  the messages are the prompt's system message (when not empty) and the filled user prompt; temperature 0,
  at most 2048 new tokens. The gpt-4 reference answers are used whatever the judge (FastChat looks them up
  by the judge's name and so only runs with gpt-4 references for a gpt-4 judge).
* Rating: the first ``[[n]]`` of the judgment, else the first ``[n]`` (n an unsigned decimal). A judgment
  with neither is unscored and counted (FastChat writes -1 and drops it from the means). Differences: a
  rating outside 1-10 is clamped and counted (FastChat keeps it); no re-ask by default (``judge_reasks`` /
  ``--reasks`` add them, as FastChat has none).
* Scores (FastChat's ``show_result``): per turn and overall, the mean of the scored judgments; we add the
  per-category means (over both turns) and the unscored counts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lr_eval.formats import rating_format
from lr_eval.jsonl import InputError, read_jsonl, require
from lr_eval.parsing import Parsed, clamp, unscored
from lr_eval.trust import neutralise_markup, template_separators, tokens
from lr_eval.types import ChatRequest

from .judging import JudgeSpec, resolve_file

FASTCHAT_REPO = "lm-sys/FastChat"
FASTCHAT_COMMIT = "0e6d3e4beaab66f4d3f93db72541a4abab8af28d"
_RAW = f"https://raw.githubusercontent.com/{FASTCHAT_REPO}/{FASTCHAT_COMMIT}/fastchat/llm_judge/data/"

#: kind -> (path under fastchat/llm_judge/data, SHA-256 at the pinned commit, --metadata key, environment variable)
FILES: dict[str, tuple[str, str, str, str]] = {
    "questions": ("mt_bench/question.jsonl",
                  "119565adbab82227089cefdb44c8d7e2cf04dc0a0ec233634c82e7d4e2a944f7",
                  "mtbench_questions", "LR_MTBENCH_QUESTIONS"),
    "references": ("mt_bench/reference_answer/gpt-4.jsonl",
                   "f957a5bc977badb66885ec970e6cd08527845780313f0995764260e5777b9b3f",
                   "mtbench_references", "LR_MTBENCH_REFERENCES"),
    "judge_prompts": ("judge_prompts.jsonl",
                      "fd283293406d024f44c174b094ef48031d0687a4682fd3a56b29b138f80281b6",
                      "mtbench_judge_prompts", "LR_MTBENCH_JUDGE_PROMPTS"),
}

#: Categories judged against the reference answer (FastChat's NEED_REF_CATS).
REFERENCE_CATEGORIES = ("math", "reasoning", "coding", "arena-hard-200")
#: Generation temperature per category (FastChat's temperature_config); 0.7 for any other category.
TEMPERATURES = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0, "reasoning": 0.0,
                "stem": 0.1, "humanities": 0.1, "arena-hard-200": 0.0}
DEFAULT_TEMPERATURE = 0.7
MAX_NEW_TOKENS = 1024
JUDGE_MAX_TOKENS = 2048
SCALE = (1.0, 10.0)
PROMPT_NAMES = ("single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn")

_RATING = re.compile(r"\d+\.?\d*")


def temperature(category: str) -> float:
    return TEMPERATURES.get(category, DEFAULT_TEMPERATURE)


def data_file(kind: str, metadata: Mapping[str, Any] | None) -> Path:
    """A local override (metadata key > environment variable) or the pinned, checksummed official file."""
    rel, sha, key, env = FILES[kind]
    return resolve_file(dict(metadata or {}), file_key=key, dir_key=None, env=env, dir_env=None,
                        filename=Path(rel).name, url=_RAW + rel,
                        cache_name=f"mtbench/{FASTCHAT_COMMIT[:12]}/{rel}", sha256=sha)


# ------------------------------------------------------------------------------------------------ files


@dataclass(frozen=True)
class Question:
    question_id: int
    category: str
    turns: tuple[str, ...]

    def to_doc(self) -> dict[str, Any]:
        return {"question_id": self.question_id, "category": self.category, "turns": list(self.turns)}

    @staticmethod
    def from_doc(doc: Mapping[str, Any]) -> Question:
        return Question(int(doc["question_id"]), str(doc["category"]), tuple(doc["turns"]))


@dataclass(frozen=True)
class JudgePrompt:
    name: str
    system_prompt: str
    template: str

    @property
    def version(self) -> str:
        """Content hash: an edited prompt never reuses cached judgments."""
        blob = json.dumps([self.system_prompt, self.template], ensure_ascii=False)
        return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def _records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for line, rec in read_jsonl(path):
        if isinstance(rec, InputError):
            raise rec
        out.append((line, rec))
    return out


def _str_list(rec: dict[str, Any], field: str, path: Path, line: int, value: Any = None) -> tuple[str, ...]:
    value = rec.get(field) if value is None else value
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise InputError(path, line, field, "expected a non-empty list of strings")
    return tuple(value)


def read_questions(path: Path) -> list[Question]:
    """FastChat's question.jsonl: ``question_id``, ``category``, ``turns``; file order."""
    questions, seen = [], set()
    for line, rec in _records(path):
        qid = require(rec, "question_id", int, path, line)
        if qid in seen:
            raise InputError(path, line, "question_id", f"duplicate question {qid}")
        seen.add(qid)
        questions.append(Question(qid, require(rec, "category", str, path, line), _str_list(rec, "turns", path, line)))
    if not questions:
        raise InputError(path, 1, None, "no questions")
    return questions


def choice_turns(rec: dict[str, Any], path: Path, line: int) -> tuple[str, ...]:
    """``choices[0].turns`` of a FastChat model_answer / reference_answer record."""
    choices = rec.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise InputError(path, line, "choices", "expected a non-empty list of {\"turns\": [...]} objects")
    return _str_list(rec, "choices[0].turns", path, line, choices[0].get("turns"))


def read_references(path: Path) -> dict[int, tuple[str, ...]]:
    """FastChat's reference_answer file: question_id -> reference turns."""
    refs: dict[int, tuple[str, ...]] = {}
    for line, rec in _records(path):
        qid = require(rec, "question_id", int, path, line)
        if qid in refs:
            raise InputError(path, line, "question_id", f"a second reference answer for question {qid}")
        refs[qid] = choice_turns(rec, path, line)
    return refs


def read_judge_prompts(path: Path) -> dict[str, JudgePrompt]:
    """The four single-answer prompts of FastChat's judge_prompts.jsonl (the others are not used)."""
    found: dict[str, JudgePrompt] = {}
    for line, rec in _records(path):
        name = require(rec, "name", str, path, line)
        if name not in PROMPT_NAMES:
            continue
        if rec.get("output_format") != "[[rating]]":
            raise InputError(path, line, "output_format", f"{name}: expected \"[[rating]]\"")
        found[name] = JudgePrompt(name, require(rec, "system_prompt", str, path, line),
                                  require(rec, "prompt_template", str, path, line))
    missing = [n for n in PROMPT_NAMES if n not in found]
    if missing:
        raise InputError(path, 1, "name", f"no judge prompt named {', '.join(missing)}")
    return found


# ---------------------------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class Rubric:
    """The judge prompts and reference answers: everything needed to judge a conversation."""

    prompts: dict[str, JudgePrompt]
    references: dict[int, tuple[str, ...]]
    references_path: str = ""

    @staticmethod
    def load(metadata: Mapping[str, Any] | None) -> Rubric:
        ref_path = data_file("references", metadata)
        return Rubric(read_judge_prompts(data_file("judge_prompts", metadata)), read_references(ref_path),
                      str(ref_path))

    def prompt(self, question: Question, turn: int) -> JudgePrompt:
        name = "single-math-v1" if question.category in REFERENCE_CATEGORIES else "single-v1"
        return self.prompts[name if turn == 1 else f"{name}-multi-turn"]

    def check(self, questions: Sequence[Question]) -> None:
        """Every question that needs a reference has one with enough turns (checked before any judging)."""
        for q in questions:
            if q.category in REFERENCE_CATEGORIES and len(self.references.get(q.question_id, ())) < len(q.turns):
                raise ValueError(f"{self.references_path}: no {len(q.turns)}-turn reference answer for question "
                                 f"{q.question_id} ({q.category})")

    def user_prompt(self, question: Question, answers: Sequence[str], turn: int) -> str:
        """The judge's user prompt, filled exactly as FastChat's run_judge_single fills it."""
        template = self.prompt(question, turn).template
        kwargs: dict[str, str] = {}
        if question.category in REFERENCE_CATEGORIES:
            ref = self.references[question.question_id]
            kwargs["ref_answer_1"] = ref[0]
            if turn == 2:
                kwargs["ref_answer_2"] = ref[1]
        if turn == 2:
            kwargs.update(question_1=question.turns[0], question_2=question.turns[1], answer_1=answers[0],
                          answer_2=answers[1])
        else:
            kwargs.update(question=question.turns[0], answer=answers[0])
        return template.format(**{k: neutralise_markup(v) for k, v in kwargs.items()})

    def request(self, question: Question, answers: Sequence[str], turn: int) -> ChatRequest:
        """FastChat's prompt byte for byte: the answers and references go in raw (chat markup made inert), named
        as untrusted, so the parser keeps to the judge's own words (lr_eval.trust): a rating copied from an
        answer is tampered, and an answer spelling the template's own separators broke its fences."""
        prompt = self.prompt(question, turn)
        messages = [{"role": "system", "content": prompt.system_prompt}] if prompt.system_prompt else []
        messages.append({"role": "user", "content": self.user_prompt(question, answers, turn)})
        references = self.references.get(question.question_id, ()) if question.category in REFERENCE_CATEGORIES \
            else ()
        return ChatRequest.of(messages, temperature=0.0, max_tokens=JUDGE_MAX_TOKENS,
                              untrusted=[neutralise_markup(t) for t in (*answers[:turn], *references[:turn])],
                              evaluated=answers[:turn], separators=template_separators(prompt.template),
                              answer_format=FORMAT, template_id=f"mtbench.{prompt.name}",
                              template_version=prompt.version)


def parse_rating(text: str | None) -> Parsed:
    """FastChat's rule: the first ``[[n]]``, else the first ``[n]`` (tokens of the one grammar,
    `lr_eval.trust.tokens`); clamped to 1-10."""
    if text is None:
        return unscored("no answer")
    found = [t for t in tokens(text) if _RATING.fullmatch(t.inside)]
    match = next((t for t in found if t.double), None) or next(iter(found), None)
    if match is None:
        return unscored("no [[rating]] in the judgment", text)
    return clamp(float(match.inside), *SCALE, raw=text)


#: The verdict FastChat's judge prompts ask for, "[[rating]]" 1-10, with FastChat's parse (lr_eval.formats).
FORMAT = rating_format("mtbench.single", 1, 10, parse_rating)


def conversation(question: Question, answers: Sequence[str], turn: int) -> dict[str, Any]:
    """One thing to judge (a question's turn, with the answers so far), as judging.judge_samples takes it."""
    return {"question": question, "answers": list(answers), "turn": turn}


class MTBenchSpec(JudgeSpec):
    """One judge call per conversation turn; the rating (1-10) is the score."""

    template_id = "mtbench"
    scale = SCALE
    sample_scale = SCALE

    def __init__(self, task: str, rubric: Rubric, metadata: dict[str, Any] | None = None):
        super().__init__(task, metadata, JUDGE_MAX_TOKENS)
        self.rubric = rubric
        self.template_version = "+".join(rubric.prompts[n].version for n in PROMPT_NAMES)

    def requests(self, doc: dict[str, Any], response: str) -> list[ChatRequest]:
        return [self.rubric.request(doc["question"], doc["answers"], doc["turn"])]

    def parse(self, text: str | None) -> Parsed:
        return FORMAT.parse(text)

    def combine(self, doc: dict[str, Any], ratings: list[Parsed]) -> Parsed:
        return ratings[0]

    def call_info(self, doc: dict[str, Any], index: int) -> dict[str, Any]:
        prompt = self.rubric.prompt(doc["question"], doc["turn"])
        return {"turn": doc["turn"], "prompt": prompt.name, "system_prompt": prompt.system_prompt,
                "user_prompt": self.rubric.user_prompt(doc["question"], doc["answers"], doc["turn"])}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "protocol": "FastChat llm_judge single-answer grading",
                "source": f"{FASTCHAT_REPO}@{FASTCHAT_COMMIT}",
                "prompts": {n: self.rubric.prompts[n].version for n in PROMPT_NAMES},
                "reference_categories": list(REFERENCE_CATEGORIES), "judge_max_tokens": JUDGE_MAX_TOKENS}


# ---------------------------------------------------------------------------------------------- results


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(rows: Sequence[Mapping[str, Any]], categories: Mapping[int, str]) -> list[dict[str, Any]]:
    """FastChat's show_result per model (turn 1, turn 2, overall: means of the counted judgments), plus
    the per-category means over both turns, ``n`` counted, ``tampered`` (counted at 1) and ``unscored``
    judgments and ``pessimistic`` (the overall mean with the unscored counted as 1); best first.

    A row: ``model``, ``question_id``, ``turn``, ``score`` (a number; None or FastChat's -1 = unscored),
    ``tampered`` (the reason, on a tampered row).
    """
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_model.setdefault(str(row["model"]), []).append(row)
    out = []
    for model, mrows in by_model.items():
        scored = [r for r in mrows if r["score"] is not None and r["score"] != -1]
        cats: dict[str, list[float]] = {}
        for r in scored:
            cats.setdefault(categories.get(int(r["question_id"]), "unknown"), []).append(float(r["score"]))
        out.append({"model": model,
                    "turn1": _mean([float(r["score"]) for r in scored if r["turn"] == 1]),
                    "turn2": _mean([float(r["score"]) for r in scored if r["turn"] == 2]),
                    "overall": _mean([float(r["score"]) for r in scored]),
                    "pessimistic": _mean([float(r["score"]) for r in scored] + [SCALE[0]] * (len(mrows) - len(scored))),
                    "n": len(scored), "tampered": sum(1 for r in scored if r.get("tampered")),
                    "unscored": len(mrows) - len(scored),
                    "categories": {c: _mean(v) for c, v in sorted(cats.items())}})
    return sorted(out, key=lambda s: -1.0 if s["overall"] is None else -s["overall"])
