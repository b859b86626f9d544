"""lr_eval.leaderboards: leaderboard tables, intervals, paired tests and plots from lm-eval result files.

Modules: reader (lm-eval output folders -> Run), board (sections, columns, cells, judge metadata),
stats (bootstrap, sign-flip permutation, Holm), compare (paired tests), render (Markdown/CSV/JSON),
html (self-contained page), plots (matplotlib, optional), published (the paper's rows), cli
(`lr-leaderboard`). It reads files only: no task code is imported (see README.md here).
"""
