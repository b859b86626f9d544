"""Judge trust, parts 2-5: what is cached is what was sent, the budget is hard, processes sharing a cache pay
once, and fatal errors end every command with one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lr_eval.accounting import UsageMeter, max_input_tokens
from lr_eval.backends import OpenAIBackend
from lr_eval.cache import ResponseCache
from lr_eval.config import JudgeConfig, build_client
from lr_eval.judge import JudgeClient
from lr_eval.testing.scripted_server import Reply, ScriptedServer, echo_responder
from lr_eval.types import BudgetExceeded, ChatRequest

ROOT = Path(__file__).resolve().parents[1]


def user(text: str, **kw) -> ChatRequest:
    return ChatRequest.of([{"role": "user", "content": text}], **kw)


def client_for(srv: ScriptedServer, cache: Path | None = None, **kw) -> JudgeClient:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("show_progress", False)
    return JudgeClient(OpenAIBackend("judge-model", srv.base_url, "k", timeout=5.0),
                       cache=ResponseCache(cache) if cache else None, **kw)


# -- 2. what is cached is the answer to what was sent ---------------------------------------------------------

def test_system_prompt_is_part_of_the_request_and_its_key(tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    reqs = [user(f"q{i}") for i in range(5)]
    with ScriptedServer() as srv:
        answers = {}
        for prompt in ("You are strict.", "You are lenient."):
            cfg = JudgeConfig.load(env={}, overrides={"model": "judge-model", "base_url": srv.base_url,
                                                      "cache": str(cache), "system_prompt": prompt})
            client = build_client(cfg, show_progress=False)
            res = client.run(reqs)
            assert not any(r.cached for r in res)          # the other prompt's answers are not served
            answers[prompt] = [r.content for r in res]
        assert answers["You are strict."] != answers["You are lenient."]
        systems = [b["messages"][0] for b in srv.bodies]
        assert len(srv.bodies) == 10 and all(m["role"] == "system" for m in systems)
        assert sorted({m["content"] for m in systems}) == ["You are lenient.", "You are strict."]
        # What was keyed is what was sent: the echo of the sent body is the answer cached for it.
        sent = next(b for b in srv.bodies if b["messages"][0]["content"] == "You are strict."
                    and b["messages"][1]["content"] == "q0")
        assert answers["You are strict."][0] == echo_responder(sent)


def test_every_backend_gets_max_tokens_from_the_client() -> None:
    with ScriptedServer() as srv:
        client = client_for(srv, default_max_tokens=77)
        client.run([user("a"), user("b", max_tokens=5)])
        assert sorted(b["max_tokens"] for b in srv.bodies) == [5, 77]


# -- 3. a hard budget is hard, and paid answers are kept ----------------------------------------------------

def test_budget_holds_when_the_server_bills_per_character() -> None:
    # Thai: 3 UTF-8 bytes per character, and this server bills one token per character (the old estimate
    # assumed four characters per token and overspent by 37%).
    def per_char(body: dict) -> Reply:
        chars = sum(len(m["content"]) for m in body["messages"])
        return Reply(content="ok", usage=(chars, 1))

    text = "ภาษาไทยเป็นภาษาที่มีระดับเสียงของคำแน่นอน" * 20
    with ScriptedServer(responder=per_char) as srv:
        meter = UsageMeter(model="judge-model", price=(10.0, 10.0), max_cost=0.1)
        client = client_for(srv, meter=meter, concurrency=8)
        with pytest.raises(BudgetExceeded):
            client.run([user(f"{i} {text}", max_tokens=16) for i in range(200)])
        assert meter.cost is not None and 0 < meter.cost <= 0.1
        assert meter.paid == srv.total_paid


def test_a_server_that_bills_more_than_possible_stops_the_run_at_once() -> None:
    def inflated(body: dict) -> Reply:
        n = max_input_tokens(body["messages"])
        return Reply(content="ok", usage=(50 * n, 1))

    with ScriptedServer(responder=inflated) as srv:
        meter = UsageMeter(model="judge-model", price=(1.0, 1.0), max_cost=100.0)
        client = client_for(srv, meter=meter, concurrency=1)
        with pytest.raises(BudgetExceeded, match="more than its bound"):
            client.run([user(f"q{i}", max_tokens=8) for i in range(50)])
        assert srv.total_paid == 1  # stopped after the first bill, not after spending 50x the budget


def test_budget_stop_keeps_every_paid_answer(tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    reqs = [user(f"question {i}") for i in range(100)]
    with ScriptedServer(latency=0.02) as srv:
        meter = UsageMeter(model="judge-model", max_requests=50)
        client = client_for(srv, cache, meter=meter, concurrency=16)
        with pytest.raises(BudgetExceeded) as stop:
            client.run(reqs)
        assert srv.total_paid == 50 and meter.paid == 50
        assert len(ResponseCache(cache)) == 50                    # none of the 50 paid answers is thrown away
        line = str(stop.value)
        assert "--max-requests 50" in line and "50 answers" in line and "not sent" in line and "\n" not in line
        again = client_for(srv, cache)
        res = again.run(reqs)
        assert all(r.ok for r in res) and srv.total_paid == 100  # the rerun pays only for the other 50
        assert sum(r.cached for r in res) == 50


def test_budget_stop_in_a_command_is_one_line(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "messages": [{"role": "user", "content": f"q{i}"}]}) + "\n"
                           for i in range(40)))
    with ScriptedServer() as srv:
        p = run_cli(["lr-eval", "batch", str(inp), "-o", str(tmp_path / "out.jsonl"), "--base-url", srv.base_url,
                     "--model", "m", "--cache", str(tmp_path / "c.sqlite"), "--max-requests", "10"])
        assert p.returncode == 3 and "Traceback" not in p.stderr
        assert [ln for ln in p.stderr.splitlines() if "error" in ln] == [
            ln for ln in p.stderr.splitlines() if ln.startswith("lr-eval batch: error: judge budget stop")]
        assert srv.total_paid == 10 and len(ResponseCache(tmp_path / "c.sqlite")) == 10


# -- 4. two processes sharing one cache pay once -------------------------------------------------------------

BATCH_SCRIPT = """
import sys
from lr_eval.backends import OpenAIBackend
from lr_eval.cache import ResponseCache
from lr_eval.judge import JudgeClient
from lr_eval.types import ChatRequest
url, cache, n, lease = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
client = JudgeClient(OpenAIBackend("judge-model", url, "k", timeout=60), cache=ResponseCache(cache),
                     concurrency=16, show_progress=False, claim_lease=lease, claim_poll=0.05)
