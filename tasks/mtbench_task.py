"""MT-Bench as the lm-eval task ``longreward_mtbench``: both turns generated and judged in one run.

lm-eval 0.4.13 sends every request of a run to the model at once, so a second turn that must see the
model's own first answer cannot be an ordinary request. :class:`MTBenchTask` makes it one late: lm-eval
generates turn 1 as usual; then, when lm-eval asks the task to apply its filters, the task builds one
turn-2 request per question (the conversation [question 1, the model's stripped turn-1 answer, question
2] through the run's chat template, as FastChat's conversation does), has the run's model generate them
(``generate_until``, found on the call stack: lm-eval hands tasks no model) and adds them to its instances
with ``idx`` 1. From there everything is lm-eval's: the judge filter sees both turns of every question,
``process_results`` gets [turn 1, turn 2] per question, and the samples log holds both generation prompts
(``arguments``), both answers (``resps``) and both verdicts (``filtered_resps``: score, judge prompt,
judgment). ``lr-eval rejudge`` replays both turns by their ``idx``.

Generation: FastChat's temperature per category (``mtbench.TEMPERATURES``; sampling above 1e-4), at most
1024 new tokens, stopping at the model's end of turn; a ``temperature`` in ``--gen_kwargs`` applies to
every question instead. Without ``--apply_chat_template`` the turns are joined by blank lines (MT-Bench is
made for chat models: use the flag).

Metrics: ``turn1``, ``turn2`` (means of the counted judgments of each turn: scored, and tampered ones at 1),
``score`` (all counted judgments: FastChat's average), ``score_<category>``, ``score_pessimistic`` (unscored
judgments counted as 1), ``judge_unscored`` (judgments without a rating), ``judge_tampered`` (ratings the
answer could have supplied, counted as 1) and ``judge_cost_usd``; the judge report goes to
``configs.longreward_mtbench.metadata.judge``. Data and judge protocol: :mod:`lr_eval.tasks.mtbench`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from datasets import Dataset, DatasetDict

from lr_eval.config import JudgeConfig
from lr_eval.suite import FAMILY

from lr_eval.records import TAMPERED, verdict_of

from .judging import JudgeFilter, JudgeSpec, register_judge_filter, require_judge
from .lm_eval_adapter import FollowUpTask
from .mtbench import MTBenchSpec, Question, Rubric, conversation, data_file, read_questions, temperature

TASK = FAMILY["mtbench"].prefix
FILTER_NAME = "longreward_judge_mtbench"
#: FastChat's generate: sampling only above this temperature.
GREEDY_BELOW = 1e-4


def load(**metadata: Any) -> DatasetDict:
    """custom_dataset hook: check the judge and every data file first (before generation), then the questions."""
    require_judge(TASK, metadata)
    questions = read_questions(data_file("questions", metadata))
    Rubric.load(metadata).check(questions)
    return DatasetDict({"test": Dataset.from_list([q.to_doc() for q in questions])})


def first_question(doc: dict[str, Any]) -> str:
    return doc["turns"][0]


def no_target(doc: dict[str, Any]) -> str:
    """MT-Bench has no target; the judge reads the reference answers itself."""
    return ""


class MTBenchTask(FollowUpTask):
    """A task whose second turn is the follow-up of the first (:class:`~lr_eval.tasks.lm_eval_adapter.FollowUpTask`)."""

    def construct_requests(self, doc: dict[str, Any], ctx: Any, **kwargs: Any) -> Any:
        inst = super().construct_requests(doc, ctx, **kwargs)
        ctx_, gen = inst.arguments
        inst.arguments = (ctx_, self._decoding(doc, gen))
        return inst

    def _decoding(self, doc: dict[str, Any], gen: dict[str, Any]) -> dict[str, Any]:
        gen = dict(gen)
        if "temperature" not in (self.config.generation_kwargs or {}):
            t = temperature(doc["category"])
            gen.update(temperature=t, do_sample=t >= GREEDY_BELOW)
        return gen

    def second_turn_context(self, doc: dict[str, Any], first_answer: str) -> Any:
        """The conversation so far, as the model sees it: its chat template, or plain text without one."""
        return self.render_chat([{"role": "user", "content": doc["turns"][0]},
                                 {"role": "assistant", "content": first_answer},
                                 {"role": "user", "content": doc["turns"][1]}])

    def follow_up(self, doc: dict[str, Any], first: str, gen_kwargs: dict[str, Any]) -> tuple[Any, dict] | None:
        """Turn 2 after the stripped turn-1 answer (FastChat strips it), with turn 1's decoding."""
        if len(doc["turns"]) < 2:
            return None
        return self.second_turn_context(doc, first.strip()), gen_kwargs


class MTBenchJudgeFilter(JudgeFilter):
    """Judges every turn of every question in one concurrent batch (responses arrive turn 1s, then turn 2s)."""

    spec_class = MTBenchSpec
    unit = "judgments"
    default_reasks = 0  # FastChat asks once

    def fallback_name(self) -> str:
        return TASK

    def make_spec(self, name: str, metadata: dict[str, Any], cfg: JudgeConfig) -> JudgeSpec:
        return MTBenchSpec(name, Rubric.load(metadata), metadata)

    def items(self, docs: Sequence[dict[str, Any]], responses: list[str]) -> list[dict[str, Any]]:
        return conversations(docs, responses)


def conversations(docs: Sequence[dict[str, Any]], responses: Sequence[str]) -> list[dict[str, Any]]:
    """One conversation per response: the n-th response of a question is its turn n."""
    answers: dict[int, list[str]] = {}
    turns = []
    for doc, resp in zip(docs, responses, strict=True):
        got = answers.setdefault(int(doc["question_id"]), [])
        got.append(resp.strip())
        turns.append(len(got))
    return [conversation(Question.from_doc(doc), answers[int(doc["question_id"])], turn)
            for doc, turn in zip(docs, turns, strict=True)]


register_judge_filter(FILTER_NAME, MTBenchJudgeFilter)


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Per question (results: its verdicts in turn order, as lm-eval sorts a doc's requests by idx): turn1/turn2
    when counted, the list of its counted judgments (scored, and tampered at 1) for ``score`` and its category,
    ``score_pessimistic`` (unscored counted as 1), judge_unscored and judge_tampered (0-2) and judge_cost_usd."""
    verdicts = [verdict_of(r) for r in results]
    if any(v is None for v in verdicts):
        raise RuntimeError(f"{TASK} without judge verdicts: keep the task's `judge` filter in filter_list")
    out: dict[str, Any] = {}
    counted, pessimistic, unscored, tampered, costs = [], [], 0, 0, []
    for turn, v in enumerate(verdicts, 1):
        assert v is not None
        pessimistic.append(v.pessimistic())
        tampered += v.status == TAMPERED
        if v.value is None:
            unscored += 1
        else:
            out[f"turn{turn}"] = float(v.value)
            counted.append(float(v.value))
        if v.cost_usd is not None:
            costs.append(float(v.cost_usd))
    out.update({"score": counted, f"score_{doc['category']}": counted, "score_pessimistic": pessimistic,
                "judge_unscored": float(unscored), "judge_tampered": float(tampered)})
    if costs:
        out["judge_cost_usd"] = sum(costs)
    return out


def pooled_mean(values: Sequence[Sequence[float]]) -> float:
    """Mean over every scored judgment of every question (FastChat's average); NaN when none is scored."""
    flat = [x for v in values for x in v]
    return sum(flat) / len(flat) if flat else float("nan")
