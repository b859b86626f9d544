"""Test doubles, in one place: the scripted OpenAI-compatible server (`scripted_server`), the canned LongReward
judge that answers through it or in process (`canned_judge`), and tiny models built on the spot (`tiny`).

Tests, benchmarks and the demos use them; the package's own code never does."""
