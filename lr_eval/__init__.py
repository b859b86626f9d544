"""longreward-eval core: the judge client, cache, accounting, embedded model and CLI."""

__version__ = "0.1.0"
