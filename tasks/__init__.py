"""lr_eval.tasks: see README, layout."""
