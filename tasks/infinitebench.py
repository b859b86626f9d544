"""InfiniteBench En.QA (``longbook_qa_eng``) for lm-eval: official rows, prompt, truncation and metric.

Used as ``custom_dataset: !function lr_eval.tasks.infinitebench.load_enqa`` by
``longreward_infinitebench_enqa``; :func:`load_rows` also feeds the CoT-answer protocol
(:mod:`lr_eval.tasks.cot_qa`) and LongReward as a metric (:mod:`lr_eval.tasks.longqa`).

Sources (each with a local override; ``--metadata`` wins over the environment):

* rows: ``longbook_qa_eng.jsonl`` of the official HF dataset ``xinrongzhang2022/InfiniteBench`` (the file
  InfiniteBench's ``scripts/download_dataset.sh`` fetches; 351 questions; fields ``id``, ``context``,
  ``input``, ``answer`` (a list), ``options``), revision ``infinitebench_revision`` (default: the hub's main).
  Override: ``infinitebench_data`` / ``LR_INFINITEBENCH_DATA`` = that JSONL file, or a folder holding it.
* prompt: ``src/prompt.py`` of the GitHub repository OpenBMB/InfiniteBench (MIT) at a pinned commit,
  SHA-256 checked and cached. The file is Python: we parse it with ``ast`` and take the string
  ``<family>_templates["longbook_qa_eng"]`` (never executing it). Family ``infinitebench_prompt_family``:
  ``yarn-mistral`` (default: the templates its scripts use for every open model, YaRN-Mistral, Yi-200K
  and ChatGLM3: ``... Question: {question}\\nAnswer:``) or ``gpt4`` (its chat-model template, ``... Be very
  concise.``). Override: ``infinitebench_prompts`` / ``LR_INFINITEBENCH_PROMPTS`` = a ``prompt.py`` in the
  official format, or a plain text file holding the template itself.

Truncation reproduces ``truncate_by_tokens`` of the open-model scripts (``eval_yarn_mistral.py``,
``eval_chatglm.py``, ``eval_yi_200k.py``): ``tok.encode(prompt)`` (special tokens included); above
``max_length`` keep ``ids[:max_length // 2] + ids[-(max_length // 2):]``; then **always** return
``tok.decode(ids, skip_special_tokens=True)``, one decode of the joined ids, so even a prompt that fits is
round-tripped through the tokenizer as there. Budget: ``--metadata '{"max_length": N}'``, else the model's
window minus the 40 new tokens; the YaRN-Mistral and ChatGLM3 scripts use 128 x 1024 = 131072
(``max_length: 131072``), the Yi-200K one 200000. Decoding: greedy, 40 new tokens (``DATA_NAME_TO_MAX_NEW_TOKENS``;
the vLLM scripts sample at temperature 0.8 without passing that limit, which we do not follow).

Metric: ``score`` = 100 x InfiniteBench's ``qa_f1_score`` for En.QA (``compute_scores.py``: SQuAD
normalisation, whitespace tokens, max token F1 over the gold list, no post-processing of the prediction).
That computation is operation for operation LongBench's ``qa_f1_score`` max over answers, so we use
:func:`lr_eval.tasks.longbench.token_f1`. The InfiniteBench README calls the En.QA metric "ROUGE F1"; the
code computes token F1, which is what we follow. ``sub_em``: 100 x SubEM over the same normalisation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lr_eval.flags import truthy
from lr_eval.jsonl import InputError, read_jsonl, require
from lr_eval.suite import FAMILY

from .longbench import sub_em, token_f1
from .data_files import download_checked
from .pinned import local_override, template_from
from .truncation import default_max_length, prompt_tokenizer, tokenizer_name

log = logging.getLogger(__name__)

TASK = FAMILY["infinitebench_enqa"].prefix
HF_REPO = "xinrongzhang2022/InfiniteBench"
ENQA = "longbook_qa_eng"
ENQA_FILE = f"{ENQA}.jsonl"
#: ``DATA_NAME_TO_MAX_NEW_TOKENS["longbook_qa_eng"]`` in InfiniteBench ``src/eval_utils.py``.
MAX_NEW_TOKENS = 40

PROMPTS_COMMIT = "88b3daa6989da2fbe0077170d7a3c84c25d5ae58"
PROMPTS_URL = f"https://raw.githubusercontent.com/OpenBMB/InfiniteBench/{PROMPTS_COMMIT}/src/prompt.py"
PROMPTS_SHA256 = "d49a6891d6bc61522bb428d66a07b092a6bb6bc195aa0fe103eddd6bb39c7f10"
#: Prompt family -> the dict in ``src/prompt.py`` (``MODEL_TO_PROMPT_TEMPLATE`` in ``eval_utils.py``).
PROMPT_FAMILIES = {"yarn-mistral": "yarn_mistral_templates", "gpt4": "gpt4_templates"}
DEFAULT_FAMILY = "yarn-mistral"

DATA_KEY, DATA_ENV = "infinitebench_data", "LR_INFINITEBENCH_DATA"
PROMPTS_KEY, PROMPTS_ENV = "infinitebench_prompts", "LR_INFINITEBENCH_PROMPTS"
FAMILY_KEY = "infinitebench_prompt_family"


# ------------------------------------------------------------------------------ rows


def _answers(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of an En.QA JSONL file, official fields, file order; ``answer`` becomes a list of strings."""
    rows = []
    for line, row in read_jsonl(path):
        if isinstance(row, InputError):
            raise row
        for field in ("context", "input"):
            require(row, field, str, path, line)
        rows.append({**row, "answer": _answers(require(row, "answer", (list, str), path, line))})
    return rows


