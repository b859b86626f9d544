"""LongBench v2 the official way (THUDM/LongBench ``pred.py`` and ``result.py``), as lm-eval tasks.

lm-eval's own ``longbench2`` scores the 503 multiple-choice questions by the log-likelihood of the letter; the
published numbers come from generation, with the answer parsed from "The correct answer is (X)". Tasks:

* ``longreward_longbench_v2_plain``: prompt ``prompts/0shot.txt``, up to 128 new tokens;
* ``longreward_longbench_v2_cot``: ``0shot_cot.txt`` (up to 1024 new tokens of reasoning), then, inside the same
  task, ``0shot_cot_ans.txt`` with the stripped reasoning as ``$COT$`` (up to 128 new tokens), as a follow-up
  generation (:class:`~lr_eval.tasks.lm_eval_adapter.FollowUpTask`);
* ``longreward_longbench_v2_no_context``: ``0shot_no_context.txt`` (memorisation, no document);
* ``longreward_longbench_v2_rag``: ``0shot_rag.txt`` over the top-N ``retrieved_context`` chunks of each row
  (``--metadata '{"longbench_v2_rag": N}'``); the official dataset has no retrieval field, so this task needs a
  data file that carries it;
* group ``longreward_longbench_v2``: plain and CoT (listed side by side; lm-eval does not average them).

Prompts: the five files of ``prompts/`` in THUDM/LongBench at :data:`COMMIT`, fetched once, SHA-256 checked
(:func:`~lr_eval.tasks.judging.download_checked`), cached, never vendored; override: ``longbench_v2_prompts`` /
``LR_LONGBENCH_V2_PROMPTS`` = a folder holding files of the same names. Filled as ``pred.py`` does, by chained
``str.replace`` in its order ($DOC$ with the stripped context, $Q$, $C_A$..$C_D$ stripped, then $COT$).

Data: ``data.json`` of the HF dataset ``THUDM/LongBench-v2`` at :data:`DATA_REVISION`, SHA-256 checked; override:
``longbench_v2_data`` / ``LR_LONGBENCH_V2_DATA`` = a JSON list or JSONL file in that format.

Truncation, as ``query_llm``: ``tokenizer.encode(prompt)`` (special tokens included); above ``max_len`` tokens keep
``ids[:max_len // 2] + ids[-max_len // 2:]`` and decode once with special tokens skipped (the CoT answer prompt
too). ``max_len`` (``model2maxlen.json``'s role) is ``--metadata '{"max_length": N}'``, else the model's window
minus the task's new tokens; the value is recorded as ``configs.<task>.metadata.effective_max_length``. The prompt
is the only user message (run with ``--apply_chat_template``). Decoding: temperature 0.1, as ``pred.py``.

Scoring: :func:`extract_answer` is ``pred.py``'s (``*`` removed, first "The correct answer is (X)", else first
"The correct answer is X", X in A-D; else no answer, which is wrong). Metrics are ``result.py``'s: ``overall``,
``easy``, ``hard``, ``short``, ``medium``, ``long`` (100 x accuracy, rounded to one decimal), plus ``no_answer``
(predictions without a letter, counted). One deviation, in the direction that can only lower a score:
``pred.py`` drops an item whose API call returned nothing; here an empty generation is the model's answer, and
wrong (for CoT: an empty reasoning gets no answer step and counts as no answer).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lr_eval.flags import truthy
from lr_eval.suite import FAMILY

from .cot_qa import truncate
from .judging import EFFECTIVE_MAX_LENGTH, download_checked, prompt_tokenizer
from .lm_eval_adapter import FollowUpTask, note_in_results

log = logging.getLogger(__name__)

PREFIX = FAMILY["longbench_v2"].prefix
VARIANTS: tuple[str, ...] = FAMILY["longbench_v2"].names

#: THUDM/LongBench (LongBench v2 lives at the repository's root) and the SHA-256 of each prompt file there.
COMMIT = "2e00731f8d0bff23dc4325161044d0ed8af94c1e"
PROMPTS_URL = f"https://raw.githubusercontent.com/THUDM/LongBench/{COMMIT}/prompts/{{name}}.txt"
PROMPT_SHA256: dict[str, str] = {
    "0shot": "68a162252bc9ff71d5d7abca3d69bb31aac3c35f832d657a2866f2018b8a6950",
    "0shot_cot": "6cc33d92fd8f611662b756c1f10f302c541ca005b58c46d5f3188ac3a939bfe8",
    "0shot_cot_ans": "85ec59df4ac0e27aabbc619a7ca5cf3ae1787dd5a76cf51a18944eb52c91955f",
    "0shot_no_context": "125fb44183af01ffc623df19392b80a287db62af3e2a2805e5b2ff9c7b2bee30",
    "0shot_rag": "5c50ce4fa24d297b8c72eb048599681ee01ced5d24a6636464386d6d3c72c4c9",
}
PROMPTS_KEY, PROMPTS_ENV = "longbench_v2_prompts", "LR_LONGBENCH_V2_PROMPTS"

DATA_REPO = "THUDM/LongBench-v2"
DATA_REVISION = "2b48e494f2c7a2f0af81aae178e05c7e1dde0fe9"
DATA_SHA256 = "15d61c22d92c96900b3c4948b6aeea218d3214b676a65df48e7b8555604c7fe2"
DATA_URL = f"https://huggingface.co/datasets/{DATA_REPO}/resolve/{DATA_REVISION}/data.json"
DATA_KEY, DATA_ENV = "longbench_v2_data", "LR_LONGBENCH_V2_DATA"
RAG_KEY = "longbench_v2_rag"

#: The fields ``pred.py`` keeps of each row (``retrieved_context`` only for RAG).
FIELDS: tuple[str, ...] = ("_id", "domain", "sub_domain", "difficulty", "length", "question", "choice_A",
                           "choice_B", "choice_C", "choice_D", "answer", "context")
#: Prompt file of each variant's first generation, and pred.py's max new tokens for it.
PROMPT_OF: dict[str, str] = {"plain": "0shot", "cot": "0shot_cot", "no_context": "0shot_no_context",
                             "rag": "0shot_rag"}
ANSWER_PROMPT = "0shot_cot_ans"
MAX_NEW_TOKENS: dict[str, int] = {"plain": 128, "cot": 1024, "no_context": 128, "rag": 128}
ANSWER_MAX_NEW_TOKENS = 128

_PAREN = re.compile(r"The correct answer is \(([A-D])\)")
_BARE = re.compile(r"The correct answer is ([A-D])")


# ---------------------------------------------------------------------------------------- scoring


def extract_answer(response: str) -> str | None:
    """``pred.py``'s letter: asterisks removed, "The correct answer is (X)" first, then "... is X"; None if neither."""
    response = response.replace("*", "")
    match = _PAREN.search(response) or _BARE.search(response)
    return match.group(1) if match else None


