"""lr_eval.reward: see README, layout."""
