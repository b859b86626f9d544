"""The core reader and writer (lr_eval/jsonl.py): line errors, BOM/CRLF, duplicate ids, output checks, umask,
the resumable output (content keys, malformed lines, crash-cut lines, input order) and the bounded window."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from lr_eval.errors import UserError
from lr_eval.jsonl import (
    InputError,
    JsonlIndex,
    OutputPathError,
    ResumableJsonl,
    check_output_path,
    content_key,
    iter_unique,
    read_json,
    read_jsonl,
    run_window,
    write_jsonl_atomic,
)


def test_reader_keeps_good_lines_and_names_bad_ones(tmp_path: Path) -> None:
    p = tmp_path / "in.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"id": 1}\r\n{"id": "\xe9"}\r\n\r\n[1]\n{"id": 3\n{"id": 4}')
    got = list(read_jsonl(p))
    assert [n for n, _ in got] == [1, 2, 4, 5, 6]
    assert got[0][1] == {"id": 1} and got[4][1] == {"id": 4}
    errors = {n: str(e) for n, e in got if isinstance(e, InputError)}
    assert "line 2: not UTF-8 (byte 0xe9" in errors[2] and "expected a JSON object" in errors[4]
    assert "line 5: not valid JSON" in errors[5] and issubclass(InputError, UserError)
    for bad, says in ((tmp_path / "nope.jsonl", "no such file"), (tmp_path, "is a directory")):
        with pytest.raises(InputError, match=says):
            list(read_jsonl(bad))
    (tmp_path / "empty.jsonl").write_text("\n \n")
    with pytest.raises(InputError, match="empty.jsonl: empty file"):
        list(read_jsonl(tmp_path / "empty.jsonl"))
    assert list(read_jsonl(tmp_path / "empty.jsonl", allow_empty=True)) == []


def test_duplicate_ids_are_bad_lines_and_json_errors_name_the_line(tmp_path: Path) -> None:
    p = tmp_path / "in.jsonl"
    p.write_text('{"id": "a"}\n{"id": "a"}\n{"id": "b"}\n')
    out = list(iter_unique(p, lambda rec, n: (rec["id"], rec), lambda rec: rec.get("id")))
    assert [x[1] for x in out] == [{"id": "a"}, None, {"id": "b"}]
    assert "line 2, field 'id': duplicate id 'a'" in out[1][2]["error"]
    with pytest.raises(InputError, match="line 2, field 'id'"):
        JsonlIndex(p, lambda rec, path, n: rec["id"])
    j = tmp_path / "doc.json"
    j.write_bytes(b'\xef\xbb\xbf[\n{"a": 1},\n{"a": \xff}\n]')
    with pytest.raises(InputError, match="doc.json line 3: not UTF-8"):
        read_json(j)
    j.write_text('[\n{"a": 1},\n{"a": }\n]')
    with pytest.raises(InputError, match="doc.json line 3: not valid JSON"):
        read_json(j)


def test_output_checks_and_umask(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text("{}\n")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputPathError, match="also an input"):
        check_output_path(tmp_path / "." / "in.jsonl", [inp])
    with pytest.raises(OutputPathError, match="afile"):
        check_output_path(tmp_path / "afile" / "out.jsonl")
    with pytest.raises(OutputPathError, match="is a directory"):
        check_output_path(tmp_path)
    old = os.umask(0o022)
    try:
        write_jsonl_atomic(tmp_path / "sub" / "out.jsonl", [{"a": 1}])
        ResumableJsonl(tmp_path / "r.jsonl").close()
    finally:
        os.umask(old)
    for name in ("sub/out.jsonl", "r.jsonl"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644  # not mkstemp's 0600


def test_resumable_output_keys_crashes_and_order(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    k1, k2 = content_key({"id": "a", "x": 1}, {"opt": 1}), content_key({"id": "b"}, {"opt": 1})
    assert k1 != content_key({"id": "a", "x": 2}, {"opt": 1}) != content_key({"id": "a", "x": 1}, {"opt": 2})
    out.write_text(json.dumps({"id": "a", "input_key": k1, "v": 1}) + "\nnot json\n"
                   + json.dumps({"id": "b", "input_key": k2, "error": "failed"}) + '\n{"id": "b", "inpu')
    store = ResumableJsonl(out)
    assert k1 in store and k2 not in store  # the error record and the cut line are not reused
    store.append({"id": "b", "input_key": k2, "v": 2})
    assert store.get(k2) == {"id": "b", "input_key": k2, "v": 2}
    store.finish([k2, {"id": "bad", "line": 3, "error": "x"}, k1])
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["b", "bad", "a"]


def test_window_pulls_items_lazily_and_bounds_what_runs() -> None:
    pulled, running, peak = [], [0], [0]

    def items():
        for i in range(50):
            pulled.append(i)
            yield i

    async def work(i: int, x: int) -> int:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await asyncio.sleep(0.001 * (x % 3))
        running[0] -= 1
        return x * 2

    done: list[tuple[int, int]] = []

    def on_done(i: int, x: int, r: int) -> None:
        assert len(pulled) <= len(done) + 1 + 4  # never more than the window ahead of what finished
        done.append((x, r))

    asyncio.run(run_window(items(), work, 4, on_done))
    assert peak[0] <= 4 and sorted(done) == [(i, 2 * i) for i in range(50)]
