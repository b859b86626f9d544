"""Every dependence of our tasks on lm-eval 0.4.13's internals, in one place.

lm-eval hands a filter only the responses and docs, a ``custom_dataset`` loader only its keyword
arguments, and no hook the model. What our tasks need beyond that is found here, and only here:

* :func:`calling_task` / :func:`calling_lm`: the running ``Task`` (its name, ``--metadata`` and whether
  this is a ``--predict_only`` run) and the run's model, found on the call stack (local ``self`` of a Task
  method, local ``lm`` of ``lm_eval.evaluator.evaluate``);
* :func:`predict_only_requested`: lm-eval's ``--predict_only`` seen in ``sys.argv`` at task build time
  (lm-eval tells a task only later, by replacing its metrics with ``bypass``: :func:`is_predict_only`);
* :func:`note_in_results` / :func:`store_report`: values written into the task's ``config.metadata``, which
  lm-eval dumps as ``configs.<task>.metadata`` in the results file;
* :class:`FollowUpTask`: generations whose prompt is built from the model's previous generation, inside
  one task (MT-Bench's second turn, LongBench v2's CoT answer step), added to the task's instances with
  ``idx`` 1 when lm-eval asks the task to apply its filters.

``tests/test_lm_eval_adapter.py`` checks that lm-eval still has every name and call this module relies on,
so an lm-eval upgrade that moves one fails there, loudly, rather than in a run.
"""

from __future__ import annotations

import logging
import sys
from types import FrameType
from collections.abc import Callable, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask

from lr_eval.flags import truthy
from lr_eval.records import JudgeReport

log = logging.getLogger(__name__)

#: The local variable of ``lm_eval.evaluator.evaluate`` that holds the run's model.
LM_LOCAL = "lm"
#: The idx lm-eval sorts a doc's instances by; follow-ups come after the first generation.
FIRST, FOLLOW_UP = 0, 1


# ------------------------------------------------------------------------------ command line


def predict_only_requested(metadata: dict[str, Any] | None = None) -> bool:
    """Whether this run only generates (lm-eval's --predict_only / -x, or metadata predict_only)."""
    if truthy((metadata or {}).get("predict_only")):
        return True
    if not running_lm_eval_cli():
        return False  # another program's flags (pytest's -x) mean nothing here
    return any(a in ("--predict_only", "-x") or a.startswith("--predict_only=") for a in sys.argv[1:])


def running_lm_eval_cli() -> bool:
    """Whether this process is lm-eval's command line (not the Python API, rejudge or a test)."""
    program = Path(sys.argv[0]).as_posix() if sys.argv and sys.argv[0] else ""
    return "lm_eval" in program or "lm-eval" in program


# ------------------------------------------------------------------------------ call stack


def calling_task() -> Any | None:
    """The lm-eval Task whose filters (or loader) are running (found on the call stack), or None.

    lm-eval 0.4.13 gives a filter only the responses and docs; the task tells us its name,
    its --metadata (judge overrides) and whether this is a --predict_only run.
    """
    from lm_eval.api.task import Task

    return _on_stack("self", lambda x: isinstance(x, Task))


def calling_lm() -> Any | None:
    """The lm-eval model of the running evaluation (``lm`` of ``lm_eval.evaluator.evaluate``), or None.

    lm-eval 0.4.13 gives neither filters nor tasks the model; a task that must generate again after
    seeing the first answers (:class:`FollowUpTask`) finds it here.
    """
    # Duck-typed: lm-eval's --use_cache wraps the model in a CachingLM, which is no LM subclass.
    return _on_stack(LM_LOCAL, lambda x: callable(getattr(x, "generate_until", None)))


def _on_stack(name: str, accept: Callable[[Any], bool]) -> Any | None:
    """The nearest caller's local variable `name` that `accept` takes, or None."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        candidate = frame.f_locals.get(name)
        if candidate is not None and accept(candidate):
            return candidate
        frame = frame.f_back
    return None


def is_predict_only(task: Any) -> bool:
    """lm-eval's --predict_only replaces the task's metrics by 'bypass' before generating."""
    metric_fns = getattr(task, "_metric_fn_list", None) or {}
    return bool(metric_fns) and set(metric_fns) == {"bypass"}


# ------------------------------------------------------------------------------ results file


def note_in_results(key: str, value: Any) -> None:
    """Record a value the task's loader resolved (e.g. the prompt budget it truncated to) in the task's
    metadata, which lm-eval writes to the results as ``configs.<task>.metadata.<key>``; no-op outside lm-eval."""
    task = calling_task()
    if task is None:
        return
    if not isinstance(task.config.metadata, dict):
        task.config.metadata = {}
    task.config.metadata[key] = value


def store_report(task: Any, report: dict[str, Any]) -> None:
    """Write a judge report into the task's config metadata (lm-eval dumps it as ``configs.<task>.metadata.judge``).

    It goes through :class:`~lr_eval.records.JudgeReport`, the record the leaderboard reads back."""
    if not isinstance(task.config.metadata, dict):
        task.config.metadata = {}
    task.config.metadata["judge"] = JudgeReport.from_dict(report).to_dict()


# ------------------------------------------------------------------------------ follow-up generations


def generated_text(inst: Instance) -> str:
    """An instance's (first) generation as text; "" when it has none."""
    resp = inst.resps[0] if inst.resps else ""
    return "" if resp is None else str(resp)


