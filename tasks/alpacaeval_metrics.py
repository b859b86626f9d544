"""AlpacaEval 2.0 metrics: judge preferences, raw win rate and length-controlled win rate.

Our own implementation of the metrics that tatsu-lab/alpaca_eval reports for the
``weighted_alpaca_eval_gpt4_turbo`` annotator (spec: shared/specs/benchmarks.md,
section "AlpacaEval 2.0"). Conventions, all as in alpaca_eval:

* A preference lies in [1, 2]: 1 = ``output_1`` (the reference) is better, 2 = ``output_2``
  (the model under test) is better, 1.5 = draw. ``0`` is the legacy encoding of a draw and is
  read as 1.5. ``None``/NaN means "no usable judgement".
* The judge sees the pair in a per-instruction random order; a preference obtained on the
  swapped pair is mapped back with ``3 - preference`` (:func:`unswap`).

Behaviour that matches alpaca_eval and is easy to get wrong:

* Raw win rate (:func:`win_rate_metrics`): NaN preferences and values outside [1, 2] are
  dropped (they count in no field, not even ``n_total``); ``n_draws`` counts values equal to
  1.5 (or 0). ``standard_error`` is the standard error of the mean with ddof = 1.
  ``discrete_win_rate``: 1.5 stays a draw (0.5); every other value is rounded half-to-even
  (numpy/pandas ``round``) before averaging.
* Length-controlled win rate (:func:`length_controlled_winrate`): the instruction difficulty
  of annotation row ``i`` is the difficulty whose ``index`` is ``i``: the join is by
  *position in the annotations list* (alpaca_eval resets the annotations' index and looks
  the position up in the difficulty table), never by instruction text. The annotations must
  therefore be in the order of the AlpacaEval set (the order alpaca_eval writes them in).
  The length feature is computed over *all* of the model's rows, the fit uses only rows with
  a preference, and the prediction (hence the LC win rate and its standard error) covers all
  rows again.
* alpaca_eval itself takes the difficulty of the model's rows from the ``df_gamed.csv`` file
  (first occurrence of each ``index``); :func:`length_controlled_winrate` does the same when
  no separate difficulty table is given.

Cross-checked (scikit-learn 1.9.1): win-rate fields and LC win rate / standard error are
bit-identical to alpaca_eval's own ``metrics/winrate.py`` and ``metrics/glm_winrate.py`` run on
the same inputs (the five reference models, with NaN and legacy-0 preferences mixed in).
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lr_eval.errors import UserError
from lr_eval.jsonl import InputError, check_input_file, read_json

__all__ = [
    "GLM_NAMES",
    "AlpacaEvalDataError",
    "lc_from_glm_weights",
    "length_controlled_winrate",
    "load_annotations",
    "load_gamed",
    "load_instruction_difficulty",
    "main",
    "preference_from_logprobs",
    "preference_from_text",
    "std_delta_len",
    "unswap",
    "win_rate_metrics",
]

# Names of the GLM coefficients, as alpaca_eval writes them in its published weight files.
COEF_LENGTH = "np.tanh(std_delta_len)"
COEF_DIFFICULTY = "instruction_difficulty"
COEF_NOT_GAMED = "not_gamed_baseline.astype(float)"
COEF_NAMES = (COEF_LENGTH, COEF_DIFFICULTY, COEF_NOT_GAMED)

# Per GLM: the total weight given to the "gamed" baselines' rows (split over the two
# baselines, i.e. 0.1 per row), or None when the baselines are not used at all.
_GLM_GAMED_LAMBDA: dict[str, float | None] = {
    "length_controlled_v1": 0.2,
    "length_controlled_noreg": None,
}
GLM_NAMES = tuple(_GLM_GAMED_LAMBDA)
_N_GAMED_BASELINES = 2  # alpaca_eval divides lambda by 2 (verbose + concise), a constant
_N_SPLITS = 5
_RANDOM_STATE = 123
_EPS = 1e-15


class AlpacaEvalDataError(InputError):
    """Malformed AlpacaEval input file (the message names file, record and field)."""

    def __init__(self, message: str):
        UserError.__init__(self, message)


# --------------------------------------------------------------------------------------
# Judge output -> preference
# --------------------------------------------------------------------------------------


class LCUnknown(ValueError):
    """The length-controlled win rate cannot be fitted from these annotations (the message says why)."""


def _top_logprobs_as_dict(top_logprobs: Any) -> dict[str, float]:
    if isinstance(top_logprobs, Mapping):
        return {str(k): float(v) for k, v in top_logprobs.items()}
    # OpenAI chat format: [{"token": "M", "logprob": -0.01, ...}, ...]; a repeated token keeps
    # its last entry (as alpaca_eval's parser does)
    return {str(entry["token"]): float(entry["logprob"]) for entry in top_logprobs}


def preference_from_logprobs(
    top_logprobs: Mapping[str, float] | Sequence[Mapping[str, Any]],
    first_id: str = "m",
    second_id: str = "M",
) -> float | None:
    """Soft preference from the judge's top log-probabilities for its (single) answer token.

    ``p = exp(lp(first_id) - logsumexp(lp(first_id), lp(second_id)))`` is the probability that
    the *first shown* output is better; the preference is ``2 - p`` (in the order shown to the
    judge; apply :func:`unswap` afterwards). Tokens are matched exactly (case-sensitive, no
    stripping); a token absent from the top log-probabilities counts as ``-inf``. Returns
    None when neither token is present.

    ``top_logprobs`` is a ``{token: logprob}`` dict or the OpenAI list
    ``[{"token": ..., "logprob": ...}, ...]``.
    """
    lps = _top_logprobs_as_dict(top_logprobs)
    lp_first = lps.get(first_id, -math.inf)
    lp_second = lps.get(second_id, -math.inf)
    if lp_first == -math.inf and lp_second == -math.inf:
        return None
    if math.isnan(lp_first) or math.isnan(lp_second):
        return None
    top = max(lp_first, lp_second)
    log_norm = top + math.log(math.exp(lp_first - top) + math.exp(lp_second - top))
    p_first = math.exp(lp_first - log_norm)
    return 2.0 - p_first


def preference_from_text(text: str | None, first_id: str = "m", second_id: str = "M") -> float | None:
    """Discrete fallback when no log-probabilities are available: the judge's answer ``first_id``
    gives 1.0, ``second_id`` gives 2.0 (surrounding whitespace ignored, case-sensitive since the
    identifiers differ only by case); anything else gives None."""
    if text is None:
        return None
    answer = text.strip()
    if answer == first_id:
        return 1.0
    if answer == second_id:
        return 2.0
    return None


def unswap(preference: float | None, swapped: bool) -> float | None:
    """Map a preference obtained with the two outputs shown in swapped order back to the
    canonical order (``3 - preference``). None/NaN stays None."""
    if preference is None:
        return None
    pref = float(preference)
    if math.isnan(pref):
        return None
    return 3.0 - pref if swapped else pref


# --------------------------------------------------------------------------------------
# Raw win rate
# --------------------------------------------------------------------------------------


def _as_float_array(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def _sem(x: np.ndarray) -> float:
    """Standard error of the mean, ddof = 1 (NaN with fewer than 2 values), like pandas."""
    if x.size < 2:
        return math.nan
    return float(np.std(x, ddof=1) / math.sqrt(x.size))


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else math.nan


def win_rate_metrics(
    preferences: Sequence[float | None],
    output_lengths: Sequence[int] | None = None,
) -> dict[str, Any]:
    """AlpacaEval head-to-head metrics of the model (``output_2``) against the reference.

    Returns ``win_rate`` (100 x mean(preference - 1)), ``standard_error`` (100 x sem, ddof 1),
    ``n_wins`` / ``n_wins_base`` (preference above / below 1.5), ``n_draws`` (exactly 1.5, or
    the legacy 0), ``n_total`` (number of valid preferences), ``discrete_win_rate`` and, when
    ``output_lengths`` (the model's output lengths in characters) is given, ``avg_length``
    (``int`` of the mean, i.e. truncated). Invalid preferences (None/NaN, outside [1, 2]) are
    dropped, as alpaca_eval does.
    """
    prefs = _as_float_array(preferences)
    prefs = np.where(prefs == 0.0, 1.5, prefs)  # legacy draw encoding
    n_draws = int(np.sum(prefs == 1.5))
    valid = (prefs >= 1.0) & (prefs <= 2.0)  # False for NaN
    y = prefs[valid] - 1.0

    # discrete: keep 1.5 as a draw, round everything else half-to-even; a value that rounds
    # to 0 is the legacy draw encoding again
    raw = _as_float_array(preferences)
    not_nan = ~np.isnan(raw)
    rounded = np.where(raw[not_nan] == 1.5, 0.0, np.round(raw[not_nan]))
    rounded = np.where(rounded == 0.0, 1.5, rounded)
    rounded = rounded[(rounded >= 1.0) & (rounded <= 2.0)]

    out: dict[str, Any] = {
        "win_rate": _mean(y) * 100,
        "standard_error": _sem(y) * 100,
        "n_wins": int(np.sum(y > 0.5)),
        "n_wins_base": int(np.sum(y < 0.5)),
        "n_draws": n_draws,
        "n_total": int(y.size),
        "discrete_win_rate": _mean(rounded - 1.0) * 100,
    }
    if output_lengths is not None:
        lengths = np.asarray(list(output_lengths), dtype=np.float64)
        out["avg_length"] = int(np.mean(lengths)) if lengths.size else None
    return out


# --------------------------------------------------------------------------------------
# Length-controlled win rate
# --------------------------------------------------------------------------------------


def _soft_log_loss(y_dup, y_prob, true_prob, true_sample_weight=None):
    """Cross-entropy against soft targets, for the duplicated-rows trick.

    Each original row i with soft label p_i appears twice: once with label 1 (``true_prob`` =
    p_i) and once with label 0 (``true_prob`` = 1 - p_i). Both copies are scored against the
    soft target p_i; the result is the (optionally weighted) mean over all copies (the weights
    multiply the terms, the mean divides by the number of copies, as alpaca_eval does).
    """
    y_dup = np.asarray(y_dup)
    true_prob = np.asarray(true_prob, dtype=np.float64)
    target = np.where(y_dup == 1, true_prob, 1.0 - true_prob)
    q = np.clip(np.asarray(y_prob, dtype=np.float64), _EPS, 1.0 - _EPS)
    terms = target * np.log(q) + (1.0 - target) * np.log(1.0 - q)
    if true_sample_weight is not None:
        terms = terms * np.asarray(true_sample_weight, dtype=np.float64)
    return -float(np.mean(terms))


def _l1_penalty_kwargs(cls) -> dict[str, Any]:
    """L1 penalty for LogisticRegressionCV across scikit-learn versions (``penalty`` is
    deprecated from 1.8 in favour of ``l1_ratios``)."""
    params = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {}
    if "l1_ratios" in params and params["penalty"].default == "deprecated":
        kwargs["l1_ratios"] = (1.0,)
    else:
        kwargs["penalty"] = "l1"
    if "use_legacy_attributes" in params:
        kwargs["use_legacy_attributes"] = True
    return kwargs


def _fit_soft_label_l1_logreg(x: np.ndarray, p: np.ndarray, w: np.ndarray):
    """L1 logistic regression on soft labels with C chosen by grouped 5-fold CV.

    LogisticRegressionCV(Cs=10, liblinear, no intercept, random_state=123) on the rows
    duplicated as (label 1, weight w*p) then (label 0, weight w*(1-p)); GroupKFold(5) keeps
    both copies of a row in the same fold; the CV score is the weighted soft log loss.
    """
    import sklearn
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    version = tuple(int(v) for v in sklearn.__version__.split(".")[:2] if v.isdigit())
    if version < (1, 4):
        raise RuntimeError(
            f"the length-controlled win rate needs scikit-learn >= 1.4 (metadata routing of the "
            f"CV scorer's parameters); found {sklearn.__version__}"
        )
    n = p.shape[0]
    if n < _N_SPLITS:
        raise ValueError(f"the GLM needs at least {_N_SPLITS} rows with a preference, got {n}")
    x_dup = np.ascontiguousarray(np.vstack([x, x]), dtype=np.float64)
    y_dup = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64)])
    true_prob = np.concatenate([p, 1.0 - p])
    true_weight = np.concatenate([w, w])
    groups = np.concatenate([np.arange(n), np.arange(n)])

    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        scorer = make_scorer(
            _soft_log_loss, response_method="predict_proba", greater_is_better=False
        ).set_score_request(true_prob=True, true_sample_weight=True)
        model = LogisticRegressionCV(
            Cs=10,
            cv=GroupKFold(n_splits=_N_SPLITS),
            scoring=scorer,
            solver="liblinear",
            dual=False,
            fit_intercept=False,
            random_state=_RANDOM_STATE,
            **_l1_penalty_kwargs(LogisticRegressionCV),
        )
        model.set_fit_request(sample_weight=True)
        model.fit(
            x_dup,
            y_dup,
            sample_weight=true_prob * true_weight,
            groups=groups,
            true_prob=true_prob,
            true_sample_weight=true_weight,
        )
    return model


def std_delta_len(annotations: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The GLM's length feature per annotation: ``(len(output_1) - len(output_2)) / std`` with
    lengths in characters (Python ``len``) and the std (ddof = 1) taken over all the given
    annotations. Positive when the reference (``output_1``) is the longer output."""
    delta = np.array([len(a["output_1"]) - len(a["output_2"]) for a in annotations], dtype=np.float64)
    sd = float(np.std(delta, ddof=1)) if delta.size > 1 else math.nan
    if not (math.isfinite(sd) and sd > 0):
        raise ValueError(
            "the length difference (len(output_1) - len(output_2)) has no spread over the "
            f"annotations (std = {sd}); the length-controlled GLM cannot be fitted"
        )
    return delta / sd


def _difficulty_lookup(
    instruction_difficulty: Mapping[int, float] | Sequence[float] | None,
    gamed_annotations: Sequence[Mapping[str, Any]] | None,
) -> Mapping[int, float] | Sequence[float]:
    if instruction_difficulty is not None:
        return instruction_difficulty
    if not gamed_annotations:
        raise ValueError(
            "the length-controlled win rate needs the instruction difficulty: pass "
            "instruction_difficulty or gamed_annotations (alpaca_eval takes it from df_gamed.csv)"
        )
    table: dict[int, float] = {}
    for row in gamed_annotations:
        table.setdefault(int(row["index"]), float(row["instruction_difficulty"]))
    return table


def length_controlled_winrate(
    annotations: Sequence[Mapping[str, Any]],
    instruction_difficulty: Mapping[int, float] | Sequence[float] | None,
    gamed_annotations: Sequence[Mapping[str, Any]] | None,
    glm: str = "length_controlled_v1",
) -> dict[str, Any]:
    """Length-controlled win rate (AlpacaEval 2.0 GLM), in percent, with its standard error.

    ``annotations``: the model's annotations in AlpacaEval order (dicts with ``output_1`` =
    reference, ``output_2`` = model, ``preference`` in [1, 2] or None; optionally
    ``generator_1``/``generator_2``). ``instruction_difficulty``: difficulty per annotation
    *position* (a ``{index: difficulty}`` mapping or a sequence); None takes it from
    ``gamed_annotations`` as alpaca_eval does. ``gamed_annotations``: rows of ``df_gamed.csv``
    (:func:`load_gamed`; ``preference`` already in [0, 1]); required for
    ``length_controlled_v1``, unused by ``length_controlled_noreg``.

    Model: ``logit P(model wins) = theta*tanh(s) + phi*d + gamma*not_gamed`` (no intercept),
    ``s = (len_1 - len_2) / std(len_1 - len_2)`` (ddof 1, over all of the model's rows).
    ``length_controlled_v1`` trains on the gamed baselines' rows (not_gamed = 0, weight 0.1
    each) plus the model's rows (weight 1); ``length_controlled_noreg`` on the model's rows
    only. Prediction at ``s = 0`` with ``not_gamed = 1``.

    Returns ``length_controlled_winrate``, ``lc_standard_error``, ``glm``, ``glm_weights``
    (coefficient name -> value, alpaca_eval's names) and ``C`` (the cross-validated inverse
    regularization strength). If the model is the reference itself the result is 50 by
    construction.
    """
    if glm not in _GLM_GAMED_LAMBDA:
        raise ValueError(f"unknown glm {glm!r}; expected one of {', '.join(GLM_NAMES)}")
    if len(annotations) == 0:
        raise ValueError("no annotations")
    gamed_lambda = _GLM_GAMED_LAMBDA[glm]

    gen_2 = {a.get("generator_2") for a in annotations}
    gen_1 = {a.get("generator_1") for a in annotations}
    if len(gen_2) > 1:
        raise ValueError(f"annotations mix several models (generator_2 values: {sorted(map(str, gen_2))})")
    if gen_2 == gen_1 and None not in gen_2:
        # the reference against itself: 50 % by construction, as alpaca_eval reports
        return {
            "length_controlled_winrate": 50.0,
            "lc_standard_error": 0.0,
            "glm": glm,
            "glm_weights": dict.fromkeys(COEF_NAMES, 0.0),
            "C": None,
        }

    # model rows: features over all rows
    n = len(annotations)
    tanh_s = np.tanh(std_delta_len(annotations))
    table = _difficulty_lookup(instruction_difficulty, gamed_annotations)
    difficulty = np.empty(n, dtype=np.float64)
    for i in range(n):
        try:
            difficulty[i] = float(table[i])
        except (KeyError, IndexError):
            raise ValueError(
                f"instruction difficulty has no entry for annotation index {i} (the join is by "
                f"position in the annotations; {n} annotations)"
            ) from None
    if not np.all(np.isfinite(difficulty)):
        raise ValueError("instruction difficulty is not finite for some annotations")

    prefs = np.array(
        [math.nan if a.get("preference") is None else float(a["preference"]) for a in annotations],
        dtype=np.float64,
    )
    prefs = np.where(prefs == 0.0, 1.5, prefs) - 1.0  # soft label in [0, 1]
    has_pref = ~np.isnan(prefs)
    bad = has_pref & ((prefs < 0.0) | (prefs > 1.0))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"annotation {i}: preference {prefs[i] + 1.0!r} is outside [1, 2]")

    if not has_pref.any():  # a fit on the baselines alone would report ~50 for a model never judged
        raise LCUnknown(f"none of the {n} annotations has a usable preference (all null or NaN): the "
                        "length-controlled win rate is unknown")
    x_model = np.column_stack([tanh_s, difficulty, np.ones(n)])
    parts_x = []
    parts_p = []
    parts_w = []
    if gamed_lambda is not None:
        if not gamed_annotations:
            raise ValueError(f"{glm} needs the gamed baselines' annotations (df_gamed.csv)")
        g_pref = np.array([_nan_if_none(r["preference"]) for r in gamed_annotations], dtype=np.float64)
        g_keep = ~np.isnan(g_pref)
        g_not_gamed = np.array([bool(r["not_gamed_baseline"]) for r in gamed_annotations])[g_keep]
        g_x = np.column_stack(
            [
                np.tanh(np.array([float(r["std_delta_len"]) for r in gamed_annotations]))[g_keep],
                np.array([float(r["instruction_difficulty"]) for r in gamed_annotations])[g_keep],
                g_not_gamed.astype(np.float64),
            ]
        )
        g_p = g_pref[g_keep]
        if np.any((g_p < 0.0) | (g_p > 1.0)):
            raise ValueError("gamed annotations: preference must lie in [0, 1]")
        if not np.all(np.isfinite(g_x)):
            raise ValueError("gamed annotations: non-finite std_delta_len or instruction_difficulty")
        parts_x.append(g_x)
        parts_p.append(g_p)
        parts_w.append(np.where(g_not_gamed, 1.0, gamed_lambda / _N_GAMED_BASELINES))
    parts_x.append(x_model[has_pref])
    parts_p.append(prefs[has_pref])
    parts_w.append(np.ones(int(has_pref.sum())))

    model = _fit_soft_label_l1_logreg(np.vstack(parts_x), np.concatenate(parts_p), np.concatenate(parts_w))
    x_test = np.column_stack([np.zeros(n), difficulty, np.ones(n)])
    predicted = model.predict_proba(x_test)[:, list(model.classes_).index(1)]
    return {
        "length_controlled_winrate": float(np.mean(predicted)) * 100,
        "lc_standard_error": _sem(predicted) * 100,
        "glm": glm,
        "glm_weights": dict(zip(COEF_NAMES, (float(c) for c in model.coef_[0]), strict=True)),
        "C": float(np.ravel(model.C_)[0]),
    }


