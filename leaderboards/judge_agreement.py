"""The judge's measured agreement in the leaderboard's Judge table (`lr-leaderboard build --judge-report FILE`).

A report of `lr-eval judge-agreement` carries a one-line summary (:class:`lr_eval.stats.AgreementSummary`);
a run's Judge row shows the summaries whose judge is one of the run's judge models, so a row's numbers say how
far their judge can be trusted (agreement with a reference, on which items, with its interval).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lr_eval.jsonl import InputError
from lr_eval.stats import AgreementSummary, Estimate, model_key, read_agreement_report
_LABELS = {"agreement": "agreement", "agreement_without_ties": "no ties", "spearman": "Spearman",
           "kendall": "Kendall", "pearson": "Pearson"}


def load_summaries(paths: Sequence[str | Path]) -> list[AgreementSummary]:
    """The summary of each report; a file that is not a judge-agreement report is an error naming it."""
    out = []
    for path in paths:
        try:
            report = read_agreement_report(path)  # an InputError (names the file) passes as it is
            out.append(AgreementSummary.from_dict(report["summary"]))
        except InputError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"--judge-report {path}: not a judge-agreement report ({e})") from None
    return out


def _fig(name: str, e: Estimate, ci: bool) -> str:
    text = f"{_LABELS.get(name, name)} {e.value:.3f}" if e.value is not None else f"{_LABELS.get(name, name)} —"
    return text + (f" [{e.ci[0]:.3f}, {e.ci[1]:.3f}]" if ci and e.ci else "")


def cell(judge_models: Sequence[str], summaries: Sequence[AgreementSummary]) -> str:
    """The Judge table's agreement cell of a run judged by `judge_models` ("—" when no report is about them)."""
    names = {model_key(m) for m in judge_models}
    parts = []
    for s in summaries:
        if model_key(s.judge) not in names:
            continue
        figs = [_fig(k, e, i == 0) for i, (k, e) in enumerate(s.figures.items())]
        parts.append(f"{', '.join(figs)} ({s.compared} {s.kind} vs {s.reference})")
    return "; ".join(parts) or "—"


def note(s: AgreementSummary) -> str:
    """One sentence for a page without a Judge table (the HTML leaderboard)."""
    figs = ", ".join(_fig(k, e, True) for k, e in s.figures.items())
    return f"Measured agreement of the judge {s.judge} with {s.reference}: {figs} ({s.compared} {s.kind})."
