"""lr_eval.leaderboards: see README, layout."""
