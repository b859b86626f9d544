"""LongBench / LongBench-E data for lm-eval: official rows, official prompts, official middle truncation.

Used as ``custom_dataset: !function lr_eval.tasks.longbench_data.load_longbench``.
lm-eval calls it with the task's ``dataset_kwargs`` (which dataset, LongBench-E
or not, its max new tokens) and the run's metadata, into which lm-eval merges
``--model_args`` (so ``pretrained=`` arrives here, as for lm-eval's RULER).

Sources (each with a local override; ``--metadata`` wins over the environment):

* rows: ``data.zip`` of the official HF dataset repository ``THUDM/LongBench``
  (the one ``LongBench/pred.py`` loads; its loading script no longer runs under
  ``datasets`` >= 4, so we fetch the zip with ``huggingface_hub`` and read
  ``data/<name>.jsonl`` with the official field names). Override:
  ``longbench_data`` / ``LR_LONGBENCH_DATA`` = a folder with ``<name>.jsonl``
  (or ``data/<name>.jsonl``) or a copy of ``data.zip``. The parquet mirror used
  by lm-eval's own LongBench tasks renames ``input`` to ``question``; we do not
  use it.
* prompt templates: ``LongBench/config/dataset2prompt.json`` of the official
  GitHub repository THUDM/LongBench (MIT, (c) THU-KEG & Zhipu AI), fetched at a
  pinned commit, checked against its SHA-256 and cached; not vendored. Override:
  ``longbench_prompts`` / ``LR_LONGBENCH_PROMPTS`` = a JSON file in that format.

Truncation reproduces ``pred.py``: tokenize the formatted prompt (with the
tokenizer's special tokens); if longer than ``max_length`` tokens, keep
``decode(ids[:half]) + decode(ids[-half:])`` with ``half = int(max_length / 2)``
and special tokens skipped. ``max_length`` is the prompt budget (the role of
``model2maxlen.json``): ``--metadata '{"max_length": N}'``, else the model's
``max_position_embeddings`` minus the dataset's max new tokens; the value used is recorded in the
results as ``configs.<task>.metadata.effective_max_length``. The chat
template, if the run asks for one, is applied afterwards by lm-eval, except for
docs marked ``use_chat_template: false`` (see ``longbench_tasks.LongBenchTask``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lr_eval.config import cache_dir
from lr_eval.flags import truthy

from .longbench import DATASET_METRIC, LONGBENCH_E_DATASETS, NO_CHAT_TEMPLATE_DATASETS

log = logging.getLogger(__name__)

#: Official HF dataset repository and the archive inside it.
HF_REPO = "THUDM/LongBench"
HF_ARCHIVE = "data.zip"

#: Official GitHub repository, pinned commit and checksum of its prompt templates.
PROMPTS_COMMIT = "2e00731f8d0bff23dc4325161044d0ed8af94c1e"
PROMPTS_URL = f"https://raw.githubusercontent.com/THUDM/LongBench/{PROMPTS_COMMIT}/LongBench/config/dataset2prompt.json"
PROMPTS_SHA256 = "56d22ad4f382169c2b8a11ff4c982a4a1bea096c8152b0f0b85b64686b157c30"

DATA_ENV = "LR_LONGBENCH_DATA"
PROMPTS_ENV = "LR_LONGBENCH_PROMPTS"

#: Model-args / metadata keys naming the tokenizer, in priority order (as lm-eval's RULER does).
TOKENIZER_KEYS = ("tokenizer", "pretrained", "model")

_E_BASE_NAMES = frozenset(name[:-2] for name in LONGBENCH_E_DATASETS)


# ------------------------------------------------------------------------------ rows


def _read_jsonl(lines: Sequence[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.strip()]


def _rows_from_zip(archive: Path, config: str) -> list[dict[str, Any]]:
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        for member in (f"data/{config}.jsonl", f"{config}.jsonl"):
            if member in names:
                with zf.open(member) as handle:
                    return _read_jsonl(handle.read().decode("utf-8").splitlines())
    raise FileNotFoundError(f"{archive} has no data/{config}.jsonl")


def load_rows(config: str, source: str | os.PathLike[str] | None = None, revision: str | None = None) -> list[dict]:
    """Rows of one LongBench file (``hotpotqa``, ``hotpotqa_e``, ...), official fields, file order.

    ``source``: a folder (``<config>.jsonl``, ``data/<config>.jsonl`` or ``data.zip`` in it) or a
    ``data.zip``; None -> the official HF archive.
    """
    if source is None:
        from huggingface_hub import hf_hub_download

        archive = hf_hub_download(HF_REPO, HF_ARCHIVE, repo_type="dataset", revision=revision)
        return _rows_from_zip(Path(archive), config)
    path = Path(source).expanduser()
    if path.is_file():
        return _rows_from_zip(path, config)
    for candidate in (path / f"{config}.jsonl", path / "data" / f"{config}.jsonl"):
        if candidate.is_file():
            return _read_jsonl(candidate.read_text(encoding="utf-8").splitlines())
    if (path / HF_ARCHIVE).is_file():
        return _rows_from_zip(path / HF_ARCHIVE, config)
    raise FileNotFoundError(f"no {config}.jsonl, data/{config}.jsonl or {HF_ARCHIVE} under {path}")


# --------------------------------------------------------------------------- prompts


def load_prompts(source: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """``dataset -> template`` (``str.format`` over the row); None -> the pinned official file, cached."""
    if source is not None:
        return json.loads(Path(source).expanduser().read_text(encoding="utf-8"))
    cached = cache_dir() / "longbench" / f"dataset2prompt-{PROMPTS_COMMIT[:12]}.json"
    if not cached.is_file():
        if truthy(os.environ.get("HF_HUB_OFFLINE")):
            raise RuntimeError(
                f"LongBench prompt templates are not cached ({cached}) and HF_HUB_OFFLINE is set; "
                f"point {PROMPTS_ENV} (or --metadata longbench_prompts) at a dataset2prompt.json"
            )
        try:
            with urllib.request.urlopen(PROMPTS_URL, timeout=60) as response:
                payload = response.read()
        except OSError as error:
            raise RuntimeError(
                f"could not download the LongBench prompt templates from {PROMPTS_URL} ({error}); "
                f"point {PROMPTS_ENV} (or --metadata longbench_prompts) at a dataset2prompt.json"
            ) from error
        digest = hashlib.sha256(payload).hexdigest()
        if digest != PROMPTS_SHA256:
            raise RuntimeError(f"{PROMPTS_URL} has SHA-256 {digest}, expected {PROMPTS_SHA256}")
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(payload)
        tmp.replace(cached)
    return json.loads(cached.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------ truncation


def middle_truncate(prompt: str, tokenizer: Any, max_length: int) -> tuple[str, bool, int]:
    """LongBench ``pred.py`` truncation: (prompt, whether truncated, token count before).

    Counts tokens as ``tokenizer(prompt)`` does (special tokens included) and, when
    over ``max_length``, keeps the first and last ``int(max_length / 2)`` tokens,
    each half decoded with special tokens skipped.
    """
    ids = tokenizer(prompt, truncation=False, verbose=False)["input_ids"]
    if len(ids) <= max_length:
        return prompt, False, len(ids)
    half = int(max_length / 2)
    head = tokenizer.decode(ids[:half], skip_special_tokens=True)
    tail = tokenizer.decode(ids[-half:], skip_special_tokens=True)
    return head + tail, True, len(ids)


def tokenizer_name(metadata: Mapping[str, Any]) -> str | None:
    """The tokenizer named in the run's model args / metadata (``tokenizer``, ``pretrained``, ``model``)."""
    for key in TOKENIZER_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@functools.lru_cache(maxsize=4)
