"""AlpacaEval 2.0 as the lm-eval task ``longreward_alpacaeval2`` (``weighted_alpaca_eval_gpt4_turbo``).

The model answers the 805 AlpacaEval instructions; a judge compares each answer with the
reference answer of ``gpt4_1106_preview`` using alpaca_eval's annotator prompt; the task reports
AlpacaEval's metrics computed exactly as alpaca_eval does (:mod:`lr_eval.tasks.alpacaeval_metrics`).

Data (loaded from the official sources and cached; each file can be replaced by a local path):

=======================  ====================================  ========================================  ===========
file                     --metadata key                        environment variable                      default
=======================  ====================================  ========================================  ===========
reference outputs        ``alpacaeval_reference_outputs``      ``LR_ALPACAEVAL_REFERENCE_OUTPUTS``       HF hub
annotator template       ``alpacaeval_annotator_template``     ``LR_ALPACAEVAL_ANNOTATOR_TEMPLATE``      GitHub
gamed baselines          ``alpacaeval_gamed``                  ``LR_ALPACAEVAL_GAMED``                   HF hub
instruction difficulty   ``alpacaeval_instruction_difficulty`` ``LR_ALPACAEVAL_INSTRUCTION_DIFFICULTY``  df_gamed
=======================  ====================================  ========================================  ===========

* reference outputs: ``alpaca_eval_gpt4_baseline.json`` of the HF hub dataset ``tatsu-lab/alpaca_eval``
  (the AlpacaEval 2.0 set: ``instruction``, ``output`` of gpt4_1106_preview, ``generator``, ``dataset``),
  read with ``huggingface_hub`` (its loading script no longer runs under ``datasets`` >= 4);
  ``alpacaeval_revision`` picks a hub revision.
* annotator template: ``alpaca_eval_clf.txt`` of ``weighted_alpaca_eval_gpt4_turbo`` (the config points to
  ``evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt``) from the GitHub repository
  tatsu-lab/alpaca_eval at a pinned commit, checked against its SHA-256; not vendored.
* ``df_gamed.csv`` (hub): the two "gamed" baselines' annotations for ``length_controlled_v1``.
* instruction difficulty: alpaca_eval's ``length_controlled_v1`` takes it from ``df_gamed.csv`` (first row of
  each instruction index) and so do we; ``alpacaeval_instruction_difficulty`` names a CSV
  (``index,instruction_difficulty``) to use instead, or ``hub`` for the hub's ``instruction_difficulty.csv``.
* ``alpacaeval_dir`` / ``LR_ALPACAEVAL_DIR``: a folder holding files under their official names.

Generation: the instruction is the whole prompt (use ``--apply_chat_template`` for chat models, as
alpaca_eval's own model configs do); greedy, no stop sequence, up to 2048 new tokens (alpaca_eval lets each
model config choose; 2048 leaves room for the long answers AlpacaEval favours). The answer is judged with
surrounding whitespace stripped (its length, in characters, enters avg_length and the LC model).

Annotator protocol (alpaca_eval's ``weighted_alpaca_eval_gpt4_turbo``):

* The template (ChatML text) is filled as alpaca_eval's ``make_prompts`` does (``{instruction}``,
  ``{output_1}``, ``{output_2}``; in one pass, so a placeholder inside an answer stays text) and split into
  chat messages as its ``prompt_to_chatml`` does. Decoding: ``max_tokens=1``, ``temperature=1`` (as the official config;
  it does not change the log-probabilities), ``logprobs=True``, ``top_logprobs=5``.
* Order: ``output_1`` is the reference, ``output_2`` the model. Per instruction the pair is shown swapped when
  ``random.Random("is_switched_outputs" + instruction + str(seed)).choices([False, True], k=1)[0]`` is True,
  with seed 0 (``alpacaeval_seed``): alpaca_eval's ``RandomSwitchTwoColumnsProcessor`` rule with the seed
  its ``PairwiseAnnotator`` passes down, so the judge sees the very prompts alpaca_eval sends (checked against
  the published annotations of five models: the recorded order matches on every judged instruction).
* Preference from the log-probabilities of the identifiers ``m`` (first shown) and ``M``:
  ``2 - p(m)`` with ``p(m) = exp(lp(m) - logsumexp(lp(m), lp(M)))``, a missing one counting as -inf; then
  ``3 - preference`` when the pair was swapped. 1 = reference better, 2 = model better. When the endpoint
  returns no log-probabilities, the answer itself decides (``m`` -> 1, ``M`` -> 2, before unswapping). An answer
  with neither identifier is unscored (alpaca_eval's NaN) and counted in ``judge_unscored``.
* An answer identical to the reference gets 1.5 without a judge call, as in alpaca_eval.
* ``alpacaeval_both_orders: true`` also judges every instruction in the other order and reports
  ``position_consistency``: the share of instructions whose two orders pick the same winner (model,
  reference, or a tie at exactly 1.5), over instructions judged in both orders. The other metrics still use
  the seeded order only, so they stay comparable with the leaderboard.

Metrics (corpus-level ``aggregation: !function`` hooks over per-instruction records; lm-eval computes no
stderr for them, so ``standard_error`` and ``lc_standard_error`` are reported as metrics of their own):
``win_rate``, ``standard_error``, ``discrete_win_rate``, ``avg_length``, ``length_controlled_winrate``,
``lc_standard_error`` (``alpacaeval_glm``: ``length_controlled_v1`` (default), ``length_controlled_noreg``
or ``none``), ``position_consistency`` (both-orders runs only), ``win_rate_pessimistic`` and
``length_controlled_winrate_pessimistic`` (unscored instructions counted as lost), ``judge_unscored``,
``judge_tampered`` and ``judge_cost_usd``. Chat markup inside an instruction or an output (``<|im_end|>``,
``<|im_start|>system``) is made inert before the template is filled and split, so it never becomes a message.
The LC win rate is a fit over all instructions of the run: with ``--limit`` it is not the leaderboard's
number, and below 5 judged instructions it is NaN (logged).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict

from lr_eval.flags import truthy
from lr_eval.formats import choice_format
from lr_eval.judge import JudgeClient, gather_or_cancel
from lr_eval.parsing import Parsed, result_to_parsed, unscored
from lr_eval.records import SCORED, TAMPERED, UNSCORED, JudgeCall, JudgeReport, Verdict
from lr_eval.suite import FAMILY
from lr_eval.trust import neutralise_markup
from lr_eval.types import ChatRequest, ChatResult

from .alpacaeval_metrics import (
    GLM_NAMES,
    length_controlled_winrate,
    load_gamed,
    load_instruction_difficulty,
    preference_from_logprobs,
    preference_from_text,
    unswap,
    win_rate_metrics,
)
from .data_files import download_checked
from .judge_config import build_judge, require_judge
from .judge_filters import BatchJudgeFilter
from .judged_samples import count_verdicts, judge_cost
from .lm_eval_adapter import register_judge_filter
from .verdict_metrics import decode_verdict

log = logging.getLogger(__name__)

TASK = FAMILY["alpacaeval2"].prefix
FILTER_NAME = "longreward_judge_alpacaeval2"
MAX_NEW_TOKENS = 2048

HUB_REPO = "tatsu-lab/alpaca_eval"
TEMPLATE_COMMIT = "cd543a149df89434d8a54582c0151c0b945c3d20"
TEMPLATE_URL = (f"https://raw.githubusercontent.com/tatsu-lab/alpaca_eval/{TEMPLATE_COMMIT}/src/alpaca_eval/"
                "evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt")
TEMPLATE_SHA256 = "784227e6dc2832fc08c43d2c8ea3a308e7523780187a1aaad2f85e30bac85f62"
TEMPLATE_ID = "alpaca_eval.weighted_alpaca_eval_gpt4_turbo"

#: alpaca_eval's seed for the output order (PairwiseAnnotator's default, passed to its processors).
SEED = 0
SWITCH_COLUMN = "is_switched_outputs"
FIRST_ID, SECOND_ID = "m", "M"
#: The answer: one token naming the preferred output, no rationale (read from its log-probabilities first).
FORMAT = choice_format("alpacaeval2.preference", (FIRST_ID, SECOND_ID),
                       lambda text: preference_from_text(text, FIRST_ID, SECOND_ID))
#: The annotator's decoding (weighted_alpaca_eval_gpt4_turbo/configs.yaml).
DECODING: dict[str, Any] = {"temperature": 1.0, "max_tokens": 1, "logprobs": True, "top_logprobs": 5}
PLACEHOLDERS = ("instruction", "output_1", "output_2")
DEFAULT_GLM = "length_controlled_v1"
GLM_CHOICES = (*GLM_NAMES, "none")

#: kind -> (official file name, --metadata key, environment variable, default source)
_FILES: dict[str, tuple[str, str, str, str | None]] = {
    "reference_outputs": ("alpaca_eval_gpt4_baseline.json", "alpacaeval_reference_outputs",
                          "LR_ALPACAEVAL_REFERENCE_OUTPUTS", "hub"),
    "annotator_template": ("alpaca_eval_clf.txt", "alpacaeval_annotator_template",
                           "LR_ALPACAEVAL_ANNOTATOR_TEMPLATE", "github"),
    "gamed": ("df_gamed.csv", "alpacaeval_gamed", "LR_ALPACAEVAL_GAMED", "hub"),
    "instruction_difficulty": ("instruction_difficulty.csv", "alpacaeval_instruction_difficulty",
                               "LR_ALPACAEVAL_INSTRUCTION_DIFFICULTY", None),
}
DIR_KEY, DIR_ENV = "alpacaeval_dir", "LR_ALPACAEVAL_DIR"

#: Metrics computed from all instructions at once; each gets the same per-instruction record.
CORPUS_METRICS = ("win_rate", "standard_error", "discrete_win_rate", "avg_length", "length_controlled_winrate",
                  "lc_standard_error", "win_rate_pessimistic", "length_controlled_winrate_pessimistic")
#: A preference: 1 = the reference is better, 2 = the model (the scale's minimum: what a tampered verdict gets).
PREFERENCE_SCALE = (1.0, 2.0)


# ------------------------------------------------------------------------------------------- data files


def _hub_file(filename: str, metadata: Mapping[str, Any], hint: str) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(HUB_REPO, filename, repo_type="dataset",
                                    revision=metadata.get("alpacaeval_revision") or None))
    except Exception as e:  # offline, gated, missing: all mean "give us a local copy"
        raise RuntimeError(f"could not get {filename} from the HF hub dataset {HUB_REPO} ({type(e).__name__}: "
                           f"{e}); download it and pass its path with {hint}") from e


def data_file(kind: str, metadata: Mapping[str, Any] | None) -> Path | None:
    """A data file: --metadata path > --metadata folder > env path > env folder > official source.

    None only for the instruction difficulty when none is named (it then comes from df_gamed.csv).
    """
    metadata = metadata or {}
    filename, key, env, default = _FILES[kind]
    hint = f"--metadata '{{\"{key}\": \"PATH\"}}' or {env}=PATH"
    value = metadata.get(key)
    if kind == "instruction_difficulty" and str(value or os.environ.get(env, "")).strip().lower() == "hub":
        return _hub_file(filename, metadata, hint)
    folder_ok = kind != "instruction_difficulty"  # a folder never switches the difficulty source silently
    candidates = [(key, value)]
    if folder_ok and metadata.get(DIR_KEY):
        candidates.append((DIR_KEY, str(Path(metadata[DIR_KEY]) / filename)))
    candidates.append((env, os.environ.get(env)))
    if folder_ok and os.environ.get(DIR_ENV):
        candidates.append((DIR_ENV, str(Path(os.environ[DIR_ENV]) / filename)))
    for source, path_text in candidates:
        if path_text:
            path = Path(str(path_text)).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"{source}: {path} does not exist")
            return path
    if default == "hub":
        return _hub_file(filename, metadata, hint)
    if default == "github":
        return download_checked(TEMPLATE_URL, f"alpacaeval/{TEMPLATE_COMMIT[:12]}/{filename}", TEMPLATE_SHA256)
    return None


def load_reference(path: Path) -> list[dict[str, Any]]:
    """The AlpacaEval set in order: instruction, reference output, its generator, source dataset."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the AlpacaEval reference outputs: {e}") from e
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a non-empty JSON list of {{instruction, output, generator}} objects")
    rows = []
    for i, rec in enumerate(data):
        if not isinstance(rec, dict) or not isinstance(rec.get("instruction"), str) \
                or not isinstance(rec.get("output"), str):
            raise ValueError(f"{path}: record {i} needs string fields 'instruction' and 'output'")
        rows.append({"index": i, "instruction": rec["instruction"], "reference": rec["output"],
                     "reference_generator": str(rec.get("generator") or ""), "dataset": str(rec.get("dataset") or "")})
    return rows


