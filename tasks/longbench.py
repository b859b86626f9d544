"""LongBench (v1) and LongBench-E official per-sample metrics, reproduced exactly.

The published LongBench numbers come from THUDM/LongBench ``metrics.py`` and
``eval.py``. Their quirks (rouge 1.0.1's recursion limit and ``1e-8`` smoothing,
the remove-while-iterating loop in classification, fuzzywuzzy's difflib backend
rounded to whole percents, first-line post-processing for few-shot datasets) are
part of those numbers, so every function here reproduces them on purpose; the
tests pin each quirk. Parity target: 1e-9 per sample with the official code.
"""

from __future__ import annotations

import _thread
import difflib
import math
import re
import string
import sys
from collections import Counter
from collections.abc import Callable, Sequence

import jieba
from rouge import Rouge

from lr_eval.suite import FAMILY, LENGTH_BUCKETS, length_bucket

__all__ = [
    "CATEGORIES",
    "CJK_PUNCTUATION",
    "DATASETS",
    "DATASET_METRIC",
    "FIRST_LINE_DATASETS",
    "LONGBENCH_E_DATASETS",
    "METRICS",
    "NO_CHAT_TEMPLATE_DATASETS",
    "canonical_dataset",
    "classification_score",
    "code_sim_score",
    "count_score",
    "dataset_score",
    "dataset_score_e",
    "first_line",
    "length_bucket",
    "normalize_answer",
    "normalize_zh_answer",
    "qa_f1_score",
    "qa_f1_zh_score",
    "retrieval_score",
    "retrieval_zh_score",
    "rouge_score",
    "rouge_zh_score",
    "score",
    "sub_em",
    "token_f1",
]

# --------------------------------------------------------------------------- datasets

#: dataset -> official metric name (the 21 LongBench v1 datasets, base names).
DATASET_METRIC: dict[str, str] = {
    "narrativeqa": "qa_f1",
    "qasper": "qa_f1",
    "multifieldqa_en": "qa_f1",
    "multifieldqa_zh": "qa_f1_zh",
    "hotpotqa": "qa_f1",
    "2wikimqa": "qa_f1",
    "musique": "qa_f1",
    "dureader": "rouge_zh",
    "gov_report": "rouge",
    "qmsum": "rouge",
    "multi_news": "rouge",
    "vcsum": "rouge_zh",
    "trec": "classification",
    "triviaqa": "qa_f1",
    "samsum": "rouge",
    "lsht": "classification",
    "passage_retrieval_en": "retrieval",
    "passage_count": "count",
    "passage_retrieval_zh": "retrieval_zh",
    "lcc": "code_sim",
    "repobench-p": "code_sim",
}

#: The 21 datasets in the official order (the suite's LongBench family).
DATASETS: tuple[str, ...] = FAMILY["longbench"].names
if set(DATASETS) != set(DATASET_METRIC):
    raise ImportError("lr_eval.suite and DATASET_METRIC disagree on the LongBench datasets")

#: Few-shot datasets whose prediction is cut to its first line (after leading newlines) before scoring.
FIRST_LINE_DATASETS: frozenset[str] = frozenset({"trec", "triviaqa", "samsum", "lsht"})

#: Datasets prompted as raw completion (no chat template) by the official pred.py.
NO_CHAT_TEMPLATE_DATASETS: frozenset[str] = frozenset({"trec", "triviaqa", "samsum", "lsht", "lcc", "repobench-p"})

#: The six LongBench task categories (as in the paper's tables), from :mod:`lr_eval.suite`.
CATEGORIES: dict[str, tuple[str, ...]] = FAMILY["longbench"].categories()

#: The 13 LongBench-E datasets, as HF config names (``<name>_e``); score() accepts either form.
LONGBENCH_E_DATASETS: tuple[str, ...] = tuple(f"{name}_e" for name in FAMILY["longbench_e"].names)