def load_rows(source: str | os.PathLike[str] | None = None, revision: str | None = None) -> list[dict[str, Any]]:
    """The En.QA rows: ``source`` (the JSONL file or a folder holding it) or the official HF file."""
    if source is None:
        from huggingface_hub import hf_hub_download

        return read_rows(Path(hf_hub_download(HF_REPO, ENQA_FILE, repo_type="dataset", revision=revision)))
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / ENQA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{DATA_KEY}: {path} does not exist")
    return read_rows(path)


def rows_from(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows a run names (``infinitebench_data`` / ``LR_INFINITEBENCH_DATA``, else the hub)."""
    source = metadata.get(DATA_KEY) or os.environ.get(DATA_ENV) or None
    return load_rows(source, revision=metadata.get("infinitebench_revision") or None)


# --------------------------------------------------------------------------- prompt


def load_template(metadata: Mapping[str, Any]) -> str:
    """The En.QA template (``str.format`` over ``context`` and ``question``) of the run's prompt family."""
    family = str(metadata.get(FAMILY_KEY) or DEFAULT_FAMILY)
    if family not in PROMPT_FAMILIES:
        raise ValueError(f"{FAMILY_KEY}: {family!r} is not one of {', '.join(PROMPT_FAMILIES)}")
    path = local_override(dict(metadata), PROMPTS_KEY, PROMPTS_ENV)
    if path is None:
        path = download_checked(PROMPTS_URL, f"infinitebench/{PROMPTS_COMMIT[:12]}/prompt.py", PROMPTS_SHA256,
                           f"--metadata {PROMPTS_KEY} or {PROMPTS_ENV} to a copy of src/prompt.py")
    return template_from(path, PROMPT_FAMILIES[family], ENQA)


def truncate(prompt: str, tokenizer: Any, max_length: int) -> tuple[str, bool, int]:
    """InfiniteBench ``truncate_by_tokens``: (decoded prompt, whether cut, token count before)."""
    ids = tokenizer(prompt, truncation=False, verbose=False)["input_ids"]
    n_tokens = len(ids)
    if n_tokens > max_length:
        split = max_length // 2
        ids = ids[:split] + ids[-split:]
    return tokenizer.decode(ids, skip_special_tokens=True), n_tokens > max_length, n_tokens


def build_docs(rows: Sequence[Mapping[str, Any]], template: str, tokenizer: Any,
               max_length: int) -> list[dict[str, Any]]:
    """Docs: the row without its book (the prompt carries it), ``answers``, and the truncated prompt."""
    docs = []
    for row in rows:
        prompt, truncated, n_tokens = truncate(template.format(context=row["context"], question=row["input"]),
                                               tokenizer, max_length)
        docs.append({"id": str(row.get("id", "")), "input": row["input"], "answers": list(row["answer"]),
                     "prompt": prompt, "prompt_tokens": n_tokens, "prompt_truncated": truncated})
    return docs


def load_enqa(**metadata: Any) -> Any:
    """lm-eval ``custom_dataset`` hook of the En.QA task: one ``test`` split of built docs."""
    from datasets import Dataset, DatasetDict

    tokenizer = prompt_tokenizer(metadata, TASK)
    if metadata.get("max_length") not in (None, ""):
        max_length = int(metadata["max_length"])
    else:
        max_length = default_max_length(str(tokenizer_name(metadata)), MAX_NEW_TOKENS,
                                        truthy(metadata.get("trust_remote_code", False)))
    if max_length <= 1:
        raise ValueError(f"max_length must be > 1 token, got {max_length}")
    docs = build_docs(rows_from(metadata), load_template(metadata), tokenizer, max_length)
    log.info("InfiniteBench En.QA: %d rows, max_length %d, %d truncated", len(docs), max_length,
             sum(d["prompt_truncated"] for d in docs))
    return DatasetDict({"test": Dataset.from_list(docs)})


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """``score`` (InfiniteBench's En.QA F1) and ``sub_em``, both 0-100, for one generated answer."""
    prediction, answers = results[0], doc["answers"]
    return {"score": 100 * token_f1(prediction, answers), "sub_em": 100 * sub_em(prediction, answers)}