#: The breakdowns of ``result.py``, in its column order: which samples each one averages over.
BREAKDOWNS: dict[str, Any] = {
    "overall": lambda difficulty, length: True,
    "easy": lambda difficulty, length: difficulty == "easy",
    "hard": lambda difficulty, length: difficulty != "easy",
    "short": lambda difficulty, length: length == "short",
    "medium": lambda difficulty, length: length == "medium",
    "long": lambda difficulty, length: length not in ("short", "medium"),
}


def breakdown(items: Iterable[Sequence[Any]], which: str) -> float:
    """``result.py``'s figure for one breakdown of (difficulty, length, correct) items: round(100 x accuracy, 1);
    NaN when no item falls in it (where result.py divides by zero)."""
    keep = BREAKDOWNS[which]
    picked = [float(correct) for difficulty, length, correct in items if keep(difficulty, length)]
    return round(100 * sum(picked) / len(picked), 1) if picked else math.nan


def _aggregation(which: str) -> Callable[[Sequence[Sequence[Any]]], float]:
    """The lm-eval aggregation of one breakdown (a module-level name, for ``aggregation: !function``)."""
    def aggregate(items: Sequence[Sequence[Any]]) -> float:
        return breakdown(items, which)

    aggregate.__name__ = aggregate.__qualname__ = which
    return aggregate


overall, easy, hard, short, medium, long = (_aggregation(name) for name in BREAKDOWNS)


