"""lr_eval.train: see README, layout."""
