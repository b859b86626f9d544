"""LongBench(-E) lm-eval tasks: registration (.pth hook, entry point, opt-out), YAMLs, loader, hooks, and
one end-to-end ``lm_eval`` run on the embedded SmolLM2 with small offline fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml
from conftest import embedded_model_or_skip

from lr_eval.tasks import registration
from lr_eval.tasks.longbench import CATEGORIES, DATASETS, LONGBENCH_E_DATASETS, NO_CHAT_TEMPLATE_DATASETS
from lr_eval.tasks.longbench_data import build_docs, default_max_length, load_longbench, load_rows, middle_truncate
from lr_eval.tasks.longbench_tasks import process_results, renders_text

FIXTURES = Path(__file__).parent / "fixtures" / "longbench"
FIXTURE_PROMPTS = FIXTURES / "prompts.json"
TASKS_DIR = Path(registration.TASKS_DIR)
E_NAMES = [name[:-2] for name in LONGBENCH_E_DATASETS]
OUR_TASKS = [f"longreward_longbench_{name}" for name in DATASETS] + [f"longreward_longbench_e_{n}" for n in E_NAMES]
OUR_GROUPS = (
    ["longreward_longbench", "longreward_longbench_e"]
    + [f"longreward_longbench_{category}" for category in CATEGORIES]
    + [f"longreward_longbench_e_{category}" for category in CATEGORIES]
)
# Offline; one torch thread: on a small shared CPU box, thread oversubscription makes generation ~5x slower.
SUBPROCESS_ENV = {
    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
    "LR_LONGBENCH_DATA": str(FIXTURES), "LR_LONGBENCH_PROMPTS": str(FIXTURE_PROMPTS),
}  # fmt: skip


_embedded_model = embedded_model_or_skip  # conftest.py's; tests take the embedded_model fixture


@pytest.fixture(scope="module")
def task_manager():
    """One full lm-eval index for the module (5-9 s): a plain TaskManager(), no include_path."""
    from lm_eval.tasks import TaskManager

    return TaskManager()


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_embedded_model())


def _fixture_rows(config: str) -> list[dict]:
    return load_rows(config, FIXTURES)


# --------------------------------------------------------------------------------------------- registration


def test_plain_task_manager_lists_every_yaml_we_ship(task_manager) -> None:
    """Every YAML under tasks/configs parses (hooks resolved) and is indexed from our folder without include_path."""
    from lm_eval.tasks._yaml_loader import load_yaml

    assert registration.TASKS_DIR in task_manager.include_path  # put there by the .pth hook
    shipped = sorted(TASKS_DIR.rglob("*.yaml"))
    assert len(shipped) >= len(OUR_TASKS) + len(OUR_GROUPS)
    for path in shipped:
        config = load_yaml(path, resolve_func=True)
        name = config.get("task") if "group" not in config else config["group"]
        assert isinstance(name, str), path
        entry = task_manager.task_index.get(name)
        assert entry is not None, f"{path}: {name} is not listed (a YAML that fails to parse is skipped silently)"
        assert Path(entry.yaml_path).resolve() == path.resolve()
    for name in OUR_TASKS + OUR_GROUPS:
        assert name in task_manager.all_tasks, name
    assert set(OUR_GROUPS) <= set(task_manager.all_groups)
    assert set(OUR_TASKS) <= set(task_manager.all_subtasks)


def test_groups_cover_the_suite_and_its_categories() -> None:
    def members(path: Path) -> list[str]:
        return yaml.safe_load(path.read_text())["task"]

    for folder, prefix, names in (("longbench", "longreward_longbench", DATASETS),
                                  ("longbench_e", "longreward_longbench_e", E_NAMES)):
        leaves = []
        for category, datasets in CATEGORIES.items():
            path = TASKS_DIR / folder / f"_{prefix}_{category}.yaml"
            assert members(path) == [f"{prefix}_{name}" for name in datasets if name in names]
            leaves += members(path)
        assert sorted(leaves) == sorted(f"{prefix}_{name}" for name in names)
        assert members(TASKS_DIR / folder / f"_{prefix}.yaml") == [f"{prefix}_{c}" for c in CATEGORIES]
    e_suite = yaml.safe_load((TASKS_DIR / "longbench_e" / "_longreward_longbench_e.yaml").read_text())
    assert [m["metric"] for m in e_suite["aggregate_metric_list"]] == ["score", "score_0-4k", "score_4-8k", "score_8k+"]


def test_entry_point_names_our_folder() -> None:
    from lm_eval.tasks import TaskManager

    (ep,) = [ep for ep in entry_points(group="lm_eval.tasks") if ep.name == "longreward"]
    path = ep.load()
    assert Path(path) == TASKS_DIR
    manager = TaskManager(include_defaults=False, include_path=path)  # our folder only: fast
    assert manager.include_path == path  # already there: the hook does not add it twice
    assert set(OUR_TASKS + OUR_GROUPS) <= set(manager.all_tasks)


def test_opt_out_variable_hides_our_tasks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lm_eval.tasks import TaskManager

    assert "longreward_longbench_trec" in TaskManager(include_defaults=False, include_path=str(tmp_path)).all_tasks
    monkeypatch.setenv(registration.OPT_OUT_ENV, "1")
    assert TaskManager(include_defaults=False, include_path=str(tmp_path)).all_tasks == []

    probe = "import lm_eval.tasks.manager as m; print(getattr(m.TaskManager.__init__, %r, 0))" % (
        registration._PATCHED_FLAG
    )

    def patched(env: dict[str, str]) -> str:
        return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True).stdout.strip()

    env = {**os.environ, registration.OPT_OUT_ENV: "1"}
    assert patched(env) == "0"  # the .pth hook did nothing
    env.pop(registration.OPT_OUT_ENV)
    assert patched(env) == "True"


def test_pth_hook_is_installed_and_lazy() -> None:
    pth = Path(sysconfig.get_paths()["purelib"]) / "lr_eval_lm_eval_tasks.pth"
    if not pth.is_file():
        pytest.skip("package not installed with its .pth (pip install -e .)")
    assert "install_import_hook" in pth.read_text()
    # The hook must not import lm-eval (or anything heavy) at start-up.
    probe = "import sys; print(sorted(m for m in sys.modules if m.startswith(('lm_eval', 'torch', 'transformers'))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_user_include_path_keeps_precedence() -> None:
    assert registration.with_our_path(None) == [registration.TASKS_DIR]
    assert registration.with_our_path("/x") == [registration.TASKS_DIR, "/x"]  # later paths win in lm-eval
    assert registration.with_our_path(["/x", registration.TASKS_DIR]) == ["/x", registration.TASKS_DIR]


# --------------------------------------------------------------------------------------------- configs


def test_generated_yaml_is_up_to_date() -> None:
    sys.path.insert(0, str(TASKS_DIR))
    try:
        from _generate import render
    finally:
        sys.path.remove(str(TASKS_DIR))
    files = render()
    for relative, content in files.items():
        assert (TASKS_DIR / relative).read_text(encoding="utf-8") == content, f"stale {relative}: run _generate.py"
    for folder in ("longbench", "longbench_e"):
        on_disk = {f"{folder}/{p.name}" for p in (TASKS_DIR / folder).glob("*.yaml")}
        assert on_disk == {path for path in files if path.startswith(folder + "/")}


def test_decoding_settings_follow_the_official_config(shared_data: Path) -> None:
    max_gen = json.loads((shared_data / "longbench" / "dataset2maxlen.json").read_text())
    for folder, names in (("longbench", DATASETS), ("longbench_e", E_NAMES)):
        for name in names:
            config = yaml.safe_load(
                (TASKS_DIR / folder / f"{name}.yaml").read_text().replace("!function", "")
            )
            kwargs = config["generation_kwargs"]
            assert kwargs["max_gen_toks"] == max_gen[name] == config["dataset_kwargs"]["longbench_max_gen"]
            assert kwargs["do_sample"] is False and kwargs["temperature"] == 0.0
            assert kwargs["until"] == (["\n"] if name == "samsum" else [])


# --------------------------------------------------------------------------------------------- loader


def test_middle_truncation_keeps_both_halves(tokenizer) -> None:
    text = " ".join(f"word{i}" for i in range(400))
    ids = tokenizer(text)["input_ids"]
    max_length = 120
    assert len(ids) > max_length
    prompt, truncated, n_tokens = middle_truncate(text, tokenizer, max_length)
    assert truncated and n_tokens == len(ids)
    assert prompt == tokenizer.decode(ids[: max_length // 2]) + tokenizer.decode(ids[-max_length // 2 :])
    assert prompt.startswith("word0 word1") and prompt.endswith("word398 word399")
    assert middle_truncate(text, tokenizer, len(ids)) == (text, False, len(ids))


def test_docs_carry_official_prompt_and_chat_template_flag(shared_data: Path, tokenizer) -> None:
    official = json.loads((shared_data / "longbench" / "dataset2prompt.json").read_text())
    for dataset in ("hotpotqa", "trec", "samsum"):
        rows = _fixture_rows(dataset)
        docs = build_docs(rows, dataset, official[dataset], tokenizer=tokenizer, max_length=100_000)
        for row, doc in zip(rows, docs, strict=True):
            assert doc["prompt"] == official[dataset].format(**row)
            assert doc["prompt_truncated"] is False
            assert doc["use_chat_template"] is (dataset not in NO_CHAT_TEMPLATE_DATASETS)
            assert {key: doc[key] for key in row} == row


def test_loader_sources_and_default_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = str(_embedded_model())
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(FIXTURES / "hotpotqa_e.jsonl", "data/hotpotqa_e.jsonl")
    assert load_rows("hotpotqa_e", archive) == load_rows("hotpotqa_e", tmp_path) == _fixture_rows("hotpotqa_e")

    monkeypatch.setenv("LR_LONGBENCH_PROMPTS", str(FIXTURE_PROMPTS))
    monkeypatch.setenv("LR_LONGBENCH_DATA", str(tmp_path / "nowhere"))
    # --metadata wins over the environment.
    dataset = load_longbench(longbench_dataset="hotpotqa", longbench_max_gen=32, longbench_e=True,
                             pretrained=model, longbench_data=str(archive), version=1.0)["test"]
    assert len(dataset) == 3 and all(dataset["longbench_e"]) and not any(dataset["prompt_truncated"])
    assert default_max_length(model, 32) == 8192 - 32
    with pytest.raises(ValueError, match="tokenizer"):
        load_longbench(longbench_dataset="hotpotqa", longbench_max_gen=32)
    with pytest.raises(ValueError, match="LongBench-E"):
        load_longbench(longbench_dataset="musique", longbench_max_gen=32, longbench_e=True, pretrained=model)


def test_loader_records_the_effective_max_length_in_the_task_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """The prompt budget the loader truncated to lands in ``configs.<task>.metadata`` (lm-eval dumps it)."""
    from lm_eval.api.task import ConfigurableTask, TaskConfig

    model = str(_embedded_model())
    monkeypatch.setenv("LR_LONGBENCH_PROMPTS", str(FIXTURE_PROMPTS))
    monkeypatch.setenv("LR_LONGBENCH_DATA", str(FIXTURES))
    task = object.__new__(ConfigurableTask)  # as lm-eval's ConfigurableTask.download calls the loader
    task._config = TaskConfig(task="longreward_longbench_e_hotpotqa", metadata={"version": 1.0})

    def download(self: ConfigurableTask, **metadata: object) -> object:
        return load_longbench(longbench_dataset="hotpotqa", longbench_max_gen=32, longbench_e=True,
                              pretrained=model, **metadata)

    download(task)
    assert task.config.metadata == {"version": 1.0, "effective_max_length": 8192 - 32}  # the model's window
    download(task, max_length=300)
    assert task.config.metadata["effective_max_length"] == 300


def test_process_results_metrics() -> None:
    doc = {"longbench_dataset": "hotpotqa", "answers": ["Orchard Street"], "all_classes": None, "language": "en",
           "length": 5120, "longbench_e": True}
    metrics = process_results(doc, ["It is on Orchard Street."])
    assert metrics["score"] == pytest.approx(100 * 2 * (2 / 5) / (2 / 5 + 1))  # 2 of 5 tokens, both gold tokens
    assert metrics["sub_em"] == 100.0 and metrics["token_f1"] == metrics["score"]
    assert metrics["score_4-8k"] == metrics["score"] and "score_0-4k" not in metrics
    trec = {"longbench_dataset": "trec", "answers": ["Date"], "all_classes": ["Date", "Reason"], "longbench_e": False}
    assert process_results(trec, ["\nDate\nReason"]) == {"score": 100.0}  # first non-empty line only


def test_chat_apis_keep_their_messages(tokenizer) -> None:
    """Raw-completion docs drop a text chat template; a chat API (messages, no text form) cannot drop it."""
    from lm_eval.models.api_models import JsonChatStr

    assert renders_text(lambda messages: tokenizer.apply_chat_template(messages, tokenize=False))
    assert not renders_text(lambda messages: JsonChatStr(json.dumps(messages)))


# --------------------------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_lm_eval_cli_end_to_end(tmp_path: Path, tokenizer) -> None:
    """Plain ``lm_eval`` (no --include_path) runs our tasks and a group with the hf backend and a chat template."""
    model = _embedded_model()
    env = {**os.environ, **SUBPROCESS_ENV}
    env.pop(registration.OPT_OUT_ENV, None)
    tasks = "longreward_longbench_few_shot,longreward_longbench_hotpotqa,longreward_longbench_e_hotpotqa"
    command = [
        sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
        "--device", "cpu",
        "--tasks", tasks, "--limit", "2", "--apply_chat_template", "--metadata", json.dumps({"max_length": 200}),
        "--gen_kwargs", "max_gen_toks=12", "--output_path", str(tmp_path), "--log_samples",
    ]  # fmt: skip
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]

    (results_file,) = tmp_path.rglob("results_*.json")
    results = json.loads(results_file.read_text())
    scores = results["results"]
    for name in ("trec", "triviaqa", "samsum", "lsht", "hotpotqa", "e_hotpotqa"):
        assert 0 <= scores[f"longreward_longbench_{name}"]["score,none"] <= 100
    for name in ("triviaqa", "hotpotqa", "e_hotpotqa"):
        assert {"sub_em,none", "token_f1,none"} <= set(scores[f"longreward_longbench_{name}"])
    assert {"score_0-4k,none", "score_4-8k,none"} <= set(scores["longreward_longbench_e_hotpotqa"])
    assert "score,none" in results["groups"]["longreward_longbench_few_shot"]

    prompts = json.loads(FIXTURE_PROMPTS.read_text())

    def samples(task: str) -> list[dict]:
        (path,) = tmp_path.rglob(f"samples_{task}_*.jsonl")
        return [json.loads(line) for line in path.read_text().splitlines()]

    for dataset, chat in (("trec", False), ("samsum", False), ("hotpotqa", True)):
        logged = samples(f"longreward_longbench_{dataset}")
        assert len(logged) == 2
        for sample in logged:
            doc, context = sample["doc"], sample["arguments"]["gen_args_0"]["arg_0"]
            full = prompts[dataset].format(**{k: doc[k] for k in ("context", "input")})
            ids = tokenizer(full)["input_ids"]
            assert doc["prompt_truncated"] is True and doc["prompt_tokens"] == len(ids) > 200
            assert doc["prompt"] == tokenizer.decode(ids[:100]) + tokenizer.decode(ids[-100:])
            if chat:  # the run's chat template wraps the truncated prompt
                assert context.startswith("<|im_start|>") and doc["prompt"] in context
            else:  # raw completion prompt, as in LongBench's pred.py
                assert context == doc["prompt"]