def final_response(doc: Mapping[str, Any], results: Sequence[Any]) -> str | None:
    """The generation the letter is read from (the CoT answer step when there is one); None when none was made."""
    wanted = 2 if doc["variant"] == "cot" else 1
    if len(results) < wanted:
        return None  # an empty CoT reasoning gets no answer step
    value = results[wanted - 1]
    return None if value is None else str(value).strip()


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Per question: one (difficulty, length, correct) item for every breakdown, and no_answer (0/1, summed)."""
    response = final_response(doc, results)
    pred = extract_answer(response) if response else None
    item = (doc["difficulty"], doc["length"], 1.0 if pred == doc["answer"] else 0.0)
    return {**{name: item for name in BREAKDOWNS}, "no_answer": 0.0 if pred else 1.0}


# ---------------------------------------------------------------------------------------- prompts


def load_prompts(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Prompt file name -> text: the pinned official files, or every file from the local override folder."""
    folder = metadata.get(PROMPTS_KEY) or os.environ.get(PROMPTS_ENV)
    out = {}
    for name, sha256 in PROMPT_SHA256.items():
        if folder:
            path = Path(str(folder)).expanduser() / f"{name}.txt"
            if not path.is_file():
                source = PROMPTS_KEY if metadata.get(PROMPTS_KEY) else PROMPTS_ENV
                raise FileNotFoundError(f"{source}: {path} does not exist (the folder needs every file of "
                                        f"prompts/: {', '.join(f'{n}.txt' for n in PROMPT_SHA256)})")
        else:
            path = download_checked(PROMPTS_URL.format(name=name), f"longbench_v2/{COMMIT[:12]}/{name}.txt", sha256,
                                    f"--metadata {PROMPTS_KEY} or {PROMPTS_ENV} to a copy of the prompts/ folder")
        out[name] = path.read_text(encoding="utf-8")
    return out


def fill(template: str, row: Mapping[str, Any], context: str) -> str:
    """``pred.py``'s chained replace, in its order (so a placeholder inside the context is replaced as there)."""
    prompt = template.replace("$DOC$", context.strip()).replace("$Q$", row["question"].strip())
    for letter in "ABCD":
        prompt = prompt.replace(f"$C_{letter}$", row[f"choice_{letter}"].strip())
    return prompt


def rag_context(row: Mapping[str, Any], top: int) -> str:
    """The top-`top` retrieved chunks, back in document order (``c_idx``), numbered as ``pred.py`` does."""
    chunks = sorted(row["retrieved_context"][:top], key=lambda x: x["c_idx"])
    return "\n\n".join(f"Retrieved chunk {i + 1}: {x['content']}" for i, x in enumerate(chunks))


# ------------------------------------------------------------------------------------------- data


def read_rows(path: Path, need_retrieval: bool = False) -> list[dict[str, Any]]:
    """Rows of a file in the official format (a JSON list, or JSON lines), each checked for the official fields."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        rows, lines = (data, None) if isinstance(data, list) else ([data], [1])
    except json.JSONDecodeError:
        rows, lines = [], []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: not JSON ({error.msg})") from None
            lines.append(number)
    fields = FIELDS + (("retrieved_context",) if need_retrieval else ())
    for index, row in enumerate(rows):
        where = f"{path}, line {lines[index]}" if lines else f"{path}, item {index}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: not a JSON object")
        for field in fields:
            if field not in row:
                raise ValueError(f"{where}: no field {field!r}")
            if field != "retrieved_context" and not isinstance(row[field], str):
                raise ValueError(f"{where}: field {field!r} is not a string")
        if row["answer"] not in ("A", "B", "C", "D"):
            raise ValueError(f"{where}: field 'answer' is {row['answer']!r}, not one of A, B, C, D")
    return rows


def data_file(metadata: Mapping[str, Any]) -> Path:
    """The local override, else the pinned official ``data.json`` (downloaded once, SHA-256 checked)."""
    value = metadata.get(DATA_KEY) or os.environ.get(DATA_ENV)
    if value:
        path = Path(str(value)).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{DATA_KEY if metadata.get(DATA_KEY) else DATA_ENV}: {path} does not exist")
        return path
    return download_checked(DATA_URL, f"longbench_v2/{DATA_REVISION[:12]}/data.json", DATA_SHA256,
                            f"--metadata {DATA_KEY} or {DATA_ENV} to a copy of data.json")


def prompt_budget(metadata: Mapping[str, Any], max_new_tokens: int) -> int:
    """``max_len``: metadata ``max_length``, else the model's window minus the new tokens."""
    from .longbench_data import default_max_length, tokenizer_name

    if metadata.get("max_length") not in (None, ""):
        limit = int(metadata["max_length"])
    else:
        name = tokenizer_name(metadata)
        if name is None:
            raise ValueError(f"{PREFIX} truncates at the model's window: pass --model_args pretrained=... or "
                             "--metadata '{\"max_length\": N}'")
        limit = default_max_length(name, max_new_tokens, truthy(metadata.get("trust_remote_code")))
    if limit <= 1:
        raise ValueError(f"{PREFIX}: max_length must be > 1 token, got {limit}")
    return limit


