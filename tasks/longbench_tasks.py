"""lm-eval hooks for the LongBench / LongBench-E tasks: the task class and per-sample scoring.

Scoring calls :mod:`lr_eval.tasks.longbench` (the official metrics). Per sample
we report ``score`` = 100 x the official score (aggregated with lm-eval's
``mean``, so the task value is the official dataset score, with a stderr), plus
for the token-F1 QA datasets ``sub_em`` and ``token_f1`` (100 x, no first-line
cut), and for LongBench-E ``score_<bucket>`` for the sample's length bucket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lm_eval.api.task import ConfigurableTask

from .lm_eval_adapter import handing
from .longbench import DATASET_METRIC, length_bucket, score, sub_em, token_f1

#: Datasets whose official metric is token F1: these also get SubEM and plain token F1.
QA_DATASETS: frozenset[str] = frozenset(name for name, metric in DATASET_METRIC.items() if metric.startswith("qa_f1"))


class LongBenchTask(ConfigurableTask):
    """ConfigurableTask that leaves the chat template off for docs marked ``use_chat_template: false``.

    lm-eval 0.4.13 applies ``--apply_chat_template`` to every task of a run inside
    ``fewshot_context``; LongBench's ``pred.py`` prompts trec, triviaqa, samsum,
    lsht, lcc and repobench-p as raw completion even for chat models. For those
    docs we build the context exactly as a run without chat template would (a
    ``--system_instruction``, if given, is still prepended as plain text).
    Exception: a backend whose "template" yields chat messages rather than text
    (``local-chat-completions`` and other chat APIs) has no raw-completion mode,
    so there the prompt goes out as the single user message.
    """

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        # The YAML's ``class:`` key selects this class; TaskConfig does not accept it.
        config = {key: value for key, value in (config or {}).items() if key != "class"}
        self._renders_text: bool | None = None
        with handing(self):  # the loader records its prompt budget in this task's metadata
            super().__init__(config=config, **kwargs)

    def fewshot_context(
        self,
        doc: dict,
        num_fewshot: int,
        system_instruction: str | None = None,
        apply_chat_template: bool = False,
        fewshot_as_multiturn: bool = False,
        chat_template: Callable[..., str] | None = None,
        gen_prefix: str | None = None,
    ) -> str | list[str]:
        if (
            apply_chat_template
            and chat_template is not None
            and not doc.get("use_chat_template", True)
            and self._template_renders_text(chat_template)
        ):
            apply_chat_template, fewshot_as_multiturn, chat_template = False, False, None
        return super().fewshot_context(
            doc=doc,
            num_fewshot=num_fewshot,
            system_instruction=system_instruction,
            apply_chat_template=apply_chat_template,
            fewshot_as_multiturn=fewshot_as_multiturn,
            chat_template=chat_template,
            gen_prefix=gen_prefix,
        )

    def _template_renders_text(self, chat_template: Callable[..., Any]) -> bool:
        """``renders_text`` once per task (one model per run); not cached globally, which would pin the model."""
        if self._renders_text is None:
            self._renders_text = renders_text(chat_template)
        return self._renders_text


def renders_text(chat_template: Callable[..., Any]) -> bool:
    """Whether a chat template renders to a prompt string (local tokenizer), not API chat messages."""
    return isinstance(chat_template([{"role": "user", "content": "probe"}]), str)


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Per-sample metrics (0-100) for one generated answer."""
    dataset = doc["longbench_dataset"]
    prediction = results[0]
    answers = doc["answers"]
    metrics = {"score": 100 * score(dataset, prediction, answers, doc.get("all_classes"))}
    if dataset in QA_DATASETS:
        language = "zh" if doc.get("language") == "zh" else "en"
        metrics["sub_em"] = 100 * sub_em(prediction, answers, language)
        metrics["token_f1"] = 100 * token_f1(prediction, answers, language)
    if doc.get("longbench_e"):
        metrics[f"score_{length_bucket(int(doc['length']))}"] = metrics["score"]
    return metrics
