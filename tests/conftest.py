"""Shared fixtures: an isolated cache folder per test, the path to ../shared/data when present, the embedded
model or a skip, and torch on one thread for the tiny-model (DPO) tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's judge settings or writes the user's cache; the embedded model is reused."""
    for var in ("LR_JUDGE_BASE_URL", "LR_JUDGE_MODEL", "LR_JUDGE_BACKEND", "LR_JUDGE_CONFIG", "LR_JUDGE_API_KEY",
                "OPENAI_API_KEY", "LR_JUDGE_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LR_JUDGE_CACHE", str(tmp_path / "judge-cache.sqlite"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (only in the project's own checkout)")
    return SHARED_DATA


def embedded_model_or_skip() -> str:
    """The embedded SmolLM2 folder (converted on first use), or skip the test: the model package is a documented
    install step (`make install`). For helpers that are not tests; tests take the ``embedded_model`` fixture."""
    from lr_eval.embedded import embedded_model_path

    try:
        return str(embedded_model_path())
    except RuntimeError as e:
        pytest.skip(f"embedded model unavailable: {e}")


@pytest.fixture(scope="session")
def embedded_model() -> str:
    """The embedded SmolLM2 folder, or skip every test that asks for it."""
    return embedded_model_or_skip()


@pytest.fixture(scope="module")
def torch_one_thread() -> Iterator[None]:
    """Tiny models run faster on one thread, and far faster on a shared, busy machine.

    Module-wide: ``pytestmark = pytest.mark.usefixtures("torch_one_thread")`` in a test module.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
