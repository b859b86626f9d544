"""Regenerate the stock lm-eval long-context fixtures with REAL lm-eval 0.4.13 runs (offline, CPU, about an hour).

The embedded SmolLM2-135M-Instruct (hf backend) is evaluated by lm-eval's own CLI and its own task configs:

* RULER: ``niah_single_1`` and ``niah_multikey_2`` (two of the three RULER tasks whose data lm-eval
  synthesises without a download; it needs ``wonderwords`` and ``nltk``), ``--gen_kwargs max_gen_toks=16``
  (the needles are 7-digit numbers; about 130 s per document at 4k context on the shared 2-core CPU), once
  with ``max_seq_lengths`` [4096] and ``--limit 2``, once with [8192] and ``--limit 1``, into the same output
  folder (``--limit`` keeps the first documents, which are all of the first length).
* BABILong (the ``babilong`` group, 20 tasks), LongBench v2 (lm-eval's ``longbench2`` group, 20 tasks) and
  InfiniteBench (the ``infinitebench`` group, 11 tasks), ``--limit 2``: their data is on the hub, so
  ``datasets.load_dataset`` is replaced, for this process only, by a function that returns a few small
  documents written here in each dataset's schema (the fields lm-eval's YAMLs and utils read). Everything
  else (prompts, generation, process_results, aggregation, groups, the results and samples files) is lm-eval's
  own code. BABILong is run at ``max_seq_lengths`` "0k" and "1k" into one folder.

Usage: python tests/data/stock_lm_eval/generate.py [OUT]   (default: this folder)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BABILONG_TASKS = [f"babilong_qa{i}" for i in range(1, 21)]


def _babilong_rows(config: str, split: str) -> list[dict]:
    n = {"0k": 0, "1k": 6}.get(config, 3)
    filler = " The grass is green and the sky is blue." * n
    return [{"input": f"Mary went to the kitchen.{filler} John moved to the garden.", "question": "Where is Mary?",
             "target": "kitchen"},
            {"input": f"Daniel travelled to the office.{filler} Sandra went to the hallway.",
             "question": "Where is Sandra?", "target": "hallway"},
            {"input": f"The apple is red.{filler} The box is in the bedroom.", "question": "Where is the box?",
             "target": "bedroom"}]


def _longbench2_rows(name: str) -> list[dict]:
    rows = []
    for i, (difficulty, length) in enumerate((("easy", "short"), ("hard", "medium"), ("hard", "long"))):
        rows.append({"_id": f"{name}-{i}", "domain": name, "sub_domain": name, "difficulty": difficulty,
                     "length": length, "question": f"Which colour is item {i}?",
                     "choices": ["red", "green", "blue", "yellow"], "answer": "ABC"[i],
                     "context": f"Item {i} is {['red', 'green', 'blue'][i]}. Other items have other colours."})
    return rows


_IB = {
    "passkey": ("The pass key is 71432. Remember it. The grass is green.", "What is the pass key?", ["71432"], []),
    "kv_retrieval": ('{"a1": "v-1", "b2": "v-2"}', 'Extract the value of key "a1".', ["v-1"], []),
    "number_string": ("The sequence of digits is 1234567. Remember it.", "What is the sequence?", ["1234567"], []),
    "code_run": ("def func_1(x):\n    return x + 1\n", "func_1(3)", ["4"], []),
    "code_debug": ("def f(): return 1\ndef g(): return 1/0\n", "", ["g"], ["f", "g", "h", "k"]),
    "math_find": ("[3, 9, 1, 7]", "The largest number of the list is", ["9"], []),
    "longdialogue_qa_en": ("ALICE: Hello.\n$$MASK$$: Hi Alice.", "", ["BOB"], []),
    "longbook_qa_en": ("Anna lived in Vienna with her cat.", "Where did Anna live?", ["Vienna"], []),
    "longbook_sum_en": ("Anna lived in Vienna with her cat. She wrote books.", "", ["Anna, a writer, lived in Vienna."],
                        []),
    "longbook_choice_en": ("Anna lived in Vienna.", "Where did Anna live?", ["Vienna"],
                           ["Paris", "Vienna", "Rome", "Oslo"]),
    "longbook_qa_chn": ("安娜住在维也纳。", "安娜住在哪里？", ["维也纳"], []),
}


def _infinitebench_rows(split: str) -> list[dict]:
    context, question, answer, options = _IB[split]
    return [{"id": i, "context": context + (" More text." * i), "input": question, "answer": answer,
             "options": options} for i in range(3)]


def fake_load_dataset(path: str, name: str | None = None, split: str | None = None, **kwargs):  # type: ignore[no-untyped-def]
    """Small documents in each dataset's schema, in place of the hub download (this process only)."""
    import datasets

    if path == "RMT-team/babilong-1k-samples":  # qa1-qa10 ask for one split, qa11-qa20 for the whole config
        if split:
            return datasets.Dataset.from_list(_babilong_rows(name or "0k", split))
        return datasets.DatasetDict({f"qa{i}": datasets.Dataset.from_list(_babilong_rows(name or "0k", f"qa{i}"))
                                     for i in range(1, 21)})
    if path == "recursal/longbench-v2":
        ds = datasets.Dataset.from_list(_longbench2_rows(name or "all"))
        return ds if split else datasets.DatasetDict({"train": ds})
    if path == "xinrongzhang2022/InfiniteBench":
        dd = datasets.DatasetDict({s: datasets.Dataset.from_list(_infinitebench_rows(s)) for s in _IB})
        return dd[split] if split else dd
    raise RuntimeError(f"generate.py: no local data for {path!r} (offline)")


def lm_eval_patched(argv: list[str]) -> None:
    """lm-eval's own CLI in this process, with datasets.load_dataset replaced by the local documents."""
    import datasets

    datasets.load_dataset = fake_load_dataset
    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm_eval", *argv]
    cli_evaluate()


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--patched":
        lm_eval_patched(sys.argv[2:])
        return
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    from lr_eval.embedded import embedded_model_path

    model = str(embedded_model_path())
    common = ["--model", "hf", "--model_args", f"pretrained={model},dtype=float32", "--batch_size", "1",
              "--seed", "0", "--log_samples"]
    env_cmd = [sys.executable, str(Path(__file__).resolve())]

    def run(folder: str, tasks: str, limit: int, metadata: dict | None = None, patched: bool = False,
            extra: tuple[str, ...] = ()) -> None:
        args = [*common, "--tasks", tasks, "--limit", str(limit), "--output_path", str(out / folder), *extra]
        if metadata:
            args += ["--metadata", json.dumps(metadata)]
        cmd = [*env_cmd, "--patched", *args] if patched else [sys.executable, "-m", "lm_eval", *args]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)

    ruler, short = "niah_single_1,niah_multikey_2", ("--gen_kwargs", "max_gen_toks=16")
    run("babilong", "babilong", 2, {"max_seq_lengths": "0k"}, patched=True)
    run("babilong", "babilong", 2, {"max_seq_lengths": "1k"}, patched=True)
    run("longbench2", "longbench2", 2, patched=True)
    run("infinitebench", "infinitebench", 2, patched=True)
    run("ruler", ruler, 2, {"max_seq_lengths": [4096]}, extra=short)
    run("ruler", ruler, 1, {"max_seq_lengths": [8192]}, extra=short)


if __name__ == "__main__":
    main()