def build_docs(rows: Sequence[Mapping[str, Any]], variant: str, prompts: Mapping[str, str], tokenizer: Any,
               max_length: int, rag: int = 0) -> list[dict[str, Any]]:
    """Docs: the row's fields but the context, the truncated first prompt and, for CoT, the answer template
    (everything filled but ``$COT$``: pred.py replaces it last)."""
    docs = []
    for row in rows:
        context = rag_context(row, rag) if variant == "rag" else row["context"]
        prompt, truncated, n_tokens = truncate(fill(prompts[PROMPT_OF[variant]], row, context), tokenizer,
                                               max_length)
        doc = {k: row[k] for k in FIELDS if k != "context"}
        doc.update(variant=variant, prompt=prompt, prompt_tokens=n_tokens, prompt_truncated=truncated,
                   max_length=max_length,
                   answer_template=fill(prompts[ANSWER_PROMPT], row, context) if variant == "cot" else "")
        docs.append(doc)
    return docs


def load(*, longbench_v2_variant: str, **metadata: Any) -> Any:
    """lm-eval ``custom_dataset`` hook: one ``test`` split of built docs for one variant."""
    from datasets import Dataset, DatasetDict

    if longbench_v2_variant not in VARIANTS:
        raise ValueError(f"unknown LongBench v2 variant {longbench_v2_variant!r}; one of {', '.join(VARIANTS)}")
    task = f"{PREFIX}_{longbench_v2_variant}"
    rag = int(metadata.get(RAG_KEY) or 0)
    if longbench_v2_variant == "rag" and rag <= 0:
        raise ValueError(f"{task}: set the number of retrieved chunks, --metadata '{{\"{RAG_KEY}\": N}}', and give "
                         f"a data file with a retrieved_context field ({DATA_KEY} or {DATA_ENV})")
    max_length = prompt_budget(metadata, MAX_NEW_TOKENS[longbench_v2_variant])
    note_in_results(EFFECTIVE_MAX_LENGTH, max_length)
    path = data_file(metadata)
    docs = build_docs(read_rows(path, need_retrieval=longbench_v2_variant == "rag"), longbench_v2_variant,
                      load_prompts(metadata), prompt_tokenizer(metadata, task), max_length, rag)
    log.info("%s: %d rows from %s, max_length %d, %d truncated", task, len(docs), path, max_length,
             sum(d["prompt_truncated"] for d in docs))
    return DatasetDict({"test": Dataset.from_list(docs)})


class LongBenchV2Task(FollowUpTask):
    """The CoT variant's answer step is the follow-up of its reasoning; the other variants have none."""

    def follow_up(self, doc: dict[str, Any], first: str, gen_kwargs: dict[str, Any]) -> tuple[Any, dict] | None:
        reasoning = first.strip()
        if doc["variant"] != "cot" or not reasoning:
            return None
        tokenizer = prompt_tokenizer(self.metadata, str(self.config.task))
        prompt, _, _ = truncate(doc["answer_template"].replace("$COT$", reasoning), tokenizer, int(doc["max_length"]))
        return self.render_chat([{"role": "user", "content": prompt}]), {**gen_kwargs,
                                                                         "max_gen_toks": ANSWER_MAX_NEW_TOKENS}