def glm_of(metadata: Mapping[str, Any] | None) -> str:
    glm = str((metadata or {}).get("alpacaeval_glm") or DEFAULT_GLM)
    if glm not in GLM_CHOICES:
        raise ValueError(f"alpacaeval_glm must be one of {', '.join(GLM_CHOICES)}, not {glm!r}")
    return glm


@functools.lru_cache(maxsize=4)
def _gamed_rows(path: str) -> list[dict[str, Any]]:
    return load_gamed(path)


@functools.lru_cache(maxsize=4)
def _difficulty_file(path: str) -> dict[int, float]:
    return load_instruction_difficulty(path)


@dataclass(frozen=True)
class LCInputs:
    """Where the length-controlled fit gets its extra data: the GLM, df_gamed.csv, the difficulty per index."""

    glm: str
    gamed: str | None
    difficulty_source: str | None

    @staticmethod
    def from_metadata(metadata: Mapping[str, Any] | None) -> LCInputs:
        glm = glm_of(metadata)
        if glm == "none":
            return LCInputs(glm, None, None)
        difficulty = data_file("instruction_difficulty", metadata)
        gamed = data_file("gamed", metadata) if glm == "length_controlled_v1" or difficulty is None else None
        return LCInputs(glm, None if gamed is None else str(gamed), None if difficulty is None else str(difficulty))

    def difficulty(self) -> dict[int, float]:
        """{instruction index: difficulty}; from df_gamed.csv (first row of each index) unless a file is named."""
        if self.difficulty_source is not None:
            return _difficulty_file(self.difficulty_source)
        table: dict[int, float] = {}
        for row in _gamed_rows(self.gamed or ""):
            table.setdefault(int(row["index"]), float(row["instruction_difficulty"]))
        return table

    def check_covers(self, indexes: Sequence[int]) -> None:
        """Every instruction of the run needs a difficulty for the LC fit."""
        table = self.difficulty()
        missing = [i for i in indexes if i not in table]
        if missing:
            raise ValueError(f"no instruction difficulty for instruction index(es) {missing[:5]} "
                             f"(source: {self.difficulty_source or self.gamed}); pass the matching files or "
                             "--metadata '{\"alpacaeval_glm\": \"none\"}'")


