"""The CoT-answer SubEM protocol of NEUIR/LongMab-PO (``src/evaluation/eval.py``), as lm-eval tasks.

Later papers that compare against LongReward-trained models (LongMab-PO, SeaLong) report substring exact
match on long-document QA with this protocol. Tasks ``longreward_cotqa_<dataset>`` for LongBench
``musique``, ``2wikimqa``, ``multifieldqa_en``, ``narrativeqa`` (all rows: 200, 200, 150, 200) and
InfiniteBench ``longbook_qa_eng`` (351); group ``longreward_cotqa``: unweighted means over the five.

Prompt: the ``cot_answer`` template (document, question, instructions ending in ``Reasoning: ... Answer:
...``) of ``src/evaluation/template.py`` in NEUIR/LongMab-PO at a pinned commit, SHA-256 checked and
cached, never vendored: the file is Python, so we parse it with ``ast`` and take the string
``PROMPT_DICT["cot_answer"]`` (never executing it). Override: ``cotqa_template`` / ``LR_COTQA_TEMPLATE`` =
a ``template.py`` in that format or a plain text file holding the template. Filled with
``.format(context=row["context"], question=row["input"])``.

Truncation, as ``llmDataset.process_prompt`` there: ``tokenizer.encode(prompt)`` (special tokens
included); only above ``max_input_len`` (``--metadata '{"max_length": N}'``, default 100000 as there)
``ids[:M // 2] + ids[-M // 2:]`` (Python's ``-M // 2`` is ``(-M) // 2``: an odd M keeps one more tail
token), one ``decode`` with special tokens skipped; then the chat template is applied to that text as the
only user message. So the cut happens on the raw user message, before the chat template, exactly what
our loader does at load time; lm-eval applies the chat template afterwards (run with
``--apply_chat_template``; without it the prompt is not the protocol's).

Decoding there: vLLM, temperature 0.0 (greedy), top_p 0.95, presence_penalty 1.0, up to 1024 new tokens.
The YAML sets greedy with 1024 new tokens; presence_penalty is not a Hugging Face ``generate`` option, so
it is only reproducible on the vLLM backends (``--gen_kwargs presence_penalty=1.0``; see the README).

Scoring (:func:`score_answer`): lower-case the prediction; for each prefix of :data:`ANSWER_PREFIXES` in
order, take the text after its *last* occurrence, stripped; if that prefix ends the text, there is no
answer (the search stops); with no answer EM, F1 and SubEM are 0. Otherwise SQuAD normalisation, and SubEM
(a normalised gold is a substring of the normalised answer), EM (equal to a gold) and token F1 (max over
golds). Tasks report them x 100 and ``no_answer`` (count of predictions without an extractable answer).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from lr_eval.suite import FAMILY

from . import infinitebench
from .longbench import normalize_answer, sub_em, token_f1
from .longbench_data import DATA_ENV, load_rows
from .data_files import download_checked
from .pinned import local_override, template_from
from .truncation import prompt_tokenizer

log = logging.getLogger(__name__)

PREFIX = FAMILY["cotqa"].prefix
#: The protocol's five datasets (the suite table's): four of LongBench and InfiniteBench's En.QA.
DATASETS: tuple[str, ...] = FAMILY["cotqa"].names
#: ``ans_prefixes`` of eval.py, in its order.
ANSWER_PREFIXES: tuple[str, ...] = ("answer:", "the answer is:", "final answer is:")
MAX_INPUT_LEN = 100_000

TEMPLATE_COMMIT = "de8ab9a48df7de096e2b2b18e77038f07c4368c9"
TEMPLATE_URL = f"https://raw.githubusercontent.com/NEUIR/LongMab-PO/{TEMPLATE_COMMIT}/src/evaluation/template.py"
TEMPLATE_SHA256 = "7efef1c7556a07dea638b6afe28690e703213c3b6f0f76f53cf8c603046d3383"
TEMPLATE_KEY, TEMPLATE_ENV = "cotqa_template", "LR_COTQA_TEMPLATE"


# ---------------------------------------------------------------------------------------- scoring


def extract_answer(prediction: str) -> str | None:
    """The answer after the protocol's answer prefix (lower-cased, stripped), or None when there is none."""
    text = prediction.lower()
    for prefix in ANSWER_PREFIXES:
        index = text.rfind(prefix)
        if index == -1:
            continue
        if len(text) < index + len(prefix) + 1:  # the prefix ends the text: no answer, later prefixes unread
            return None
        return text[index + len(prefix):].strip()
    return None