class FollowUpTask(ConfigurableTask):
    """A ConfigurableTask with at most one follow-up generation per doc, built from the first generation.

    lm-eval 0.4.13 sends every request of a run to the model at once, so a prompt that must contain the
    model's own answer cannot be an ordinary request. Here lm-eval generates the first requests as usual;
    when it asks the task to apply its filters, :meth:`follow_up` builds one request per doc from that doc's
    first generation, the run's model generates them (``generate_until``) and they join the task's instances
    with ``idx`` 1. From there everything is lm-eval's: filters see both generations, ``process_results`` gets
    [first, follow-up] per doc (lm-eval sorts a doc's instances by ``idx``), the samples log holds both prompts
    (``arguments``) and both generations (``resps``).

    Select it (or a subclass) with the YAML key ``class: !function ...``; subclasses implement
    :meth:`follow_up` and may render a conversation with :meth:`render_chat` as the run's chat template does.
    """

    _instances: list[Instance]  # lm-eval's own attribute (set in build_all_requests), untyped there

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        # The YAML's ``class:`` key selects this class; TaskConfig does not accept it.
        config = {key: value for key, value in (config or {}).items() if key != "class"}
        self._chat: dict[str, Any] = {}
        super().__init__(config=config, **kwargs)

    @property
    def metadata(self) -> dict[str, Any]:
        """The run's --metadata and --model_args as the task has them (handed over by the task, no frame walk)."""
        value = getattr(self.config, "metadata", None)
        return dict(value) if isinstance(value, dict) else {}

    def follow_up(self, doc: dict[str, Any], first: str, gen_kwargs: dict[str, Any]) -> tuple[Any, dict] | None:
        """(context, generation kwargs) of the follow-up of `doc` after its first generation `first`, or None
        for no follow-up; `gen_kwargs` are the first request's."""
        raise NotImplementedError

    def build_all_requests(self, **kwargs: Any) -> None:
        """Keeps the run's chat settings for the follow-ups."""
        self._chat = {k: kwargs.get(k) for k in ("system_instruction", "apply_chat_template", "chat_template")}
        super().build_all_requests(**kwargs)

    def render_chat(self, messages: Sequence[dict[str, str]]) -> Any:
        """A conversation as the model sees it: the run's chat template (with its system instruction), or the
        messages' contents joined by blank lines without one."""
        messages = list(messages)
        if self._chat.get("system_instruction"):
            messages.insert(0, {"role": "system", "content": self._chat["system_instruction"]})
        template = self._chat.get("chat_template") if self._chat.get("apply_chat_template") else None
        if template is not None:
            return template(messages, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in messages)

    def apply_filters(self) -> Any:
        self.generate_follow_ups()
        return super().apply_filters()

    def generate_follow_ups(self) -> None:
        """Generate every doc's follow-up once (a second apply_filters, e.g. in a rejudge, finds them done)."""
        if any(inst.idx == FOLLOW_UP for inst in self._instances):
            return
        pending = []
        for inst in self._instances:
            if inst.idx != FIRST:
                continue
            request = self.follow_up(inst.doc, generated_text(inst), deepcopy(inst.arguments[1]))
            if request is not None:
                pending.append(Instance(request_type="generate_until", doc=inst.doc, arguments=request,
                                        idx=FOLLOW_UP, metadata=(inst.task_name, inst.doc_id, inst.repeats)))
        if not pending:
            return
        lm = calling_lm()
        if lm is None:
            raise RuntimeError(f"{self.config.task}: no lm-eval model found to generate the follow-ups (run the "
                               "task through lm_eval's evaluate)")
        log.info("%s: generating %d follow-ups", self.config.task, len(pending))
        for inst, resp in zip(pending, lm.generate_until(pending), strict=True):
            inst.resps.append(resp)
        self._instances = self._instances + pending