def canonical_dataset(dataset: str) -> str:
    """Map ``name`` or ``name_e`` to the base dataset name; ValueError if unknown.

    The official LongBench-E run writes predictions under the base name and scores
    them with the same metric, so both spellings share one metric.
    """
    if dataset in DATASET_METRIC:
        return dataset
    if dataset.endswith("_e") and dataset[:-2] in DATASET_METRIC:
        return dataset[:-2]
    raise ValueError(f"unknown LongBench dataset: {dataset!r}")


def first_line(prediction: str) -> str:
    """Official few-shot post-processing: drop leading newlines, keep the first line."""
    return prediction.lstrip("\n").split("\n")[0]


# ---------------------------------------------------------------------- normalisation

#: Chinese/full-width punctuation removed by the official zh normalisation (note the final ASCII '.').
CJK_PUNCTUATION = (
    "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】"
    "〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."
)

_EN_PUNCT_TABLE = str.maketrans("", "", string.punctuation)
_ZH_PUNCT_TABLE = str.maketrans("", "", string.punctuation + CJK_PUNCTUATION)
# ``\b`` on str patterns is Unicode-aware, exactly as in the official regex.
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD-style English normalisation: lower, strip ASCII punctuation, articles, extra spaces."""
    text = text.lower().translate(_EN_PUNCT_TABLE)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def normalize_zh_answer(text: str) -> str:
    """Chinese normalisation: lower, strip ASCII + CJK punctuation, remove all whitespace."""
    return "".join(text.lower().translate(_ZH_PUNCT_TABLE).split())


def _jieba_tokens(text: str) -> list[str]:
    """jieba 0.42.1 precise mode (HMM on), the official Chinese tokeniser."""
    return list(jieba.cut(text, cut_all=False))


# ------------------------------------------------------------------------- token F1


def _f1(prediction_tokens: Sequence[str], gold_tokens: Sequence[str]) -> float:
    """Bag-of-tokens F1; the arithmetic order matches the official code bit for bit."""
    overlap = sum((Counter(prediction_tokens) & Counter(gold_tokens)).values())
    if overlap == 0:
        return 0.0
    precision = 1.0 * overlap / len(prediction_tokens)
    recall = 1.0 * overlap / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def qa_f1_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """Token F1 over whitespace tokens of the normalised English strings."""
    return _f1(normalize_answer(prediction).split(), normalize_answer(ground_truth).split())


def _zh_f1_tokens(text: str) -> list[str]:
    """jieba tokens, each zh-normalised, empties dropped (punctuation-only tokens vanish)."""
    normalised = (normalize_zh_answer(token) for token in _jieba_tokens(text))
    return [token for token in normalised if token]


def qa_f1_zh_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """Token F1 over normalised jieba tokens (Chinese QA)."""
    return _f1(_zh_f1_tokens(prediction), _zh_f1_tokens(ground_truth))


# ---------------------------------------------------------------------------- ROUGE-L
#
# The official score is ``rouge`` 1.0.1's summary-level ROUGE-L F. Its LCS
# back-tracking is recursive, one Python frame per step, so a long sentence pair
# raises RecursionError, which the official wrapper turns into 0.0. Whether that
# happens depends on the stack depth at the call. We make it independent of our
# caller's stack: we predict the official outcome from the frame count of the
# official ``python eval.py`` call chain (default recursion limit 1000), and we
# only ever call the package where it cannot overflow (on a fresh thread stack if
# the caller is deep), so the package supplies the score itself.

_ROUGE = Rouge()

#: Default CPython recursion limit under which the official numbers were produced.
_OFFICIAL_RECURSION_LIMIT = 1000
#: Python frames below the first recursive ``_recon`` call in the official chain:
#: <module>, scorer, rouge_score, Rouge.get_scores, _get_avg_scores, <lambda>,
#: rouge_l_summary_level, _union_lcs, _recon_lcs. rouge_zh_score adds one frame.
_OFFICIAL_FRAMES_BEFORE_RECON = 9
#: Frames we allow for the package's own call chain when deciding to call it inline.
_INLINE_MARGIN = 40


def _rouge_sentences(text: str) -> list[str]:
    """rouge 1.0.1's sentence split: on '.', non-empty pieces, whitespace collapsed."""
    return [" ".join(piece.split()) for piece in text.split(".") if len(piece) > 0]


