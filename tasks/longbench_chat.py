"""LongBench-Chat as the lm-eval task ``longreward_longbench_chat`` (LongAlign protocol).

Data (THUDM/LongAlign, folder LongBench_Chat, Apache-2.0), read from the official repository
by default and cached under the project cache; each file can be replaced by a local path:

=================  ==============================  ===============================  ===========================
file               --metadata key                  environment variable             what
=================  ==============================  ===============================  ===========================
test_cases.json    ``longbench_chat_test_cases``   ``LR_LONGBENCH_CHAT_TEST_CASES``  50 questions: idx (1-based),
                                                                                    prompt, query, answer
few_shots.json     ``longbench_chat_few_shots``    ``LR_LONGBENCH_CHAT_FEW_SHOTS``   3 graded answers per question
prompt_fs.txt      ``longbench_chat_template``     ``LR_LONGBENCH_CHAT_TEMPLATE``    the judge template
=================  ==============================  ===============================  ===========================

``longbench_chat_dir`` / ``LR_LONGBENCH_CHAT_DIR`` name a folder holding all three.

Protocol: the prompt is middle-truncated at 64,000 tokens of the model's tokenizer (or the model's
window minus 1024 when smaller; ``--metadata '{"max_length": N}'`` sets the budget), then generated greedily with
up to 1024 new tokens (the authors sampled at temperature 1.0 with seed 42; greedy is the
reproducible default; override with ``--gen_kwargs``). The judge gets the template filled with the
question, the reference answer, that question's three graded example answers and the stripped
response (not the document), at temperature 0 with the system prompt below; the verdict is the
first number inside the last ``[[...]]``, clamped to 1-10. Reported score: mean rating × 10.
Differences from the original script (LongAlign ``LongBench_Chat/eval.py``): it wrote each prediction
on one line (newlines replaced by spaces) and re-sent an unparseable judge request up to five times
at temperature 0; we judge the response as generated and re-ask once in the same conversation
(``judge_reasks``), and a verdict that stays unparseable is unscored and counted
(``judge_unscored``), never a score. It took the number as parsed; we clamp it to the 1-10 scale
the template asks for (a 0 counts as 1, a 12 as 10) and mark the judgement ``clamped`` in the
sample's verdict, so a judge that leaves the scale moves our mean where the original's would move
further.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict

from lr_eval.formats import rating_format
from lr_eval.parsing import Parsed, clamp, unscored
from lr_eval.suite import FAMILY
from lr_eval.trust import neutralise_markup, template_separators, tokens
from lr_eval.types import ChatRequest

from .judging import (
    JudgeFilter,
    JudgeSpec,
    middle_truncate,
    prompt_budget,
    prompt_tokenizer,
    register_judge_filter,
    require_judge,
    resolve_file,
)

TASK = FAMILY["longbench_chat"].prefix
MAX_NEW_TOKENS = 1024
SYSTEM_PROMPT = "You're a good assistant at evaluating the quality of texts."
_RAW = "https://raw.githubusercontent.com/THUDM/LongAlign/main/LongBench_Chat/"
_FILES = {
    "test_cases": ("test_cases.json", "longbench_chat_test_cases", "LR_LONGBENCH_CHAT_TEST_CASES"),
    "few_shots": ("few_shots.json", "longbench_chat_few_shots", "LR_LONGBENCH_CHAT_FEW_SHOTS"),
    "template": ("prompt_fs.txt", "longbench_chat_template", "LR_LONGBENCH_CHAT_TEMPLATE"),
}
_NUMBER = re.compile(r"\d+\.\d+|\d+")


def data_file(kind: str, metadata: dict[str, Any] | None) -> Path:
    """Local override or cached download of one LongBench-Chat file."""
    filename, key, env = _FILES[kind]
    return resolve_file(metadata, file_key=key, dir_key="longbench_chat_dir", env=env,
                        dir_env="LR_LONGBENCH_CHAT_DIR", filename=filename, url=_RAW + filename,
                        cache_name=f"longbench_chat/{filename}")


def load_template(metadata: dict[str, Any] | None) -> str:
    """The judge template; checked to take exactly 9 positional fields, as the official one does."""
    path = data_file("template", metadata)
    text = path.read_text(encoding="utf-8")
    if text.count("{}") != 9:
        raise ValueError(f"{path}: expected the LongBench-Chat judge template with 9 '{{}}' fields")
    return text


def _check_cases(cases: Any, few_shots: Any, where: str) -> None:
    if not isinstance(cases, list) or not isinstance(few_shots, list):
        raise ValueError(f"{where}: test cases and few shots must be JSON lists")
    for n, case in enumerate(cases):
        missing = [k for k in ("idx", "prompt", "query", "answer") if k not in case]
        if missing:
            raise ValueError(f"{where}: test case {n} lacks {', '.join(missing)}")
        idx = case["idx"]
        if not isinstance(idx, int) or not 1 <= idx <= len(few_shots):
            raise ValueError(f"{where}: test case {n} has idx {idx!r}, but few_shots.json has {len(few_shots)} "
                             "entries (idx is 1-based)")
        shots = few_shots[idx - 1]
        if len(shots) != 3 or any("answer" not in s or "score" not in s for s in shots):
            raise ValueError(f"{where}: few_shots entry {idx} must hold 3 {{answer, score}} examples")


def load(**metadata: Any) -> DatasetDict:
    """custom_dataset hook: check the judge, read the questions, attach their graded examples, truncate."""
    require_judge(TASK, metadata)
    load_template(metadata)  # fail now, not after generating, if the template is unreachable
    cases_path, shots_path = data_file("test_cases", metadata), data_file("few_shots", metadata)
    cases = json.loads(cases_path.read_text(encoding="utf-8"))
    few_shots = json.loads(shots_path.read_text(encoding="utf-8"))
    _check_cases(cases, few_shots, f"{cases_path} / {shots_path}")
    tokenizer = prompt_tokenizer(metadata, TASK)
    limit = prompt_budget(metadata, MAX_NEW_TOKENS)
    docs = []
    for case in cases:
        prompt, n_tokens = middle_truncate(case["prompt"], tokenizer, limit)
        docs.append({"idx": case["idx"], "query": case["query"], "answer": case["answer"], "prompt": prompt,
                     "prompt_tokens": n_tokens, "truncated": prompt != case["prompt"],
                     "judge_examples": [{"answer": s["answer"], "score": str(s["score"])}
                                        for s in few_shots[case["idx"] - 1]]})
    return DatasetDict({"test": Dataset.from_list(docs)})


def parse_rating(text: str | None) -> Parsed:
    """The official parse: the last [[...]] (of the one grammar, `lr_eval.trust.tokens`), then its first number;
    clamped to 1-10."""
    if text is None:
        return unscored("no answer")
    found = [t.inside for t in tokens(text) if t.double]
    if not found:
        return unscored("no [[rating]] in the answer", text)
    number = _NUMBER.search(found[-1])
    if number is None:
        return unscored("no number in the last [[...]]", text)
    return clamp(float(number.group()), 1.0, 10.0, text)


#: The official verdict, a 1-10 rating in [[...]], with the official parse.
FORMAT = rating_format("longbench_chat.rating", 1, 10, parse_rating)


class ChatJudgeSpec(JudgeSpec):
    """One judge call per sample: the official template with the reference and three graded examples."""

    template_id = "longbench_chat.prompt_fs"
    scale = (1.0, 10.0)
    sample_scale = (10.0, 100.0)

    def __init__(self, task: str, metadata: dict[str, Any] | None = None, max_tokens: int = 1024):
        super().__init__(task, metadata, max_tokens)
        self.template = load_template(self.metadata)
        # External data: its content hash is the version, so an edited template never reuses cached verdicts.
        self.template_version = "sha256:" + hashlib.sha256(self.template.encode("utf-8")).hexdigest()[:12]
        self.separators = template_separators(self.template)

    def render(self, doc: dict[str, Any], response: str) -> str:
        shots = [x for s in doc["judge_examples"] for x in (s["answer"], s["score"])]
        texts = [doc["query"], doc["answer"], *shots, response.strip()]
        return self.template.format(*(neutralise_markup(str(t)) for t in texts))

    def requests(self, doc: dict[str, Any], response: str) -> list[ChatRequest]:
        messages = [{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": self.render(doc, response)}]
        # The official template stays byte for byte: the texts go in raw (chat markup made inert), and the
        # parser keeps to the judge's own words (lr_eval.trust): a verdict copied from the answer is tampered.
        untrusted = [doc["query"], doc["answer"], *(s["answer"] for s in doc["judge_examples"]), response.strip()]
        return [ChatRequest.of(messages, temperature=0.0, max_tokens=self.max_tokens,
                               untrusted=[neutralise_markup(t) for t in untrusted], evaluated=[response.strip()],
                               separators=self.separators, template_id=self.template_id,
                               template_version=self.template_version, answer_format=FORMAT)]

    def parse(self, text: str | None) -> Parsed:
        return FORMAT.parse(text)

    def combine(self, doc: dict[str, Any], ratings: list[Parsed]) -> Parsed:
        rating = ratings[0]
        if rating.value is None:
            return rating
        return replace(rating, value=10.0 * float(rating.value))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "system_prompt": SYSTEM_PROMPT, "reported": "mean rating x 10"}


class ChatJudgeFilter(JudgeFilter):
    spec_class = ChatJudgeSpec
    doc_fields = ("query", "answer", "judge_examples")


FILTER_NAME = "longreward_judge_longbench_chat"
register_judge_filter(FILTER_NAME, ChatJudgeFilter)
