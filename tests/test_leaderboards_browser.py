"""The HTML leaderboard in a real headless Chromium (Debian's /usr/bin/chromium): rendered, sortable, offline.

Driven over the Chrome DevTools protocol with aiohttp's websocket client (already
a dependency), so no selenium/playwright and no browser download. Skipped when
chromium is not installed (`apt-get install -y chromium`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lr_eval.leaderboards.cli import main as lb_main

FIXTURES = Path(__file__).parent / "fixtures" / "lm_eval_results"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


class CDP:
    """Just enough of the DevTools protocol: send a command, wait for its answer, keep events."""

    def __init__(self, ws) -> None:  # type: ignore[no-untyped-def]
        self.ws, self.next_id, self.events = ws, 0, []

    async def send(self, method: str, **params: object) -> dict:
        self.next_id += 1
        my_id = self.next_id
        await self.ws.send_str(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads((await asyncio.wait_for(self.ws.receive(), 30)).data)
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    async def js(self, expr: str) -> object:
        r = await self.send("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"JS error in {expr!r}: {r['exceptionDetails']}")
        return r["result"].get("value")


def _launch(tmp: Path) -> tuple[subprocess.Popen, int]:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp / 'profile'}", "--remote-debugging-port=0", "about:blank"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if m:
            return proc, int(m[1])
    proc.kill()
    pytest.fail("chromium did not start its DevTools endpoint within 60 s")


async def _drive(port: int, url: str) -> dict:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for _ in range(50):
            async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                pages = [t for t in await r.json() if t.get("type") == "page"]
            if pages:
                break
            await asyncio.sleep(0.1)
        async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            cdp = CDP(ws)
            await cdp.send("Runtime.enable")
            await cdp.send("Network.enable")
            await cdp.send("Page.navigate", url=url)
            for _ in range(200):
                if await cdp.js("document.readyState === 'complete' && document.body && "
                                "document.body.getAttribute('data-ready') === '1'"):
                    break
                await asyncio.sleep(0.05)
            out: dict = {"ready": await cdp.js("document.body.getAttribute('data-ready')")}
            out["tables"] = await cdp.js("Array.from(document.querySelectorAll('table.lb')).map(t => t.id)")
            out["main_rows"] = await cdp.js("document.querySelectorAll('#tbl-main tbody tr').length")
            out["main_heads"] = await cdp.js(
                "Array.from(document.querySelectorAll('#tbl-main thead th')).map(th => th.textContent.trim())")
            col = out["main_heads"].index("LB-Chat")
            read = (f"Array.from(document.querySelectorAll('#tbl-main tbody tr')).map(r => "
                    f"r.cells[{col}].getAttribute('data-sort'))")
            out["before"] = await cdp.js(read)
            # A real mouse click on the header button (not a scripted .click()).
            box = await cdp.js(f"(() => {{ const b = document.querySelectorAll('#tbl-main thead th')[{col}]"
                               f".querySelector('button'); b.scrollIntoView(); const r = b.getBoundingClientRect();"
                               f" return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
            for kind in ("mousePressed", "mouseReleased"):
                await cdp.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left",
                               clickCount=1)
            out["after_click"] = await cdp.js(read)
            out["aria_after_click"] = await cdp.js(
                f"document.querySelectorAll('#tbl-main thead th')[{col}].getAttribute('aria-sort')")
            await cdp.js(f"document.querySelectorAll('#tbl-main thead th')[{col}].querySelector('button').click()")
            out["after_second"] = await cdp.js(read)
            await cdp.js("document.querySelectorAll('#tbl-main thead th')[0].querySelector('button').click()")
            out["labels_sorted"] = await cdp.js(
                "(() => { const l = Array.from(document.querySelectorAll('#tbl-main tbody tr'))"
                ".map(r => r.getAttribute('data-label'));"
                " return l.every((x, i) => i === 0 || l[i - 1].localeCompare(x) <= 0); })()")
            out["details_open"] = await cdp.js(
                "(() => { const d = document.querySelector('#tbl-main tr.measured details');"
                " d.querySelector('summary').click(); return d.open && d.textContent.includes('model_args'); })()")
            out["svg_count"] = await cdp.js("document.querySelectorAll('.plots svg').length")
            out["exceptions"] = [e for e in cdp.events if e.get("method") == "Runtime.exceptionThrown"]
            out["requests"] = [e["params"]["request"]["url"] for e in cdp.events
                               if e.get("method") == "Network.requestWillBeSent"]
            return out


def test_html_renders_and_sorts_in_headless_chromium(tmp_path: Path) -> None:
    out_dir = tmp_path / "lb"
    assert lb_main(["build", str(FIXTURES / "chat"), str(FIXTURES / "plain"), "-o", str(out_dir),
                    "--iters", "200"]) == 0
    page = out_dir / "leaderboard.html"
    proc, port = _launch(tmp_path)
    try:
        res = asyncio.run(_drive(port, page.resolve().as_uri()))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert res["ready"] == "1" and not res["exceptions"], res["exceptions"]
    assert "tbl-main" in res["tables"] and "tbl-longbench" in res["tables"]
    assert res["main_rows"] == 2 + 10  # two measured runs + the paper's ten rows
    assert res["main_heads"][:7] == ["Model", "Source", "LB-Chat", "S-Doc QA", "M-Doc QA", "Summ", "Avg"]

    def nums(xs: list[str]) -> list[float]:
        return [float(x) for x in xs if x]

    after = res["after_click"]
    assert res["aria_after_click"] == "descending"
    assert nums(after) == sorted(nums(res["before"]), reverse=True)
    assert all(x for x in after)  # every row has an LB-Chat value here; empties would be last
    assert nums(res["after_second"]) == sorted(nums(res["before"]))
    assert res["labels_sorted"] is True
    assert res["details_open"] is True
    try:
        import matplotlib  # noqa: F401

        assert res["svg_count"] >= 1  # the plots are inlined
    except ImportError:
        pass
    # Offline: the page itself is the only thing loaded.
    assert all(u.startswith(("file:", "data:", "about:")) for u in res["requests"]), res["requests"]