def _recon_calls(x: list[str], y: list[str]) -> int:
    """Number of nested ``_recon`` calls rouge 1.0.1 makes to back-track LCS(x, y).

    Follows the package's exact path (diagonal on equal tokens, else up only when
    the upper cell is strictly larger), iteratively, with a list-based LCS table.
    """
    n, m = len(x), len(y)
    if n == 0 or m == 0:
        return 1
    table = [[0] * (m + 1)]
    for i in range(1, n + 1):
        prev = table[i - 1]
        row = [0] * (m + 1)
        xi = x[i - 1]
        for j in range(1, m + 1):
            if xi == y[j - 1]:
                row[j] = prev[j - 1] + 1
            else:
                row[j] = max(prev[j], row[j - 1])
        table.append(row)
    calls, i, j = 1, n, m
    while i > 0 and j > 0:
        if x[i - 1] == y[j - 1]:
            i, j = i - 1, j - 1
        elif table[i - 1][j] > table[i][j - 1]:
            i -= 1
        else:
            j -= 1
        calls += 1
    return calls


def _official_rouge_overflows(
    hyp_sentences: list[str], ref_sentences: list[str], extra_frames: int
) -> tuple[bool, int]:
    """Whether the official call would hit RecursionError, and an upper bound on recursion depth.

    Cheap bounds first: the back-tracking makes between min(n, m) + 1 and n + m calls.
    """
    budget = _OFFICIAL_RECURSION_LIMIT - _OFFICIAL_FRAMES_BEFORE_RECON - extra_frames
    ref_words = [sentence.split(" ") for sentence in ref_sentences]
    hyp_words = [sentence.split(" ") for sentence in hyp_sentences]
    deepest = 0
    for x in ref_words:
        for y in hyp_words:
            n, m = len(x), len(y)
            if n + m <= budget:
                deepest = max(deepest, n + m)
                continue
            if min(n, m) + 1 > budget:
                return True, 0
            calls = _recon_calls(x, y)
            if calls > budget:
                return True, 0
            deepest = max(deepest, calls)
    return False, deepest


def _stack_depth() -> int:
    """Python frames on the current thread's stack."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]  # None ends the walk
    return depth


def _rouge_l_f(prediction: str, ground_truth: str) -> float:
    """rouge 1.0.1 ROUGE-L F via the package, any exception -> 0.0 (official wrapper)."""
    try:
        return _ROUGE.get_scores([prediction], [ground_truth], avg=True)["rouge-l"]["f"]
    except Exception:  # noqa: BLE001 - the official wrapper swallows everything
        return 0.0


def _rouge_l_f_on_fresh_stack(prediction: str, ground_truth: str) -> float:
    """``_rouge_l_f`` on a new thread, whose stack starts at depth 1.

    Used when our caller is so deep that the package could overflow where the
    official shallow call does not. The worker calls the package itself (no extra
    frames), leaving more headroom than the official chain has.
    """
    done = _thread.allocate_lock()
    done.acquire()
    box = [0.0]

    def worker() -> None:
        try:
            box[0] = _ROUGE.get_scores([prediction], [ground_truth], avg=True)["rouge-l"]["f"]
        except Exception:  # noqa: BLE001 - the official wrapper swallows everything
            box[0] = 0.0
        finally:
            done.release()

    _thread.start_new_thread(worker, ())
    done.acquire()
    return box[0]


def _rouge(prediction: str, ground_truth: str, extra_frames: int) -> float:
    """Official rouge_score semantics, independent of the caller's stack depth."""
    hyp, ref = _rouge_sentences(prediction), _rouge_sentences(ground_truth)
    if not hyp or not ref:
        return 0.0  # rouge raises "Hypothesis/Reference is empty" -> 0.0
    overflows, deepest = _official_rouge_overflows(hyp, ref, extra_frames)
    if overflows:
        return 0.0  # official: RecursionError -> 0.0
    if _stack_depth() + _INLINE_MARGIN + deepest < sys.getrecursionlimit():
        return _rouge_l_f(prediction, ground_truth)
    return _rouge_l_f_on_fresh_stack(prediction, ground_truth)