# --------------------------------------------------------------------------------------------- annotator

_PLACEHOLDER = re.compile(r"{([^ \s]+?)}")  # alpaca_eval's make_prompts pattern


def check_template(text: str, where: str = "annotator template") -> str:
    found = Counter(_PLACEHOLDER.findall(text))
    if set(found) != set(PLACEHOLDERS) or any(n != 1 for n in found.values()):
        raise ValueError(f"{where}: expected each of {{instruction}}, {{output_1}}, {{output_2}} exactly once, "
                         f"found {dict(found)}")
    stripped = text.strip()
    if not stripped.startswith("<|im_start|>") or not stripped.endswith("<|im_end|>"):
        raise ValueError(f"{where}: expected alpaca_eval's ChatML text (<|im_start|>role ... <|im_end|>)")
    return text


def fill_template(template: str, instruction: str, output_1: str, output_2: str) -> str:
    """alpaca_eval's ``make_prompts`` for one example, in one pass over the template.

    alpaca_eval replaces each placeholder's first occurrence in turn, so an instruction or output that
    itself contains ``{output_2}`` would receive the next substitution; we substitute in the template
    only. The prompts are the same whenever no text contains a placeholder (true of every instruction,
    reference and published model output in the AlpacaEval data).
    """
    values = {"instruction": instruction, "output_1": output_1, "output_2": output_2}
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def chatml_messages(prompt: str, start: str = "<|im_start|>", end: str = "<|im_end|>") -> list[dict[str, str]]:
    """alpaca_eval's ``prompt_to_chatml``: one message per ``<|im_start|>role`` block, content stripped.

    (Extra ``system name=...`` parameters, unused by the AlpacaEval annotators, are dropped.)
    """
    prompt = prompt.strip()
    messages = []
    for part in prompt.split(start)[1:]:
        head, _, rest = part.partition("\n")
        role = head.strip().split(" ", 1)[0]
        messages.append({"role": role, "content": rest.split(end, 1)[0].strip()})
    return messages


