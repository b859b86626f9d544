"""The lm-eval adapter: every internal of lm-eval 0.4.13 it relies on still exists (so an upgrade that moves one
fails here, loudly), and its stack lookups, argv sniffing and results notes behave as documented."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import pytest

from lr_eval.tasks import lm_eval_adapter as adapter


def test_lm_eval_still_has_what_the_adapter_relies_on() -> None:
    from lm_eval import evaluator
    from lm_eval.api.instance import Instance
    from lm_eval.api.task import ConfigurableTask, Task

    # calling_lm: the run's model is evaluate's local `lm`, alive while it applies every task's filters, after
    # which it groups a doc's instances sorted by idx (so a follow-up with idx 1 comes second).
    assert adapter.LM_LOCAL in inspect.signature(evaluator.evaluate).parameters
    source = inspect.getsource(evaluator.evaluate)
    assert "task.apply_filters()" in source
    assert "instances.sort(key=lambda x: x.idx)" in source
    # FollowUpTask: the chat settings arrive in build_all_requests; filters run over self._instances.
    params = inspect.signature(ConfigurableTask.build_all_requests).parameters
    assert {"system_instruction", "apply_chat_template", "chat_template"} <= set(params)
    assert "self._instances" in inspect.getsource(Task.apply_filters)
    assert {"request_type", "doc", "arguments", "idx", "metadata", "resps", "task_name", "doc_id",
            "repeats"} <= set(Instance.__dataclass_fields__)
    # is_predict_only: --predict_only overrides every metric by "bypass" in _metric_fn_list.
    assert 'override_metric(metric_name="bypass")' in inspect.getsource(evaluator)
    assert "self._metric_fn_list" in inspect.getsource(ConfigurableTask.override_metric)
    # note_in_results / calling_task: a custom_dataset loader is called from the task (self) with its metadata.
    download = inspect.getsource(ConfigurableTask.download)
    assert "self.config.custom_dataset(" in download and "self.config.metadata" in download


def test_stack_lookups_find_the_nearest_task_and_model() -> None:
    from lm_eval.api.task import ConfigurableTask

    task = object.__new__(ConfigurableTask)

    class Model:
        def generate_until(self, requests: Any) -> list[str]:
            return []

    def filter_apply() -> tuple[Any, Any]:
        return adapter.calling_task(), adapter.calling_lm()

    def apply_filters(self: Any) -> tuple[Any, Any]:
        return filter_apply()

    def evaluate(lm: Any) -> tuple[Any, Any]:
        return apply_filters(task)

    model = Model()
    assert evaluate(model) == (task, model)
    assert filter_apply() == (None, None)  # outside lm-eval: nothing found, nothing guessed


def test_predict_only_is_read_from_lm_evals_command_line_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/venv/bin/lm_eval", "--model", "hf", "--predict_only"])
    assert adapter.running_lm_eval_cli() and adapter.predict_only_requested()
    monkeypatch.setattr(sys, "argv", ["/venv/bin/lm-eval", "--predict_only=True"])
    assert adapter.predict_only_requested()
    monkeypatch.setattr(sys, "argv", ["/venv/bin/pytest", "-x"])  # pytest's -x is not lm-eval's
    assert not adapter.running_lm_eval_cli() and not adapter.predict_only_requested()
    assert adapter.predict_only_requested({"predict_only": "true"})


def test_notes_and_reports_land_in_the_task_metadata() -> None:
    from types import SimpleNamespace

    from lm_eval.api.task import ConfigurableTask

    task = object.__new__(ConfigurableTask)
    task._config = SimpleNamespace(metadata=None)

    def loader(self: Any) -> None:
        adapter.note_in_results("effective_max_length", 123)

    loader(task)
    assert task.config.metadata == {"effective_max_length": 123}
    adapter.note_in_results("effective_max_length", 5)  # no task on the stack: a no-op
    assert task.config.metadata == {"effective_max_length": 123}
    task._metric_fn_list = {"bypass": None}
    assert adapter.is_predict_only(task)
    task._metric_fn_list = {"bypass": None, "acc": None}
    assert not adapter.is_predict_only(task)