def rouge_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """rouge 1.0.1 summary-level ROUGE-L F (sentences on '.', tokens on ' ')."""
    return _rouge(prediction, ground_truth, extra_frames=0)


def rouge_zh_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """ROUGE-L F on space-joined jieba tokens (the official call is one frame deeper)."""
    return _rouge(" ".join(_jieba_tokens(prediction)), " ".join(_jieba_tokens(ground_truth)), extra_frames=1)


# ------------------------------------------------------------- classification, counts


def classification_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """1/len(matches) if the gold class is among the class names found in the prediction.

    Class names that are proper substrings of the gold are meant to be dropped, but
    the official loop removes from the list it iterates over, so the element after
    each removed one is skipped (and ``list.remove`` drops the first equal entry).
    Reproduced literally because the published numbers include it.
    """
    if all_classes is None:
        raise ValueError("classification_score needs all_classes")
    matches = [name for name in all_classes if name in prediction]
    for name in matches:  # mutation during iteration is the point; see docstring
        if name in ground_truth and name != ground_truth:
            matches.remove(name)
    return 1.0 / len(matches) if ground_truth in matches else 0.0


_NUMBER = re.compile(r"\d+")  # Unicode digits, like the official pattern
_PARAGRAPH_EN = re.compile(r"Paragraph (\d+)")
_PARAGRAPH_ZH = re.compile(r"段落(\d+)")


def _share_of_numbers(prediction: str, target: str) -> float:
    """Fraction of the digit runs in the prediction that equal ``target`` (0 if none)."""
    numbers = _NUMBER.findall(prediction)
    if not numbers:
        return 0.0
    return float(sum(1 for number in numbers if number == target) / len(numbers))


def _paragraph_id(pattern: re.Pattern[str], ground_truth: str) -> str:
    found = pattern.search(ground_truth)
    if found is None:
        raise ValueError(f"gold answer has no paragraph id ({pattern.pattern!r}): {ground_truth!r}")
    return found.group(1)


def retrieval_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """Share of numbers in the prediction equal to the gold 'Paragraph N' id."""
    return _share_of_numbers(prediction, _paragraph_id(_PARAGRAPH_EN, ground_truth))


def retrieval_zh_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """Share of numbers in the prediction equal to the gold '段落N' id."""
    return _share_of_numbers(prediction, _paragraph_id(_PARAGRAPH_ZH, ground_truth))


def count_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """Share of numbers in the prediction equal to the gold count (string comparison)."""
    return _share_of_numbers(prediction, str(ground_truth))


# ------------------------------------------------------------------------ code_sim


def _fuzz_ratio(a: str, b: str) -> int:
    """fuzzywuzzy 0.18.0 ``fuzz.ratio`` on its difflib backend (no python-Levenshtein).

    Implemented on difflib directly so that installing python-Levenshtein elsewhere
    cannot silently change the backend: equal -> 100, one empty -> 0, else
    ``int(round(100 * SequenceMatcher(None, a, b).ratio()))`` (half-to-even).
    """
    if a == b:
        return 100
    if not a or not b:
        return 0
    return round(100 * difflib.SequenceMatcher(None, a, b).ratio())


def code_sim_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """Whole-percent fuzzy ratio of the first code line (no '`', '#', '//') to the gold line."""
    line = ""
    for candidate in prediction.lstrip("\n").split("\n"):
        if "`" not in candidate and "#" not in candidate and "//" not in candidate:
            line = candidate
            break
    return _fuzz_ratio(line, ground_truth) / 100


# -------------------------------------------------------------------------- scoring