def is_swapped(instruction: str, seed: int = SEED) -> bool:
    """alpaca_eval's per-instruction order: RandomSwitchTwoColumnsProcessor seeded on the instruction."""
    return random.Random(SWITCH_COLUMN + instruction + str(seed)).choices([False, True], k=1)[0]


def read_preference(result: ChatResult, request: ChatRequest) -> Parsed:
    """The preference in the order shown, from one judge answer (`method`: how it was read).

    Log-probabilities are the judge's own; a text answer goes through the trust rule of every family
    (`lr_eval.parsing.result_to_parsed`): only the judge's own words count, and a preference the evaluated
    text could have supplied is tampered (the reference wins, the scale's minimum, after unswapping).
    """
    if result.ok and result.top_logprobs:
        pref = preference_from_logprobs(result.top_logprobs[0], FIRST_ID, SECOND_ID)
        if pref is None:
            return unscored(f"neither {FIRST_ID} nor {SECOND_ID} among the top log-probabilities")
        return Parsed(value=pref)
    parsed = result_to_parsed(result, _text_preference, request)
    if not parsed.scored and not parsed.tampered and result.ok:
        return unscored(f"answer is neither {FIRST_ID} nor {SECOND_ID} (and no log-probabilities)", parsed.raw)
    return parsed