def score_answer(prediction: str, answers: Sequence[str] | str) -> dict[str, float]:
    """``sub_em``, ``em`` and ``f1`` (0-1) of one CoT prediction against its gold answers."""
    golds = [answers] if isinstance(answers, str) else list(answers)
    answer = extract_answer(prediction)
    if answer is None:
        return {"sub_em": 0.0, "em": 0.0, "f1": 0.0}
    normalised = normalize_answer(answer)
    return {"sub_em": sub_em(answer, golds),
            "em": 1.0 if any(normalised == normalize_answer(gold) for gold in golds) else 0.0,
            "f1": token_f1(answer, golds)}


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Per-sample metrics: ``sub_em``, ``em``, ``f1`` (0-100) and ``no_answer`` (0/1, summed)."""
    scores = score_answer(results[0], doc["answers"])
    metrics = {name: 100 * value for name, value in scores.items()}
    metrics["no_answer"] = 1.0 if extract_answer(results[0]) is None else 0.0
    return metrics


# ------------------------------------------------------------------------------------------ prompts


def load_template(metadata: Mapping[str, Any]) -> str:
    """``PROMPT_DICT["cot_answer"]`` of the pinned file, or of the local override."""
    path = local_override(dict(metadata), TEMPLATE_KEY, TEMPLATE_ENV)
    if path is None:
        path = download_checked(TEMPLATE_URL, f"longmab_po/{TEMPLATE_COMMIT[:12]}/template.py", TEMPLATE_SHA256,
                           f"--metadata {TEMPLATE_KEY} or {TEMPLATE_ENV} to a copy of src/evaluation/template.py")
    return template_from(path, "PROMPT_DICT", "cot_answer")


def truncate(prompt: str, tokenizer: Any, max_length: int) -> tuple[str, bool, int]:
    """``process_prompt`` truncation: (prompt, whether cut, token count before); untouched when it fits."""
    ids = tokenizer(prompt, truncation=False, verbose=False)["input_ids"]
    if len(ids) <= max_length:
        return prompt, False, len(ids)
    kept = ids[: max_length // 2] + ids[-max_length // 2 :]  # the protocol's expression, verbatim
    return tokenizer.decode(kept, skip_special_tokens=True), True, len(ids)


def dataset_rows(dataset: str, metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows with ``input``, ``context`` and ``answers``: LongBench's (longbench_data) or InfiniteBench's."""
    if dataset == infinitebench.ENQA:
        return [{**row, "answers": row["answer"]} for row in infinitebench.rows_from(metadata)]
    source = metadata.get("longbench_data") or os.environ.get(DATA_ENV) or None
    return load_rows(dataset, source, revision=metadata.get("longbench_revision"))


def build_docs(rows: Sequence[Mapping[str, Any]], dataset: str, template: str, tokenizer: Any,
               max_length: int) -> list[dict[str, Any]]:
    """Docs: id, question, answers, the truncated user message and its token counts (the context stays out)."""
    docs = []
    for number, row in enumerate(rows, start=1):
        prompt, truncated, n_tokens = truncate(template.format(context=row["context"], question=row["input"]),
                                               tokenizer, max_length)
        docs.append({"id": str(row.get("id", row.get("_id", number))), "cotqa_dataset": dataset,
                     "input": row["input"], "answers": [str(a) for a in row["answers"]], "prompt": prompt,
                     "prompt_tokens": n_tokens, "prompt_truncated": truncated})
    return docs


def load(*, cotqa_dataset: str, **metadata: Any) -> Any:
    """lm-eval ``custom_dataset`` hook: one ``test`` split of built docs for one dataset."""
    from datasets import Dataset, DatasetDict

    if cotqa_dataset not in DATASETS:
        raise ValueError(f"unknown CoT-QA dataset {cotqa_dataset!r}; one of {', '.join(DATASETS)}")
    task = f"{PREFIX}_{cotqa_dataset}"
    tokenizer = prompt_tokenizer(metadata, task)
    max_length = int(metadata["max_length"]) if metadata.get("max_length") not in (None, "") else MAX_INPUT_LEN
    if max_length <= 1:
        raise ValueError(f"{task}: max_length must be > 1 token, got {max_length}")
    docs = build_docs(dataset_rows(cotqa_dataset, metadata), cotqa_dataset, load_template(metadata), tokenizer,
                      max_length)
    log.info("%s: %d rows, max_length %d, %d truncated", task, len(docs), max_length,
             sum(d["prompt_truncated"] for d in docs))
    return DatasetDict({"test": Dataset.from_list(docs)})