def _tokenizer(name: str, trust_remote_code: bool) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)


def default_max_length(name: str, max_gen: int, trust_remote_code: bool = False) -> int:
    """Prompt budget when none is given: the model's context window minus the dataset's max new tokens."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attribute in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        window = getattr(text_config, attribute, None)
        if isinstance(window, int) and window > 0:
            return window - max_gen
    raise ValueError(f"cannot tell the context window of {name}; pass --metadata '{{\"max_length\": N}}'")


# ------------------------------------------------------------------------------ docs


def build_docs(
    rows: Sequence[Mapping[str, Any]],
    dataset: str,
    template: str,
    *,
    tokenizer: Any,
    max_length: int,
    longbench_e: bool = False,
) -> list[dict[str, Any]]:
    """Official rows plus ``prompt`` (formatted, middle-truncated) and the fields our hooks read.

    ``use_chat_template`` is False for trec/triviaqa/samsum/lsht/lcc/repobench-p,
    which the official ``pred.py`` prompts as raw completion even for chat models.
    """
    docs = []
    for row in rows:
        prompt, truncated, n_tokens = middle_truncate(template.format(**row), tokenizer, max_length)
        docs.append(
            {
                **row,
                "prompt": prompt,
                "prompt_tokens": n_tokens,
                "prompt_truncated": truncated,
                "use_chat_template": dataset not in NO_CHAT_TEMPLATE_DATASETS,
                "longbench_dataset": dataset,
                "longbench_e": longbench_e,
            }
        )
    return docs


def load_longbench(
    *,
    longbench_dataset: str,
    longbench_max_gen: int,
    longbench_e: bool = False,
    **metadata: Any,
) -> Any:
    """lm-eval ``custom_dataset`` hook: a ``DatasetDict`` with one ``test`` split of built docs."""
    from datasets import Dataset, DatasetDict

    if longbench_dataset not in DATASET_METRIC:
        raise ValueError(f"unknown LongBench dataset {longbench_dataset!r}")
    if longbench_e and longbench_dataset not in _E_BASE_NAMES:
        raise ValueError(f"{longbench_dataset!r} is not part of LongBench-E")
    config = f"{longbench_dataset}_e" if longbench_e else longbench_dataset

    name = tokenizer_name(metadata)
    if name is None:
        raise ValueError(
            "LongBench truncates prompts with the model's tokenizer: pass --model_args pretrained=... "
            "(or --metadata '{\"tokenizer\": \"...\"}'; in Python, TaskManager(metadata={\"pretrained\": ...}))"
        )
    trust = truthy(metadata.get("trust_remote_code", False))
    tokenizer = _tokenizer(name, trust)
    if metadata.get("max_length") not in (None, ""):
        max_length = int(metadata["max_length"])
    else:
        max_length = default_max_length(name, int(longbench_max_gen), trust)
    if max_length <= 1:
        raise ValueError(f"LongBench max_length must be > 1 token, got {max_length}")
    from .judging import EFFECTIVE_MAX_LENGTH
    from .lm_eval_adapter import note_in_results

    note_in_results(EFFECTIVE_MAX_LENGTH, max_length)

    data_source = metadata.get("longbench_data") or os.environ.get(DATA_ENV) or None
    prompts_source = metadata.get("longbench_prompts") or os.environ.get(PROMPTS_ENV) or None
    rows = load_rows(config, data_source, revision=metadata.get("longbench_revision"))
    template = load_prompts(prompts_source)[longbench_dataset]
    docs = build_docs(rows, longbench_dataset, template, tokenizer=tokenizer, max_length=max_length,
                      longbench_e=bool(longbench_e))
    log.info(
        "LongBench %s: %d rows from %s, tokenizer %s, max_length %d, %d truncated",
        config, len(docs), data_source or f"hf://{HF_REPO}/{HF_ARCHIVE}", name, max_length,
        sum(doc["prompt_truncated"] for doc in docs),
    )
    return DatasetDict({"test": Dataset.from_list(docs)})