def _text_preference(text: str | None) -> Parsed:
    pref = preference_from_text(text, FIRST_ID, SECOND_ID)
    return unscored("no preference") if pref is None else Parsed(value=pref)


def _method(result: ChatResult) -> str:
    return "error" if not result.ok else "logprobs" if result.top_logprobs else "text"


def winner(preference: float | None) -> str | None:
    if preference is None:
        return None
    return "tie" if preference == 1.5 else "model" if preference > 1.5 else "reference"


class Annotator:
    """The weighted_alpaca_eval_gpt4_turbo annotator: prompts, seeded order, preference parsing."""

    def __init__(self, template: str, seed: int = SEED, both_orders: bool = False):
        self.template = check_template(template)
        self.seed = seed
        self.both_orders = both_orders
        # External data: its content hash is the version, so an edited template never reuses cached verdicts.
        self.template_version = "sha256:" + hashlib.sha256(template.encode("utf-8")).hexdigest()[:12]

    @staticmethod
    def from_metadata(metadata: Mapping[str, Any] | None) -> Annotator:
        metadata = metadata or {}
        path = data_file("annotator_template", metadata)
        assert path is not None
        seed = metadata.get("alpacaeval_seed")
        return Annotator(check_template(path.read_text(encoding="utf-8"), str(path)),
                         SEED if seed in (None, "") else int(seed), truthy(metadata.get("alpacaeval_both_orders")))

    def request(self, instruction: str, first: str, second: str, evaluated: str | None = None) -> ChatRequest:
        """The judge request for one order (`evaluated`: the model's output; default both); chat markup inside
        the texts is made inert before the template is filled and split into messages, so no text creates a
        message or a role (`lr_eval.trust`)."""
        texts = [neutralise_markup(t) for t in (instruction, first, second)]
        messages = chatml_messages(fill_template(self.template, *texts))
        return ChatRequest.of(messages, **DECODING, template_id=TEMPLATE_ID, template_version=self.template_version,
                              untrusted=texts, evaluated=[first, second] if evaluated is None else [evaluated],
                              answer_format=FORMAT)

    def requests(self, instruction: str, reference: str, output: str) -> list[tuple[bool, ChatRequest]]:
        """(swapped, request) for the seeded order, then (both-orders mode) the other order."""
        swapped = is_swapped(instruction, self.seed)
        orders = [swapped, not swapped] if self.both_orders else [swapped]
        return [(s, self.request(instruction, *((output, reference) if s else (reference, output)), output))
                for s in orders]

    def describe(self) -> dict[str, Any]:
        return {"template_id": TEMPLATE_ID, "template_version": self.template_version, "decoding": dict(DECODING),
                "identifiers": [FIRST_ID, SECOND_ID], "seed": self.seed,
                "order": f'swapped = random.Random("{SWITCH_COLUMN}" + instruction + "{self.seed}")'
                         '.choices([False, True], k=1)[0]',
                "both_orders": self.both_orders}


