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
    other = object.__new__(ConfigurableTask)
    with adapter.handing(other):  # a task that hands itself over wins over the stack
        assert evaluate(model) == (other, model)
    assert evaluate(model) == (task, model) and adapter.calling_task() is None


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


def test_dumped_metadata_is_redacted_while_the_task_reads_the_original() -> None:
    from lm_eval.api.task import ConfigurableTask, TaskConfig

    task = object.__new__(ConfigurableTask)
    secret_url = "http://user:Kq7-url-password@127.0.0.1:9/v1"
    task._config = TaskConfig(task="t", generation_kwargs={},
                              metadata={"judge_base_url": secret_url, "judge_api_key": "sk-not-a-real-key-1",
                                        "embed_token": "hf_abcdefgh", "judge_max_tokens": 64,
                                        "nested": {"api_key": "nested-secret-9"}})
    adapter.keep_secrets_out_of_results(task)
    dumped = task.dump_config()["metadata"]
    assert dumped == {"judge_base_url": "http://[redacted]@127.0.0.1:9/v1", "judge_api_key": "[redacted]",
                      "embed_token": "[redacted]", "judge_max_tokens": 64, "nested": {"api_key": "[redacted]"}}
    assert adapter.task_metadata(task)["judge_base_url"] == secret_url  # the judge still gets its URL and key
    assert adapter.task_metadata(task)["judge_api_key"] == "sk-not-a-real-key-1"

    def loader(self: Any) -> None:  # a note written after redaction lands in both, and redaction stays
        adapter.note_in_results("effective_max_length", 99)

    loader(task)
    assert task.dump_config()["metadata"]["effective_max_length"] == 99
    assert adapter.task_metadata(task)["effective_max_length"] == 99
    assert task.dump_config()["metadata"]["judge_api_key"] == "[redacted]"


@pytest.mark.slow
def test_a_judge_secret_in_metadata_never_reaches_the_results_or_samples(tmp_path: Any) -> None:
    """A real lm-eval run (tiny model, scripted judge) given an API key and a URL with user-info as --metadata
    (the judge's own URL plain: the judge client cannot send a key and URL credentials at once): the judge
    is reached, and no written file holds either secret."""
    import json
    from pathlib import Path

    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from lr_eval.testing.scripted_server import ScriptedServer
    from lr_eval.testing.tiny import save_tiny_model

    root = Path(__file__).resolve().parents[1]
    fix = root / "tests" / "fixtures" / "judged"
    model = str(save_tiny_model(tmp_path / "tiny"))
    password, api_key = "Zt9-url-password", "sk-leak-check-0123456789"
    out = tmp_path / "out"
    with ScriptedServer(responder=lambda body: "Rating: [[3]]") as srv:
        metadata = {"longbench_data": str(fix / "longbench"), "longbench_prompts": str(fix / "dataset2prompt.json"),
                    "pretrained": model, "max_length": 64, "judge_model": "scripted-judge",
                    "judge_base_url": srv.base_url, "judge_api_key": api_key,
                    "reward_embed_base_url": f"http://embed:{password}@127.0.0.1:9/v1"}
        tracker = EvaluationTracker(output_path=str(out))
        res = simple_evaluate(model="hf", model_args=f"pretrained={model},dtype=float32", device="cpu",
                              tasks=["longreward_longbench_judged_narrativeqa"], limit=2,
                              task_manager=TaskManager(include_path=str(root / "tasks" / "configs"),
                                                       include_defaults=False, metadata=metadata),
                              gen_kwargs="max_gen_toks=2", log_samples=True, evaluation_tracker=tracker)
        assert srv.bodies  # the judge was asked, through the URL given as --metadata
    samples = res.pop("samples")
    tracker.save_results_aggregated(results=res, samples=samples)
    for task in res["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name.split("_")[0] for p in files} == {"results", "samples"}
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert password not in text and api_key not in text, path
    [results] = [p for p in files if p.name.startswith("results")]
    meta = json.loads(results.read_text())["configs"]["longreward_longbench_judged_narrativeqa"]["metadata"]
    assert meta["judge_api_key"] == "[redacted]" and meta["reward_embed_base_url"] == "http://[redacted]@127.0.0.1:9/v1"
    assert meta["judge_base_url"] == srv.base_url and meta["effective_max_length"] == 64
    assert meta["judge"]["model"] == "scripted-judge" and meta["judge"]["samples"]["scored"] == 2
