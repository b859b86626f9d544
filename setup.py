"""Build hook: install ``lr_eval_lm_eval_tasks.pth`` into site-packages (wheel and editable installs).

Everything else about the package is declared in ``pyproject.toml``. A ``.pth``
file must sit at the top of site-packages, which package data cannot reach, so
``build_py`` writes it: into ``build_lib`` for a wheel, and into the unpacked
editable wheel for ``pip install -e`` (setuptools' editable install ignores
``build_lib``). Its one line imports ``lr_eval.tasks.registration`` and
installs the lazy lm-eval hook; see that module. Failures are swallowed there so
that a broken install can never stop Python from starting.
"""

from __future__ import annotations

import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_NAME = "lr_eval_lm_eval_tasks.pth"
# site.py executes .pth lines that start with "import"; the opt-out is checked before importing anything of ours.
PTH_LINE = (
    "import os; os.environ.get('LR_EVAL_DISABLE_LM_EVAL_TASKS', '').strip().lower() in ('1', 'true', 'yes', 'on') "
    "or exec('try:\\n from lr_eval.tasks.registration import install_import_hook\\n install_import_hook()\\n"
    "except Exception:\\n pass')"
)


class BuildPyWithPth(build_py):
    """``build_py`` that also writes the start-up hook ``.pth`` next to the packages."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            target = self.get_finalized_command("install").install_lib
        else:
            target = self.build_lib
        self.mkpath(target)
        with open(os.path.join(target, PTH_NAME), "w", encoding="utf-8") as handle:
            handle.write(PTH_LINE + "\n")


setup(cmdclass={"build_py": BuildPyWithPth})