def judge_alpacaeval(annotator: Annotator, client: JudgeClient, docs: Sequence[Mapping[str, Any]],
                     responses: Sequence[str], lc: LCInputs | None = None,
                     desc: str = "judging AlpacaEval",
                     judge: str | None = None) -> tuple[list[Verdict], JudgeReport]:
    """Judge every instruction in one concurrent batch; one :class:`~lr_eval.records.Verdict` per doc and the
    judge report (`judge` describes the judge configuration).

    A verdict's value is the preference (1-2 in canonical order; None if unscored; 1, the reference, if
    tampered), its calls one per order shown (the seeded order first); its details ``swapped``, ``method``
    (logprobs / text / identical / error), ``top_logprobs``, in both-orders mode ``other_order`` and
    ``consistent``, and the LC inputs (``index``, ``difficulty``, ``glm``, ``gamed``).
    """
    difficulty = lc.difficulty() if lc is not None and lc.glm != "none" else {}
    if lc is not None and lc.glm != "none":
        lc.check_covers([int(d["index"]) for d in docs])  # before any judge call is paid for
    outputs = [r.strip() for r in responses]
    plan: list[tuple[int, bool, ChatRequest]] = []
    for i, (doc, out) in enumerate(zip(docs, outputs, strict=True)):
        if out != doc["reference"]:  # identical outputs: 1.5 without a call, as alpaca_eval
            plan.extend((i, s, req) for s, req in annotator.requests(doc["instruction"], doc["reference"], out))

    async def run_all() -> list[ChatResult]:
        with client.progress(desc, len(plan)):
            return await gather_or_cancel([client.chat(req) for _, _, req in plan])

    results = client.run_coroutine(run_all) if plan else []
    calls: list[list[tuple[bool, ChatResult, ChatRequest]]] = [[] for _ in docs]
    for (i, swapped, req), res in zip(plan, results, strict=True):
        calls[i].append((swapped, res, req))

    methods: Counter[str] = Counter()
    verdicts: list[Verdict] = []
    for doc, out, doc_calls in zip(docs, outputs, calls, strict=True):
        judged: list[JudgeCall] = []
        for swapped, res, req in doc_calls:
            p = read_preference(res, req)
            value = PREFERENCE_SCALE[0] if p.tampered else unswap(p.value, swapped)
            judged.append(JudgeCall(
                status=p.status, value=value, cause=p.cause, reason=p.reason, template_id=TEMPLATE_ID,
                template_version=annotator.template_version, answer=res.content,
                usage={"calls": 1, "input_tokens": res.usage.input_tokens,
                       "output_tokens": res.usage.output_tokens, "cached": res.cached},
                cost_usd=judge_cost([res], client),
                details={"swapped": swapped, "method": _method(res),
                         "top_logprobs": res.top_logprobs[0] if res.top_logprobs else None}))
        index = int(doc["index"])
        details: dict[str, Any] = {"index": index, "difficulty": difficulty.get(index),
                                   "glm": lc.glm if lc else "none", "gamed": lc.gamed if lc else None}
        if judged:
            first = judged[0]
            status, value, cause, reason = first.status, first.value, first.cause, first.reason
            details.update(swapped=first.details["swapped"], method=first.details["method"],
                           top_logprobs=first.details["top_logprobs"])
        else:  # identical outputs: 1.5 without a call, as alpaca_eval
            status, value, cause, reason = SCORED, 1.5, None, None
            details.update(swapped=None, method="identical", top_logprobs=None)
        if annotator.both_orders:
            other = judged[1] if len(judged) > 1 else None
            details["other_order"] = other.to_dict() if other else None
            details["consistent"] = (winner(judged[0].value) == winner(other.value)
                                     if other and None not in (judged[0].value, other.value) else None)
        methods[details["method"]] += 1
        costs = [c.cost_usd for c in judged if c.cost_usd is not None]
        verdicts.append(Verdict(status=status, scale=PREFERENCE_SCALE, value=value, cause=cause, reason=reason,
                                response=out, calls=judged,
                                judge={"model": client.model,
                                       "template": f"{TEMPLATE_ID}@{annotator.template_version}"},
                                cost_usd=sum(costs) if client.meter.price is not None else None,
                                details=details))
    consistent = [v.details["consistent"] for v in verdicts if v.details.get("consistent") is not None]
    described = annotator.describe()
    report = JudgeReport(
        model=client.model, judge=judge, template_id=described.pop("template_id"),
        template_version=described.pop("template_version"),
        samples={**count_verdicts(verdicts), "preference_from": dict(methods),
                 "swapped": sum(1 for v in verdicts if v.details.get("swapped"))},
        usage=client.summary(),
        cost_usd=None if client.meter.price is None else round(sum(v.cost_usd or 0.0 for v in verdicts), 6),
        details={**described, "position_consistency": (sum(consistent) / len(consistent) if consistent else None)
                 if annotator.both_orders else None,
                 "length_controlled": {"glm": lc.glm if lc else "none", "gamed": lc.gamed if lc else None,
                                       "instruction_difficulty": (lc.difficulty_source or "df_gamed.csv")
                                       if lc else None}})
    return verdicts, report