def _nan_if_none(v: Any) -> float:
    return math.nan if v is None else float(v)


def lc_from_glm_weights(
    weights: Mapping[str, float],
    instruction_difficulty: Mapping[int, float] | Sequence[float],
    baseline_weights: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Length-controlled win rate implied by already fitted GLM coefficients (e.g. alpaca_eval's
    published weight file): ``100 * mean_i sigmoid(dphi * d_i + dgamma)`` over all instructions,
    where ``d`` are the coefficient differences model - baseline (the default baseline, the
    reference model itself, has all-zero coefficients). Keys as in alpaca_eval's weight files
    (``instruction_difficulty``, ``not_gamed_baseline.astype(float)``). Returns
    ``length_controlled_winrate`` and ``lc_standard_error`` (100 x sem over instructions)."""
    base = baseline_weights or dict.fromkeys(COEF_NAMES, 0.0)
    phi = float(weights[COEF_DIFFICULTY]) - float(base[COEF_DIFFICULTY])
    gamma = float(weights[COEF_NOT_GAMED]) - float(base[COEF_NOT_GAMED])
    if isinstance(instruction_difficulty, Mapping):
        d = np.array([float(instruction_difficulty[k]) for k in sorted(instruction_difficulty)])
    else:
        d = np.asarray(instruction_difficulty, dtype=np.float64)
    z = phi * d + gamma
    p = np.exp(-np.logaddexp(0.0, -z))
    return {"length_controlled_winrate": float(np.mean(p)) * 100, "lc_standard_error": _sem(p) * 100}


# --------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def load_annotations(path: str | Path) -> list[dict[str, Any]]:
    """Load an alpaca_eval ``annotations.json`` (a JSON list of objects).

    Each record needs ``instruction``, ``output_1``, ``output_2`` (strings) and ``preference``
    (a number or null; NaN is read as null); ``generator_1``/``generator_2`` are optional
    strings. Other fields are kept as they are. Raises :class:`AlpacaEvalDataError` naming the
    file, record index and field on bad input.
    """
    path = Path(path)
    try:
        data = read_json(path)
    except InputError as e:
        raise AlpacaEvalDataError(f"{path}: not valid JSON: {e}" if "JSON" in e.problem else str(e)) from None
    except OSError as e:
        raise AlpacaEvalDataError(f"{path}: cannot read annotations: {e}") from e
    if not isinstance(data, list):
        raise AlpacaEvalDataError(f"{path}: expected a JSON list of annotation objects, got {type(data).__name__}")
    out = []
    for i, rec in enumerate(data):
        where = f"{path}: record {i}"
        if not isinstance(rec, dict):
            raise AlpacaEvalDataError(f"{where}: expected an object, got {type(rec).__name__}")
        for field in ("instruction", "output_1", "output_2"):
            if field not in rec:
                raise AlpacaEvalDataError(f"{where}: missing field {field!r}")
            if not isinstance(rec[field], str):
                raise AlpacaEvalDataError(f"{where}: field {field!r} must be a string, got {type(rec[field]).__name__}")
        for field in ("generator_1", "generator_2"):
            if field in rec and rec[field] is not None and not isinstance(rec[field], str):
                raise AlpacaEvalDataError(f"{where}: field {field!r} must be a string, got {type(rec[field]).__name__}")
        if "preference" not in rec:
            raise AlpacaEvalDataError(f"{where}: missing field 'preference'")
        pref = rec["preference"]
        if pref is not None and not _is_number(pref):
            raise AlpacaEvalDataError(f"{where}: field 'preference' must be a number or null, got {pref!r}")
        rec = dict(rec)
        if pref is not None and math.isnan(float(pref)):
            rec["preference"] = None
        elif pref is not None and pref != 0 and not 1 <= pref <= 2:
            raise AlpacaEvalDataError(f"{where}: field 'preference' must be in [1, 2] (or 0, the legacy draw, "
                                      f"or null), got {pref!r}")
        out.append(rec)
    return out


def check_unique(annotations: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """The CLI's duplicates policy: the same instruction with the same outputs and generator twice is refused
    (it would count one comparison twice)."""
    first: dict[tuple[Any, ...], int] = {}
    for i, rec in enumerate(annotations):
        key = (rec["instruction"], rec["output_1"], rec["output_2"], rec.get("generator_2"))
        if key in first:
            raise AlpacaEvalDataError(f"{path}: record {i}: field 'instruction': the same annotation as record "
                                      f"{first[key]} (instruction, outputs and generator)")
        first[key] = i


def _read_csv_rows(path: Path, required: Sequence[str]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        with open(check_input_file(path), encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError) as e:
        raise AlpacaEvalDataError(f"{path}: cannot read: {e}") from e
    except csv.Error as e:
        raise AlpacaEvalDataError(f"{path}: malformed CSV: {e}") from e
    missing = [c for c in required if c not in header]
    if missing:
        raise AlpacaEvalDataError(f"{path}: missing column(s) {missing}; header is {header}")
    return header, rows


def _csv_float(path: Path, line: int, field: str, value: str | None, allow_nan: bool = False) -> float:
    text = (value or "").strip()
    if allow_nan and text.lower() in ("", "nan"):
        return math.nan
    try:
        out = float(text)
    except ValueError:
        raise AlpacaEvalDataError(f"{path}: line {line}: field {field!r}: not a number: {value!r}") from None
    if math.isnan(out) and not allow_nan:
        raise AlpacaEvalDataError(f"{path}: line {line}: field {field!r}: NaN is not allowed")
    return out


def _csv_index(path: Path, line: int, field: str, value: str | None) -> int:
    text = (value or "").strip()
    try:
        f = float(text)
    except ValueError:
        f = math.nan
    if not (math.isfinite(f) and f == int(f) and f >= 0):
        raise AlpacaEvalDataError(
            f"{path}: line {line}: field {field!r}: expected a non-negative integer, got {value!r}"
        )
    return int(f)


_TRUE = {"true", "1", "1.0"}
_FALSE = {"false", "0", "0.0"}


def _csv_bool(path: Path, line: int, field: str, value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise AlpacaEvalDataError(f"{path}: line {line}: field {field!r}: expected True/False, got {value!r}")


def load_instruction_difficulty(path: str | Path) -> dict[int, float]:
    """Load alpaca_eval's ``instruction_difficulty.csv``: a header line, then rows whose first
    column is the instruction index (position in the AlpacaEval set) and whose
    ``instruction_difficulty`` column (else the second column) is the difficulty.
    Returns ``{index: difficulty}``."""
    path = Path(path)
    header, rows = _read_csv_rows(path, required=())
    if len(header) < 2:
        raise AlpacaEvalDataError(
            f"{path}: expected at least 2 columns (index, instruction_difficulty); header is {header}"
        )
    index_col = header[0]
    value_col = "instruction_difficulty" if "instruction_difficulty" in header else header[1]
    out: dict[int, float] = {}
    for line, row in rows:
        idx = _csv_index(path, line, index_col or "index", row.get(index_col))
        if idx in out:
            raise AlpacaEvalDataError(f"{path}: line {line}: duplicate index {idx}")
        out[idx] = _csv_float(path, line, value_col, row.get(value_col))
    if not out:
        raise AlpacaEvalDataError(f"{path}: no rows")
    return out


_GAMED_COLUMNS = ("index", "instruction_difficulty", "preference", "std_delta_len", "not_gamed_baseline")


def load_gamed(path: str | Path) -> list[dict[str, Any]]:
    """Load alpaca_eval's ``df_gamed.csv`` (annotations of the "gamed" baselines).

    Columns used: ``index`` (instruction position), ``instruction_difficulty``, ``preference``
    (already in [0, 1]: 1 = the baseline beats the reference; empty/NaN allowed, such rows are
    not used), ``std_delta_len`` (standardized length difference), ``not_gamed_baseline``
    (True/False); ``model`` is kept if present. Returns one dict per row, in file order.
    """
    path = Path(path)
    header, rows = _read_csv_rows(path, required=_GAMED_COLUMNS)
    out = []
    for line, row in rows:
        pref = _csv_float(path, line, "preference", row.get("preference"), allow_nan=True)
        if not math.isnan(pref) and not 0.0 <= pref <= 1.0:
            raise AlpacaEvalDataError(f"{path}: line {line}: field 'preference': {pref} is outside [0, 1]")
        rec: dict[str, Any] = {
            "index": _csv_index(path, line, "index", row.get("index")),
            "instruction_difficulty": _csv_float(
                path, line, "instruction_difficulty", row.get("instruction_difficulty")
            ),
            "preference": None if math.isnan(pref) else pref,
            "std_delta_len": _csv_float(path, line, "std_delta_len", row.get("std_delta_len")),
            "not_gamed_baseline": _csv_bool(path, line, "not_gamed_baseline", row.get("not_gamed_baseline")),
        }
        if "model" in header:
            rec["model"] = row.get("model")
        out.append(rec)
    if not out:
        raise AlpacaEvalDataError(f"{path}: no rows")
    return out


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def main(argv: list[str] | None = None) -> int:
    """``lr-eval alpacaeval-metrics ANNOTATIONS.json [--instruction-difficulty CSV] [--gamed CSV]
    [--glm NAME]``: print one JSON object with win_rate, standard_error, discrete_win_rate,
    avg_length and, when the GLM inputs are given, length_controlled_winrate and
    lc_standard_error. Returns 0 on success, 2 on bad arguments or input."""
    parser = argparse.ArgumentParser(
        prog="lr-eval alpacaeval-metrics",
        description=(
            "AlpacaEval 2.0 metrics from an alpaca_eval annotations JSON (output_1 = reference, "
            "output_2 = model). avg_length is the mean character length of output_2. The "
            "length-controlled keys are printed only when the GLM inputs are given: "
            "length_controlled_v1 needs --gamed (df_gamed.csv; the instruction difficulty is "
            "taken from it, as alpaca_eval does, unless --instruction-difficulty is given); "
            "length_controlled_noreg needs --instruction-difficulty or --gamed."
        ),
    )
    parser.add_argument("annotations", help="alpaca_eval annotations JSON, in AlpacaEval instruction order")
    parser.add_argument("--instruction-difficulty", help="instruction_difficulty.csv (index, instruction_difficulty)")
    parser.add_argument("--gamed", help="df_gamed.csv (the gamed baselines' annotations)")
    parser.add_argument("--glm", choices=GLM_NAMES, default="length_controlled_v1")
    args = parser.parse_args(argv)

    try:
        annotations = load_annotations(args.annotations)
        check_unique(annotations, args.annotations)
        if not annotations:
            raise AlpacaEvalDataError(f"{args.annotations}: no annotations")
        metrics = win_rate_metrics([a["preference"] for a in annotations], [len(a["output_2"]) for a in annotations])
        out = {k: metrics[k] for k in ("win_rate", "standard_error", "discrete_win_rate", "avg_length")}
        difficulty = load_instruction_difficulty(args.instruction_difficulty) if args.instruction_difficulty else None
        gamed = load_gamed(args.gamed) if args.gamed else None
        want_lc = gamed is not None or difficulty is not None
        if want_lc:
            if args.glm == "length_controlled_v1" and gamed is None:
                raise ValueError("--glm length_controlled_v1 needs --gamed (df_gamed.csv)")
            try:
                lc = length_controlled_winrate(annotations, difficulty, gamed, glm=args.glm)
            except LCUnknown as e:
                lc = {"length_controlled_winrate": None, "lc_standard_error": None}
                out["length_controlled_unknown"] = str(e)
                print(f"note: {e}", file=sys.stderr)
            out["length_controlled_winrate"] = lc["length_controlled_winrate"]
            out["lc_standard_error"] = lc["lc_standard_error"]
        else:
            print(
                "note: no --gamed/--instruction-difficulty given; length-controlled metrics omitted",
                file=sys.stderr,
            )
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: _json_safe(v) for k, v in out.items()}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
