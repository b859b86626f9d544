"""Make our lm-eval tasks visible to a plain ``lm_eval`` / ``TaskManager()`` after ``pip install``.

lm-eval 0.4.13 only finds task YAMLs in its own ``tasks/`` folder and in each
``include_path``; it has no plug-in discovery. So an installed ``.pth`` file
(``lr_eval_lm_eval_tasks.pth``, written by ``setup.py`` into site-packages)
calls :func:`install_import_hook` at interpreter start-up. The hook costs one
small import and a finder on ``sys.meta_path``; it does nothing until
``lm_eval.tasks.manager`` is imported, then wraps ``TaskManager.__init__`` so
that our ``tasks/configs`` folder is put *first* in ``include_path`` (lm-eval
lets later paths win, so a user's own ``--include_path`` still overrides us).

Opt out with ``LR_EVAL_DISABLE_LM_EVAL_TASKS=1`` (checked at start-up and again
at every ``TaskManager`` construction). Without the ``.pth`` (``python -S``, a
source checkout that is not installed), call :func:`register` or pass
:func:`include_path` to ``TaskManager(include_path=...)`` yourself.

The ``lm_eval.tasks`` entry point (``pyproject.toml``) names :data:`TASKS_DIR`,
a string path, for an lm-eval that discovers task folders natively.

This module runs at every Python start-up: at module level it imports only
``os``, ``sys`` and ``types``, which the interpreter has loaded by then.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

#: Folder scanned by lm-eval for our task YAMLs (all families: ``configs/<family>/*.yaml``).
TASKS_DIR: str = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")

#: Set to 1/true/yes/on to hide our tasks from lm-eval (the ``.pth`` hook then does nothing).
OPT_OUT_ENV = "LR_EVAL_DISABLE_LM_EVAL_TASKS"

_TARGET_MODULE = "lm_eval.tasks.manager"
_PATCHED_FLAG = "_lr_eval_include_path_patch"


def include_path() -> str:
    """The folder to pass as lm-eval's ``include_path`` (Python API without the hook)."""
    return TASKS_DIR


def enabled() -> bool:
    """False when the opt-out variable is set to a true-ish value."""
    from lr_eval.flags import truthy

    return not truthy(os.environ.get(OPT_OUT_ENV))


def with_our_path(paths: object) -> object:
    """``include_path`` value with our folder prepended (once); the caller's paths keep precedence."""
    if paths is None:
        current: list[Any] = []
    elif isinstance(paths, (list, tuple)):
        current = list(paths)
    else:
        current = [paths]
    ours = os.path.realpath(TASKS_DIR)
    if any(os.path.realpath(os.fspath(p)) == ours for p in current):
        return paths
    return [TASKS_DIR, *current]


def _patch_task_manager(manager_module: ModuleType) -> None:
    """Wrap ``TaskManager.__init__`` so that every manager also indexes our folder."""
    cls = manager_module.TaskManager
    original = cls.__init__
    if getattr(original, _PATCHED_FLAG, False):
        return
    import functools
    import inspect

    signature = inspect.signature(original)
    if "include_path" not in signature.parameters:  # an lm-eval we do not know: leave it alone
        return

    @functools.wraps(original)
    def __init__(self: object, *args: object, **kwargs: object) -> None:
        if not enabled():
            original(self, *args, **kwargs)
            return
        bound = signature.bind(self, *args, **kwargs)
        bound.arguments["include_path"] = with_our_path(bound.arguments.get("include_path"))
        original(*bound.args, **bound.kwargs)

    setattr(__init__, _PATCHED_FLAG, True)
    cls.__init__ = __init__


def register() -> None:
    """Patch lm-eval now (imports it): for processes started without the ``.pth`` hook."""
    import importlib

    _patch_task_manager(importlib.import_module(_TARGET_MODULE))


class _PatchingLoader:
    """Delegates to lm-eval's own loader and patches the module right after it executed."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> object:
        return getattr(self._loader, name)

    def create_module(self, spec: object) -> object:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        # Hand the module back its real loader so that nothing else sees this wrapper.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        try:
            _patch_task_manager(module)
        except Exception as error:  # noqa: BLE001 - lm-eval must keep working without our tasks
            print(f"lr_eval: could not register tasks with lm-eval: {error}", file=sys.stderr)


class _LmEvalFinder:
    """One-shot ``sys.meta_path`` entry waiting for ``lm_eval.tasks.manager`` to be imported."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != _TARGET_MODULE:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


def install_import_hook() -> None:
    """Called by the ``.pth`` file at start-up: patch lm-eval when (and if) it is imported."""
    if not enabled():
        return
    module = sys.modules.get(_TARGET_MODULE)
    if module is not None:
        _patch_task_manager(module)
        return
    if not any(isinstance(finder, _LmEvalFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _LmEvalFinder())