# ---------------------------------------------------------------------------------------------- lm-eval


def load(**metadata: Any) -> DatasetDict:
    """custom_dataset hook: check the judge and every data file first (before generation), then the 805 docs."""
    require_judge(TASK, metadata)
    Annotator.from_metadata(metadata)
    lc = LCInputs.from_metadata(metadata)
    path = data_file("reference_outputs", metadata)
    assert path is not None
    rows = load_reference(path)
    if lc.glm != "none":
        lc.check_covers([r["index"] for r in rows])  # a missing or malformed file fails before generation
    log.info("%s: %d instructions from %s; LC %s", TASK, len(rows), path, lc.glm)
    return DatasetDict({"test": Dataset.from_list(rows)})


class AlpacaEvalJudgeFilter(BatchJudgeFilter):
    """Judges every answer of the task in one concurrent batch; the verdicts become filtered_resps (JSON)."""

    doc_fields = ("index", "instruction", "reference")
    default_task = TASK
    unit = "answers"

    def judge(self, name: str, metadata: dict[str, Any], docs: Sequence[dict[str, Any]],
              responses: list[str]) -> tuple[list[Verdict], JudgeReport]:
        client, cfg = build_judge(name, metadata)
        return judge_alpacaeval(Annotator.from_metadata(metadata), client, docs, responses,
                                LCInputs.from_metadata(metadata), desc=f"judging {name}", judge=cfg.describe())


