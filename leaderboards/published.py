"""Published rows of the LongReward paper, shown beside measured rows (marked "published").

Kept as Python data (not JSON) so that it ships inside the package without
package-data settings. Numbers copied from the paper's tables (see SOURCE);
PROTOCOL says how each column was measured there, which is what a measured row
must be compared against (e.g. their LongBench columns are GPT-4o-judged, not
the official F1/ROUGE metrics).
"""

from __future__ import annotations

from typing import Any

SOURCE = ("Zhang et al., LongReward: Improving Long-context Large Language Models with AI Feedback "
          "(ACL 2025; arXiv:2410.21252)")

#: column key -> how the paper measured it (judge, n, metric).
PROTOCOL: dict[str, dict[str, Any]] = {
    "lb_chat": {"judge": "GPT-4o", "n": 50,
                "note": "LongBench-Chat: 50 questions (40 en, 10 zh), point-wise 1-10 with reference answer and "
                        "3 graded examples, judged by GPT-4o; reported as mean x 10"},
    "sdoc": {"judge": "GPT-4o", "n": 750,
             "note": "LongBench single-doc QA (narrativeqa, qasper, multifieldqa_en/zh), judged by GPT-4o "
                     "(QA rating 1-3 -> (r-1)/2, max over references), not the official F1; 0-100"},
    "mdoc": {"judge": "GPT-4o", "n": 800,
             "note": "LongBench multi-doc QA (hotpotqa, 2wikimqa, musique, dureader), judged by GPT-4o; 0-100"},
    "summ": {"judge": "GPT-4o", "n": 800,
             "note": "LongBench summarization (gov_report, qmsum, multi_news, vcsum), judged by GPT-4o "
                     "(rating 1-5 -> (r-1)/4), not the official ROUGE-L; 0-100"},
    "avg": {"judge": "GPT-4o", "n": None, "note": "mean of LB-Chat, S-Doc QA, M-Doc QA and Summ"},
    "mt_bench": {"judge": "GPT-4", "n": 80, "note": "MT-Bench: 80 two-turn questions, single-answer grading 1-10 "
                                                    "by GPT-4"},
    "alpaca_lc": {"judge": "GPT-4 Turbo", "n": 805,
                  "note": "AlpacaEval 2: length-controlled win rate vs GPT-4 Turbo (gpt4_1106_preview), "
                          "annotator weighted_alpaca_eval_gpt4_turbo"},
}

GENERATION_NOTE = "paper: up to 1024 new tokens, input truncated in the middle at 64k tokens"

#: (base model, method, LB-Chat, S-Doc QA, M-Doc QA, Summ, Avg) -- the paper's main table.
MAIN: list[tuple[str, str, float, float, float, float, float]] = [
    ("Llama-3.1-8B", "official Instruct", 60.2, 59.3, 42.9, 35.3, 49.4),
    ("Llama-3.1-8B", "SFT", 69.8, 66.1, 44.5, 39.6, 55.0),
    ("Llama-3.1-8B", "DPO w/ SRM", 67.4, 65.0, 49.6, 42.7, 56.2),
    ("Llama-3.1-8B", "DPO w/ Contrast", 70.6, 67.8, 46.2, 40.3, 56.2),
    ("Llama-3.1-8B", "DPO w/ LongReward", 72.6, 67.8, 55.8, 43.2, 59.9),
    ("GLM-4-9B", "official Chat", 68.6, 67.8, 56.9, 47.9, 60.3),
    ("GLM-4-9B", "SFT", 64.8, 68.4, 50.9, 42.1, 56.6),
    ("GLM-4-9B", "DPO w/ SRM", 66.6, 67.5, 57.4, 48.2, 59.9),
    ("GLM-4-9B", "DPO w/ Contrast", 68.2, 67.8, 58.0, 47.8, 60.5),
    ("GLM-4-9B", "DPO w/ LongReward", 69.2, 71.9, 58.8, 48.5, 62.1),
]

#: (base model, method, MT-Bench, AlpacaEval 2 LC) -- the paper's short-instruction table.
SHORT: list[tuple[str, str, float, float]] = [
    ("Llama-3.1-8B", "official", 8.13, 22.9),
    ("Llama-3.1-8B", "SFT", 7.12, 12.4),
    ("Llama-3.1-8B", "DPO w/ SRM", 7.58, 13.7),
    ("Llama-3.1-8B", "DPO w/ Contrast", 7.58, 13.8),
    ("Llama-3.1-8B", "DPO w/ LongReward", 7.24, 14.2),
    ("GLM-4-9B", "official", 8.09, 22.4),
    ("GLM-4-9B", "SFT", 7.37, 12.5),
    ("GLM-4-9B", "DPO w/ SRM", 7.50, 14.2),
    ("GLM-4-9B", "DPO w/ Contrast", 7.54, 14.5),
    ("GLM-4-9B", "DPO w/ LongReward", 7.58, 15.4),
]


def published_rows() -> dict[str, list[dict[str, Any]]]:
    """Section key -> rows ``{"label", "model", "method", "values": {column key: value}}``."""
    main = [{"label": f"{m} · {meth}", "model": m, "method": meth,
             "values": {"lb_chat": c, "sdoc": s, "mdoc": md, "summ": su, "avg": a}}
            for m, meth, c, s, md, su, a in MAIN]
    short = [{"label": f"{m} · {meth}", "model": m, "method": meth, "values": {"mt_bench": mt, "alpaca_lc": lc}}
             for m, meth, mt, lc in SHORT]
    return {"main": main, "short": short}