res = client.run([ChatRequest.of([{"role": "user", "content": f"shared question {i}"}]) for i in range(n)])
assert all(r.ok for r in res)
print(client.meter.paid, client.meter.shared_waits, flush=True)
"""


def spawn(srv: ScriptedServer, cache: Path, n: int, lease: float = 30.0) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", BATCH_SCRIPT, srv.base_url, str(cache), str(n), str(lease)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


@pytest.mark.parametrize("stagger", [0.0, 1.0])
def test_two_processes_on_one_cache_pay_each_request_once(tmp_path: Path, stagger: float) -> None:
    cache = tmp_path / "c.sqlite"
    ResponseCache(cache).close()
    with ScriptedServer(latency=0.05) as srv:
        a = spawn(srv, cache, 300)
        time.sleep(stagger)
        b = spawn(srv, cache, 300)
        outs = [p.communicate(timeout=180) for p in (a, b)]
        assert a.returncode == 0 and b.returncode == 0, outs
        paid = [int(o[0].split()[0]) for o in outs]
        assert sum(paid) == 300 and srv.total_paid == 300
        assert max(srv.paid.values()) == 1


def test_a_killed_claimer_s_lease_expires_and_the_request_is_sent_once_more(tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    ResponseCache(cache).close()
    # The server holds every answer until release(): A is still waiting when it is killed, whatever the load.
    # A 3 s lease: a claim renewed on time even when the machine is busy (B takes over only from a dead owner).
    with ScriptedServer(hold_after=0) as srv:
        a = spawn(srv, cache, 1, lease=3.0)
        while not srv.bodies and a.poll() is None:
            time.sleep(0.05)
        assert srv.bodies
        b = spawn(srv, cache, 1, lease=3.0)
        time.sleep(1.5)
        assert len(srv.bodies) == 1          # B waits for A's live (renewed) claim instead of paying again
        a.send_signal(signal.SIGKILL)
        a.wait()
        srv.release()
        out, err = b.communicate(timeout=600)
        assert b.returncode == 0, err
        assert len(srv.bodies) == 2          # sent once more after the dead claimer's lease ran out
        assert out.split()[0] == "1"         # and B paid for it once
        assert len(ResponseCache(cache)) == 1


# -- 5. fatal judge errors are one clear line ----------------------------------------------------------------

MODULES = {"lr-eval": "lr_eval", "lr-train": "lr_eval.train", "lm_eval": "lm_eval"}


def run_cli(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """A command as ``python -m <module>``: this interpreter, whatever is on PATH."""
    return subprocess.run([sys.executable, "-m", MODULES[argv[0]], *argv[1:]], capture_output=True, text=True,
                          cwd=ROOT, timeout=900, env={**os.environ, "LR_JUDGE_API_KEY": "wrong", **env})


def write_inputs(tmp_path: Path) -> dict[str, Path]:
    ctx = " ".join(f"Sentence {i} is about the old stone bridge over the river." for i in range(60))
    files = {
        "batch": ("in_batch.jsonl", [{"id": i, "messages": [{"role": "user", "content": f"q{i}"}]} for i in range(5)]),
        "score": ("in_score.jsonl", [{"id": f"p{i}", "context": ctx, "question": f"What about bridge {i}?",
                                      "responses": ["The bridge is old.", "It is new."]} for i in range(3)]),
        "agreement": ("in_pairs.jsonl", [{"id": f"a{i}", "context": ctx, "question": f"Bridge {i}?",
                                          "response_a": "Old.", "response_b": "New.", "human": "a"}
                                         for i in range(3)]),
        "train_score": ("samples.jsonl", [{"id": f"s{i}", "context": ctx, "question": f"Bridge {i}?",
                                           "responses": ["Old.", "New."]} for i in range(2)]),
        "train_sample": ("prompts.jsonl", [{"id": f"t{i}", "context": ctx, "question": f"Bridge {i}?"}
                                           for i in range(2)]),
    }
    out = {}
    for name, (fname, rows) in files.items():
        path = tmp_path / fname
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        out[name] = path
    return out


def commands(files: dict[str, Path], tmp_path: Path, url: str) -> dict[str, list[str]]:
    judge = ["--base-url", url, "--model", "judge-model", "--cache", "none"]
    return {
        "batch": ["lr-eval", "batch", str(files["batch"]), "-o", str(tmp_path / "o1.jsonl"), *judge],
        "score": ["lr-eval", "score", str(files["score"]), "-o", str(tmp_path / "o2.jsonl"), "--embedder", "bm25",
                  *judge],
        "agreement": ["lr-eval", "agreement", str(files["agreement"]), "--embedder", "bm25", *judge],
        "lr-train score": ["lr-train", "score", str(files["train_score"]), "-o", str(tmp_path / "o3.jsonl"),
                           "--embedder", "bm25", *judge],
        "lr-train sample": ["lr-train", "sample", str(files["train_sample"]), "-o", str(tmp_path / "o4.jsonl"),
                            "--model", "policy", "--base-url", url, "-n", "2", "--cache", "none"],
    }


def assert_one_line(p: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr[-3000:]
    errors = [ln for ln in p.stderr.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1, p.stderr[-3000:]
    for n in needles:
        assert n in errors[0], errors[0]


def test_wrong_key_ends_every_command_with_one_line(tmp_path: Path) -> None:
    files = write_inputs(tmp_path)
    with ScriptedServer(api_key="right") as srv:
        for name, argv in commands(files, tmp_path, srv.base_url).items():
            p = run_cli(argv, OPENAI_API_KEY="wrong")
            assert_one_line(p, "HTTP 401", srv.base_url)
            assert p.returncode == 3, name


def test_unreachable_endpoints_and_bad_options_are_one_line(tmp_path: Path) -> None:
    files = write_inputs(tmp_path)
    refused = commands(files, tmp_path, "http://127.0.0.1:9/v1")
    for name in ("batch", "score"):
        assert_one_line(run_cli(refused[name]), "refused the connection", "127.0.0.1:9")
    dns = commands(files, tmp_path, "http://no-such-host.invalid/v1")
    assert_one_line(run_cli(dns["batch"]), "does not resolve", "no-such-host.invalid")
    for bad in (["--concurrency", "0"], ["--timeout", "0"], ["--max-cost", "-1"]):
        p = run_cli([*refused["batch"], *bad])
        assert_one_line(p, "must be")
        assert p.returncode == 2


def test_wrong_key_under_rejudge_is_one_line(tmp_path: Path) -> None:
    recs = [{"doc_id": i, "doc": {"input": f"Who is {i}?", "answers": ["Ann"], "length": 10, "_id": str(i)},
             "target": "Ann", "resps": [["Ann"]], "filtered_resps": ["Ann"]} for i in range(2)]
    samples = tmp_path / "samples_longreward_longbench_judged_narrativeqa_2025-01-01T00-00-00.000000.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with ScriptedServer(api_key="right") as srv:
        p = run_cli(["lr-eval", "rejudge", str(samples), "--base-url", srv.base_url, "--model", "j",
                     "--cache", "none", "-o", str(tmp_path / "rj")], OPENAI_API_KEY="wrong")
        assert_one_line(p, "HTTP 401", srv.base_url)
        assert p.returncode == 3


@pytest.mark.slow
def test_wrong_key_under_the_lm_eval_command_is_one_line(tmp_path: Path, embedded_model: str) -> None:
    model = embedded_model
    fix = ROOT / "tests" / "fixtures" / "judged"
    meta = json.dumps({"longbench_data": str(fix / "longbench"), "longbench_prompts": str(fix / "dataset2prompt.json")})
    with ScriptedServer(api_key="right") as srv:
        p = run_cli(["lm_eval", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32", "--device",
                     "cpu", "--tasks", "longreward_longbench_judged_narrativeqa", "--limit", "1", "--gen_kwargs",
                     "max_gen_toks=2", "--metadata", meta, "--output_path", str(tmp_path / "out")],
                    OPENAI_API_KEY="wrong", LR_JUDGE_BASE_URL=srv.base_url, LR_JUDGE_MODEL="j", LR_JUDGE_CACHE="none")
        assert p.returncode == 3 and "Traceback" not in p.stderr, p.stderr[-3000:]
        assert [ln for ln in p.stderr.splitlines() if ": error: " in ln] == [
            ln for ln in p.stderr.splitlines() if ln.startswith("longreward_longbench_judged_narrativeqa: error: ")
            and "HTTP 401" in ln]
        assert any(": error: " in ln for ln in p.stderr.splitlines())