register_judge_filter(FILTER_NAME, AlpacaEvalJudgeFilter)


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Per-instruction values: one record (for the corpus metrics), unscored and tampered 0/1, cost, consistency."""
    verdict = decode_verdict(results, TASK)
    record = {"index": int(doc["index"]), "preference": verdict.value, "length": len(verdict.response),
              "reference_length": len(doc["reference"]), "difficulty": verdict.details.get("difficulty"),
              "glm": verdict.details.get("glm") or "none", "gamed": verdict.details.get("gamed")}
    out: dict[str, Any] = dict.fromkeys(CORPUS_METRICS, record)
    out["judge_unscored"] = float(verdict.status == UNSCORED)
    out["judge_tampered"] = float(verdict.status == TAMPERED)
    if verdict.cost_usd is not None:
        out["judge_cost_usd"] = float(verdict.cost_usd)
    if "consistent" in verdict.details:
        out["position_consistency"] = {"index": record["index"], "consistent": verdict.details["consistent"]}
    return out


# ------------------------------------------------------------------------------------------ aggregation

_Row = tuple[int, "float | None", int, int, "float | None", str, "str | None"]


def _rows(items: Sequence[Mapping[str, Any]]) -> tuple[_Row, ...]:
    """Records in AlpacaEval order (the CV folds of the LC fit depend on the order; ranks gather out of order)."""
    rows = [(int(r["index"]), None if r["preference"] is None else float(r["preference"]), int(r["length"]),
             int(r["reference_length"]), None if r.get("difficulty") is None else float(r["difficulty"]),
             str(r.get("glm") or "none"), r.get("gamed")) for r in items]
    return tuple(sorted(rows, key=lambda row: row[0]))


@functools.lru_cache(maxsize=8)
def corpus_metrics(rows: tuple[_Row, ...]) -> dict[str, Any]:
    """All AlpacaEval metrics of one run, computed once however many metric keys ask for them."""
    prefs = [r[1] for r in rows]
    base = win_rate_metrics(prefs, [r[2] for r in rows])
    out = {k: float(base[k]) for k in ("win_rate", "standard_error", "discrete_win_rate")}
    out["avg_length"] = base["avg_length"] if base.get("avg_length") is not None else math.nan  # an int
    out["length_controlled_winrate"] = out["lc_standard_error"] = math.nan
    glms = {r[5] for r in rows}
    if len(glms) != 1:
        raise ValueError(f"records mix length-control settings: {sorted(glms)}")
    glm = glms.pop()
    if glm == "none":
        return out
    # length_controlled_winrate reads only the outputs' lengths: stand-in strings of the same length
    annotations = [{"output_1": "\0" * r[3], "output_2": "\0" * r[2], "preference": r[1]} for r in rows]
    gamed_path = rows[0][6]
    try:
        difficulty = [r[4] for r in rows if r[4] is not None]
        lc = length_controlled_winrate(annotations, difficulty if len(difficulty) == len(rows) else None,
                                       _gamed_rows(gamed_path) if gamed_path else None, glm=glm)
    except ValueError as e:
        log.warning("length-controlled win rate not computed (%s): %s", glm, e)
        return out
    if len(rows) < 805:
        log.warning("length-controlled win rate fitted on %d instructions (a subset: not the leaderboard's number)",
                    len(rows))
    out["length_controlled_winrate"] = float(lc["length_controlled_winrate"])
    out["lc_standard_error"] = float(lc["lc_standard_error"])
    return out


def _pessimistic(items: Sequence[Mapping[str, Any]]) -> tuple[_Row, ...]:
    """The records with every unscored preference counted as the reference's win (the scale's minimum)."""
    return _rows([{**r, "preference": PREFERENCE_SCALE[0] if r["preference"] is None else r["preference"]}
                  for r in items])


def win_rate_pessimistic(items: Sequence[Mapping[str, Any]]) -> float:
    """The win rate with the unscored instructions counted as lost (the pessimistic bound)."""
    return corpus_metrics(_pessimistic(items))["win_rate"]


def lc_win_rate_pessimistic(items: Sequence[Mapping[str, Any]]) -> float:
    """The length-controlled win rate with the unscored instructions counted as lost (the pessimistic bound)."""
    return corpus_metrics(_pessimistic(items))["length_controlled_winrate"]


def win_rate(items: Sequence[Mapping[str, Any]]) -> float:
    """100 x mean(preference - 1) over the scored instructions."""
    return corpus_metrics(_rows(items))["win_rate"]


def standard_error(items: Sequence[Mapping[str, Any]]) -> float:
    """100 x standard error of the mean preference (ddof 1)."""
    return corpus_metrics(_rows(items))["standard_error"]


def discrete_win_rate(items: Sequence[Mapping[str, Any]]) -> float:
    """Win rate with each preference rounded (exactly 1.5 stays a draw)."""
    return corpus_metrics(_rows(items))["discrete_win_rate"]


def avg_length(items: Sequence[Mapping[str, Any]]) -> int | float:
    """int(mean length of the model's answers), in characters, over all instructions."""
    return corpus_metrics(_rows(items))["avg_length"]


def lc_win_rate(items: Sequence[Mapping[str, Any]]) -> float:
    """Length-controlled win rate (alpaca_eval's GLM); NaN when it cannot be fitted."""
    return corpus_metrics(_rows(items))["length_controlled_winrate"]


def lc_standard_error(items: Sequence[Mapping[str, Any]]) -> float:
    """100 x standard error of the GLM's per-instruction predictions."""
    return corpus_metrics(_rows(items))["lc_standard_error"]


def position_consistency(items: Sequence[Mapping[str, Any]]) -> float:
    """Share of instructions whose two orders agree on the winner (NaN when none was judged in both orders)."""
    flags = [bool(r["consistent"]) for r in items if r.get("consistent") is not None]
    return sum(flags) / len(flags) if flags else math.nan