#: metric name -> per-pair metric function.
METRICS: dict[str, Callable[..., float]] = {
    "qa_f1": qa_f1_score,
    "qa_f1_zh": qa_f1_zh_score,
    "rouge": rouge_score,
    "rouge_zh": rouge_zh_score,
    "classification": classification_score,
    "retrieval": retrieval_score,
    "retrieval_zh": retrieval_zh_score,
    "count": count_score,
    "code_sim": code_sim_score,
}


def score(
    dataset: str,
    prediction: str,
    answers: Sequence[str],
    all_classes: Sequence[str] | None = None,
) -> float:
    """Official per-sample LongBench score in [0, 1].

    Applies the first-line cut for trec/triviaqa/samsum/lsht, then takes the max of
    the dataset's metric over the reference answers, starting from 0.0 (so no
    answers, or NaN, give 0.0). ``dataset`` may be ``name`` or ``name_e``.
    """
    base = canonical_dataset(dataset)
    metric = METRICS[DATASET_METRIC[base]]
    if base in FIRST_LINE_DATASETS:
        prediction = first_line(prediction)
    best = 0.0
    for answer in answers:
        best = max(best, metric(prediction, answer, all_classes=all_classes))
    return float(best)


def dataset_score(
    dataset: str,
    predictions: Sequence[str],
    answers_list: Sequence[Sequence[str]],
    all_classes: Sequence[str] | None = None,
) -> float:
    """100 x mean per-sample score (the official value before its 2-decimal rounding)."""
    if len(predictions) != len(answers_list):
        raise ValueError("predictions and answers_list differ in length")
    if not predictions:
        raise ValueError("no predictions to score")
    total = 0.0
    for prediction, answers in zip(predictions, answers_list, strict=True):
        total += score(dataset, prediction, answers, all_classes)
    return 100 * total / len(predictions)


def dataset_score_e(
    dataset: str,
    predictions: Sequence[str],
    answers_list: Sequence[Sequence[str]],
    lengths: Sequence[int],
    all_classes: Sequence[str] | None = None,
) -> dict[str, float]:
    """LongBench-E: 100 x mean score per length bucket (unrounded; NaN for an empty bucket)."""
    if not len(predictions) == len(answers_list) == len(lengths):
        raise ValueError("predictions, answers_list and lengths differ in length")
    buckets: dict[str, list[float]] = {name: [] for name in LENGTH_BUCKETS}
    for prediction, answers, length in zip(predictions, answers_list, lengths, strict=True):
        buckets[length_bucket(length)].append(score(dataset, prediction, answers, all_classes))
    return {name: 100 * _mean(values) for name, values in buckets.items()}


def _mean(values: list[float]) -> float:
    """numpy.mean (pairwise summation, as the official script), NaN when empty without a warning."""
    if not values:
        return math.nan
    import numpy as np

    return float(np.mean(values))


# ------------------------------------------------------------------ extra QA metrics


def _check_language(language: str) -> str:
    if language not in ("en", "zh"):
        raise ValueError(f"language must be 'en' or 'zh', got {language!r}")
    return language


def sub_em(prediction: str, answers: Sequence[str], language: str = "en") -> float:
    """SubEM (HELMET-style): 1.0 if some normalised gold is a substring of the normalised prediction.

    Uses the zh normalisation (no spaces, CJK punctuation) for ``language='zh'``. No
    first-line cut. Note that a gold normalising to '' matches any prediction.
    """
    normalise = normalize_zh_answer if _check_language(language) == "zh" else normalize_answer
    normalised_prediction = normalise(prediction)
    best = 0.0
    for answer in answers:
        best = max(best, 1.0 if normalise(answer) in normalised_prediction else 0.0)
    return best


def token_f1(prediction: str, answers: Sequence[str], language: str = "en") -> float:
    """Plain token F1 (qa_f1 or qa_f1_zh), max over answers, without first-line cut."""
    metric = qa_f1_zh_score if _check_language(language) == "zh" else qa_f1_score
    best = 0.0
    for answer in answers:
        best = max(best, metric(prediction, answer))
    return best
