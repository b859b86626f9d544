"""`lr-train pairs`: preference pairs from scored samples (chosen = highest reward, rejected = lowest).

Rules, in order, for each prompt (the reason a prompt is dropped is counted in the report):

1. ``sampling_failed``: the samples file has no responses for the prompt.
2. ``not_scored``: no score record, or one for other responses (the sha of the responses, or their
   number when the scores come from ``lr-eval score``, does not match).
3. Candidates are the responses with a reward that are not blank (a blank response scores 0 by the
   scorer's rule, but it cannot be a DPO completion); with ``exclude_cut`` the responses that hit
   ``max_tokens`` are left out too.  Rewards are compared like for like: a reward is the mean of the
   dimensions its record lists in ``averaged``, and only rewards averaging the same set are compared.
   By default that set is every enabled dimension (those averaged or unscored in the prompt's records):
   a response whose reward leaves one out (unscored: the judge gave no verdict, or the response makes no
   factual statement) is not a candidate and is counted (``partial_reward`` responses), since a mean of
   fewer dimensions is another quantity, and one the evaluated text can cause.  With
   ``allow_partial_rewards`` (``--allow-partial-rewards``) partial rewards are accepted, still compared
   only within one set: the set most candidates share (then the larger set); the others are counted as
   ``other_dimension_set``.  ``partial_reward``: fewer than ``min_scored`` candidates because of this
   rule; ``too_few_scored``: fewer than ``min_scored`` candidates anyway (default 5, as the reference code).
4. ``all_tied``: every candidate has the same reward (no preference to learn).
5. Ties at the top or the bottom (several candidates share the highest or the lowest reward):
   ``ties="first"`` (default) takes the lowest sample index on both sides, the reference's file
   order; ``"shortest"`` takes the shortest of the best as chosen and the longest of the worst as
   rejected (then the lowest index), which works against DPO's length bias; ``"drop"`` drops the
   prompt (``tied_extremes``).
6. ``below_min_margin``: reward(chosen) − reward(rejected) < ``min_margin``.  The default 0 keeps
   every strict difference.

Rewards are compared with a tolerance of 1e-9 (means of four dimensions are floats).

Output JSONL, readable by ``train/data.py``: ``{"id", "context", "question", "chosen", "rejected",
"chosen_reward", "rejected_reward", "margin", "chosen_scores", "rejected_scores", "provenance"}``;
the report (rich table + JSON) gives kept/dropped counts by reason, the margin distribution, tie
counts and the chosen/rejected length statistics.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lr_eval.jsonl import (
    JsonlIndex,
    check_paths,
    check_type,
    read_jsonl,
    require,
    write_jsonl_atomic,
    write_text_atomic,
)
from lr_eval.options import option
from lr_eval.records import FieldError
from lr_eval.reward.records import DIMENSIONS, SCORE_KEYS, ResponseScore, score_results

EPS = 1e-9
TIE_RULES = ("first", "shortest", "drop")
DROP_REASONS = ("sampling_failed", "not_scored", "partial_reward", "too_few_scored", "all_tied", "tied_extremes",
                "below_min_margin")
MARGIN_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def responses_sha(responses: Sequence[str]) -> str:
    """Identity of a prompt's response list (written by the score step, checked here)."""
    blob = json.dumps(list(responses), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class PairPolicy:
    """How pairs are chosen; see the module docstring."""

    min_margin: float = option(0.0, "least reward difference chosen - rejected (default 0: any strict difference)",
                               metavar="X")
    min_scored: int = option(5, "least scored, non-blank responses per prompt (default 5, as the reference)",
                             metavar="N")
    ties: str = option("first", "several responses share the best (or worst) reward: first = lowest sample index "
                       "(default), shortest = shortest best / longest worst, drop = drop the prompt", choices=TIE_RULES)
    exclude_cut: bool = option(False, "leave out responses that hit max_tokens", switch=True)
    allow_partial_rewards: bool = option(False, "accept rewards that average fewer than every enabled dimension "
                                         "(still compared only with rewards over the same set); default: such "
                                         "responses are left out (partial_reward)", switch=True)

    def __post_init__(self) -> None:
        if self.ties not in TIE_RULES:
            raise ValueError(f"ties must be one of {', '.join(TIE_RULES)}, not {self.ties!r}")
        if self.min_margin < 0:
            raise ValueError("min_margin must be >= 0")
        if self.min_scored < 2:
            raise ValueError("min_scored must be >= 2 (a pair needs two responses)")


@dataclass(frozen=True)
class Selection:
    """The outcome for one prompt: a pair (chosen/rejected sample indices) or the reason there is none."""

    chosen: int | None = None
    rejected: int | None = None
    margin: float | None = None
    candidates: int = 0
    chosen_ties: int = 0       # candidates sharing the highest reward (1 = no tie)
    rejected_ties: int = 0
    dropped: str | None = None
    partial: int = 0           # responses with a reward left out: it averages another set of dimensions


def select_pair(responses: Sequence[str], rewards: Sequence[float | None], policy: PairPolicy,
                finish_reasons: Sequence[str | None] | None = None,
                comparable: Sequence[bool] | None = None) -> Selection:
    """Pick chosen and rejected among one prompt's responses (indices into ``responses``); `comparable`
    False marks a reward over another set of dimensions than the one compared (:func:`comparable_rewards`)."""
    scored = [i for i, (text, r) in enumerate(zip(responses, rewards, strict=True))
              if r is not None and text.strip()
              and not (policy.exclude_cut and finish_reasons is not None and finish_reasons[i] == "length")]
    cand = [i for i in scored if comparable is None or comparable[i]]
    partial = len(scored) - len(cand)
    if len(cand) < policy.min_scored:
        reason = "partial_reward" if len(scored) >= policy.min_scored else "too_few_scored"
        return Selection(candidates=len(cand), dropped=reason, partial=partial)
    best = max(float(rewards[i]) for i in cand)  # type: ignore[arg-type]  # cand: rewards not None
    worst = min(float(rewards[i]) for i in cand)  # type: ignore[arg-type]  # cand: rewards not None
    margin = best - worst
    top = [i for i in cand if float(rewards[i]) >= best - EPS]  # type: ignore[arg-type]  # cand: rewards not None
    bottom = [i for i in cand if float(rewards[i]) <= worst + EPS]  # type: ignore[arg-type]  # cand: rewards not None
    base = dict(candidates=len(cand), chosen_ties=len(top), rejected_ties=len(bottom), margin=margin,
                partial=partial)
    if margin <= EPS:
        return Selection(**base, dropped="all_tied")  # type: ignore[arg-type]  # base: dict of int/float counts
    if policy.ties == "drop" and (len(top) > 1 or len(bottom) > 1):
        return Selection(**base, dropped="tied_extremes")  # type: ignore[arg-type]  # base: dict of int/float counts
    if policy.ties == "shortest":
        chosen = min(top, key=lambda i: (len(responses[i]), i))
        rejected = min(bottom, key=lambda i: (-len(responses[i]), i))
    else:
        chosen, rejected = top[0], bottom[0]
    if margin < policy.min_margin - EPS:
        return Selection(**base, dropped="below_min_margin")  # type: ignore[arg-type]  # base: dict of int/float counts
    return Selection(chosen=chosen, rejected=rejected, **base)  # type: ignore[arg-type]  # base: dict of int/float counts


def averaged_set(result: ResponseScore) -> frozenset[str]:
    """The dimensions a reward averages: its record's ``averaged``; for a record without that list (older
    writers), the dimensions that have a value."""
    if result.averaged or result.reward is None:
        return frozenset(result.averaged)
    return frozenset(d for d in DIMENSIONS if getattr(result, d) is not None)


def comparable_rewards(results: Sequence[ResponseScore], allow_partial: bool) -> tuple[list[bool], frozenset[str]]:
    """Which rewards of one prompt are compared, and the set of dimensions they all average.

    Default: the prompt's enabled dimensions (averaged or unscored in any of its records), so a partial
    reward is never compared. ``allow_partial``: the set most rewards share (ties: the larger set, then the
    first in dimension order); rewards over another set are still never compared with it.
    """
    sets = [averaged_set(r) for r in results]
    if allow_partial:
        counts = Counter(s for s, r in zip(sets, results, strict=True) if r.reward is not None)
        if not counts:
            return [False] * len(results), frozenset()
        target = max(counts, key=lambda s: (counts[s], len(s), [d in s for d in DIMENSIONS]))
    else:
        target = frozenset(d for r, s in zip(results, sets, strict=True)
                           for d in (*s, *r.unscored) if d in DIMENSIONS)
    return [s == target for s in sets], target


# ---------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------

def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of already sorted values."""
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def margin_summary(margins: Iterable[float]) -> dict[str, float | None]:
    """min, p10, p25, p50, p75, p90, max and mean of the margins (None when there are none)."""
    values = sorted(margins)
    keys = ["min", *(f"p{round(q * 100)}" for q in MARGIN_QUANTILES), "max", "mean"]
    if not values:
        return dict.fromkeys(keys)
    out: dict[str, float | None] = {"min": values[0]}
    for q in MARGIN_QUANTILES:
        out[f"p{round(q * 100)}"] = _quantile(values, q)
    out["max"] = values[-1]
    out["mean"] = sum(values) / len(values)
    return {k: None if v is None else round(v, 4) for k, v in out.items()}


def margin_histogram(margins: Iterable[float]) -> dict[str, int]:
    """Counts of margins in one-point bins 0-1, 1-2, ..., 9-10 (10 goes to the last bin)."""
    hist = {f"{b}-{b + 1}": 0 for b in range(10)}
    for m in margins:
        b = min(9, max(0, int(m)))
        hist[f"{b}-{b + 1}"] += 1
    return hist


@dataclass
class PairsReport:
    """Kept/dropped counts, margins, ties and lengths of one pairs run."""

    policy: PairPolicy
    prompts: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    dropped_ids: dict[str, list[str]] = field(default_factory=dict)
    margins: list[float] = field(default_factory=list)
    chosen_rewards: list[float] = field(default_factory=list)
    rejected_rewards: list[float] = field(default_factory=list)
    chosen_chars: list[int] = field(default_factory=list)
    rejected_chars: list[int] = field(default_factory=list)
    chosen_tied: int = 0       # kept pairs whose chosen was picked among tied candidates
    rejected_tied: int = 0
    chosen_cut: int = 0        # kept pairs whose chosen response hit max_tokens
    responses: int = 0
    scored: int = 0
    blank: int = 0
    partial_rewards: int = 0   # responses left out: their reward averages another set of dimensions
    truncated_prompts: int = 0  # kept pairs whose prompt was cut for the policy
    unmatched_scores: int = 0  # score records without a sampled prompt

    def drop(self, pid: str, reason: str) -> None:
        self.dropped[reason] += 1
        ids = self.dropped_ids.setdefault(reason, [])
        if len(ids) < 20:
            ids.append(pid)

    def to_dict(self) -> dict[str, Any]:
        n = self.kept
        longer = sum(c > r for c, r in zip(self.chosen_chars, self.rejected_chars, strict=True))
        return {
            "policy": {"min_margin": self.policy.min_margin, "min_scored": self.policy.min_scored,
                       "ties": self.policy.ties, "exclude_cut": self.policy.exclude_cut,
                       "allow_partial_rewards": self.policy.allow_partial_rewards},
            "prompts": self.prompts,
            "kept": n,
            "dropped": {r: self.dropped.get(r, 0) for r in DROP_REASONS},
            "dropped_ids": self.dropped_ids,
            "margin": margin_summary(self.margins),
            "margin_histogram": margin_histogram(self.margins),
            "chosen_reward_mean": round(sum(self.chosen_rewards) / n, 4) if n else None,
            "rejected_reward_mean": round(sum(self.rejected_rewards) / n, 4) if n else None,
            "ties": {"chosen_among_tied": self.chosen_tied, "rejected_among_tied": self.rejected_tied},
            "length": {
                "chosen_mean_chars": round(sum(self.chosen_chars) / n, 1) if n else None,
                "rejected_mean_chars": round(sum(self.rejected_chars) / n, 1) if n else None,
                "chosen_longer_fraction": round(longer / n, 4) if n else None,
            },
            "chosen_cut_at_max_tokens": self.chosen_cut,
            "kept_with_truncated_prompt": self.truncated_prompts,
            "responses": {"total": self.responses, "scored": self.scored, "blank": self.blank,
                          ("other_dimension_set" if self.policy.allow_partial_rewards else "partial_reward"):
                          self.partial_rewards},
            "unmatched_score_records": self.unmatched_scores,
        }


def print_report(report: PairsReport, console: Any = None) -> None:
    """The report as rich tables (stdout unless a console is given)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    d = report.to_dict()
    t = Table(title=f"preference pairs: {d['kept']} kept of {d['prompts']} prompts", show_header=False)
    t.add_row("kept", str(d["kept"]))
    for reason, n in d["dropped"].items():
        if n:
            t.add_row(f"dropped: {reason}", str(n))
    t.add_row("responses (scored / blank)", f"{d['responses']['total']} ({d['responses']['scored']} / "
                                            f"{d['responses']['blank']})")
    left_out = "other_dimension_set" if report.policy.allow_partial_rewards else "partial_reward"
    t.add_row(f"responses left out: {left_out} (reward over another set of dimensions)",
              str(d["responses"][left_out]))
    t.add_row("chosen / rejected picked among ties", f"{d['ties']['chosen_among_tied']} / "
                                                     f"{d['ties']['rejected_among_tied']}")
    if d["kept"]:
        t.add_row("reward chosen / rejected (mean)", f"{d['chosen_reward_mean']:.2f} / {d['rejected_reward_mean']:.2f}")
        ln = d["length"]
        t.add_row("chars chosen / rejected (mean)", f"{ln['chosen_mean_chars']:.0f} / {ln['rejected_mean_chars']:.0f} "
                                                    f"(chosen longer in {ln['chosen_longer_fraction']:.0%})")
    t.add_row("chosen cut at max_tokens", str(d["chosen_cut_at_max_tokens"]))
    t.add_row("kept with a truncated prompt", str(d["kept_with_truncated_prompt"]))
    if d["unmatched_score_records"]:
        t.add_row("score records without samples", str(d["unmatched_score_records"]))
    console.print(t)
    m = d["margin"]
    mt = Table(title="margin (reward chosen − rejected) of kept pairs")
    for key in m:
        mt.add_column(key, justify="right")
    mt.add_row(*("-" if v is None else f"{v:.2f}" for v in m.values()))
    console.print(mt)
    ht = Table(title="margin histogram")
    for key in d["margin_histogram"]:
        ht.add_column(key, justify="right")
    ht.add_row(*(str(v) for v in d["margin_histogram"].values()))
    console.print(ht)


# ---------------------------------------------------------------------------------------------------------
# building the pairs
# ---------------------------------------------------------------------------------------------------------

def check_score_record(rec: dict[str, Any], path: str | Path, line: int) -> str | None:
    """The id of a valid score record (None: an error record without one), or an InputError naming the
    field of a wrong one (a reward that is a list, a string or NaN; results that are not a list)."""
    if "error" in rec and rec.get("id") is None:
        return None
    rid = str(require(rec, "id", (str, int), path, line))
    try:
        score_results(rec)  # the typed score records, checked here where the line is known
    except FieldError as e:
        raise e.at(path, line) from None
    return rid


def check_sample_record(rec: dict[str, Any], path: str | Path, line: int) -> str | None:
    """The id of a valid sample record (None: the sample step's record of a bad input line)."""
    if "error" in rec:
        rid = rec.get("id")
        return None if rid is None else str(rid)
    rid = str(require(rec, "id", (str, int), path, line))
    require(rec, "context", str, path, line)
    require(rec, "question", str, path, line)
    responses = require(rec, "responses", list, path, line)
    for i, r in enumerate(responses):
        check_type(r, str, path, line, f"responses[{i}]")
    # copied into the pairs' provenance: a NaN here would be written as bare NaN, which is not JSON
    for name in ("seeds", "finish_reasons"):
        values = require(rec, name, list, path, line, optional=True) or []
        for i, v in enumerate(values):
            check_type(v, int if name == "seeds" else (str, type(None)), path, line, f"{name}[{i}]")
    sampling = require(rec, "sampling", dict, path, line, optional=True) or {}
    for key, v in sampling.items():
        if isinstance(v, float):
            check_type(v, float, path, line, f"sampling.{key}")
    return rid


def _scores(result: ResponseScore) -> dict[str, float | None]:
    return {k: getattr(result, k) for k in SCORE_KEYS}


def build_pairs(samples: Iterable[dict[str, Any]], scores: Mapping[str, dict[str, Any]],
                policy: PairPolicy) -> tuple[list[dict[str, Any]], PairsReport]:
    """Pairs (in sample order) and the report, from sample records and score records by id."""
    report = PairsReport(policy)
    return list(iter_pairs(samples, scores, policy, report)), report


def iter_pairs(samples: Iterable[dict[str, Any]], scores: Mapping[str, dict[str, Any]], policy: PairPolicy,
               report: PairsReport) -> Iterator[dict[str, Any]]:
    """Stream the pairs in sample order, counting into `report` (complete once the stream is exhausted)."""
    seen: set[str] = set()
    for rec in samples:
        if rec.get("id") is None:
            continue  # a bad input line of the sample step
        pid = str(rec["id"])
        seen.add(pid)
        report.prompts += 1
        responses = rec.get("responses")
        if "error" in rec or not isinstance(responses, list) or not responses:
            report.drop(pid, "sampling_failed")
            continue
        report.responses += len(responses)
        report.blank += sum(not str(r).strip() for r in responses)
        srec = scores.get(pid)
        results = score_results(srec) if srec else None
        stale = (srec is None or results is None or len(results) != len(responses)
                 or ("responses_sha" in srec and srec["responses_sha"] != responses_sha(responses)))
        if stale:
            report.drop(pid, "not_scored")
            continue
        rewards = [r.reward for r in results]  # type: ignore[union-attr]  # results is not None: not stale
        report.scored += sum(r is not None for r in rewards)
        finish = rec.get("finish_reasons")
        comparable, dims = comparable_rewards(results, policy.allow_partial_rewards)  # type: ignore[arg-type]  # results is not None: not stale
        sel = select_pair(responses, rewards, policy, finish if isinstance(finish, list) else None, comparable)
        report.partial_rewards += sel.partial
        if sel.dropped is not None:
            report.drop(pid, sel.dropped)
            continue
        assert sel.chosen is not None and sel.rejected is not None and sel.margin is not None
        c, r = sel.chosen, sel.rejected
        seeds = rec.get("seeds") or list(range(len(responses)))
        sampling = rec.get("sampling") or {}
        reasons = finish if isinstance(finish, list) else [None] * len(responses)
        yield ({
            "id": pid,
            "context": rec["context"],
            "question": rec["question"],
            "chosen": responses[c],
            "rejected": responses[r],
            "chosen_reward": rewards[c],
            "rejected_reward": rewards[r],
            "margin": round(sel.margin, 6),
            "chosen_scores": _scores(results[c]),  # type: ignore[index]  # results is not None: not stale
            "rejected_scores": _scores(results[r]),  # type: ignore[index]  # results is not None: not stale
            "provenance": {
                "policy": sampling.get("model"), "temperature": sampling.get("temperature"),
                "judge": srec.get("judge") if srec else None,
                "chosen_index": c, "rejected_index": r, "chosen_seed": seeds[c], "rejected_seed": seeds[r],
                "chosen_finish": reasons[c], "rejected_finish": reasons[r],
                "n_responses": len(responses), "n_candidates": sel.candidates,
                "chosen_ties": sel.chosen_ties, "rejected_ties": sel.rejected_ties, "tie_rule": policy.ties,
                "reward_dimensions": [d for d in DIMENSIONS if d in dims],
                "prompt_truncated": bool(rec.get("truncated")),
            },
        })
        report.kept += 1
        report.margins.append(sel.margin)
        report.chosen_rewards.append(float(rewards[c]))  # type: ignore[arg-type]  # chosen: rewards not None
        report.rejected_rewards.append(float(rewards[r]))  # type: ignore[arg-type]  # chosen: rewards not None
        report.chosen_chars.append(len(responses[c]))
        report.rejected_chars.append(len(responses[r]))
        report.chosen_tied += sel.chosen_ties > 1
        report.rejected_tied += sel.rejected_ties > 1
        report.chosen_cut += reasons[c] == "length"
        report.truncated_prompts += bool(rec.get("truncated"))
    report.unmatched_scores = sum(k not in seen for k in scores)


def report_path(output: str | Path) -> Path:
    """Default report file beside the pairs (``pairs.jsonl`` → ``pairs.report.json``)."""
    return Path(output).with_suffix(".report.json")


def run_pairs(samples_path: str | Path, scores_path: str | Path, output: str | Path, policy: PairPolicy,
              report_file: str | Path | None = None) -> PairsReport:
    """Validate both files (any bad line refuses the run: nothing is paid here, so fix and rerun), then stream
    the samples, look each prompt's scores up by id (an index of offsets, not the records) and write the
    pairs JSONL and the JSON report atomically. Duplicate ids in either file are refused."""
    report_at = Path(report_file) if report_file else report_path(output)
    check_paths({"output": output, "report": report_at}, {"samples": samples_path, "scores": scores_path})
    JsonlIndex(samples_path, check_sample_record, keep=False)  # validation: structure and duplicate ids
    scores = JsonlIndex(scores_path, check_score_record)
    report = PairsReport(policy)
    samples = (rec for _, rec in read_jsonl(samples_path) if isinstance(rec, dict))
    write_jsonl_atomic(output, iter_pairs(samples, scores, policy, report))
    write_text_atomic(report_at, json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n")
    return report
