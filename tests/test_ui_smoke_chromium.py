"""A real headless Chromium clicks through the Dagster UI as a user would: Catalog ->
tick the seven domain assets -> Materialize selected -> All partitions -> Launch backfill.
The backfill must finish as one successful run, with nothing paid twice.

Chromium is Debian's `chromium` package (`apt-get install -y chromium`), driven over the
DevTools protocol with `websockets`, which the venv already has (dagster-webserver ->
uvicorn[standard]); clicks are real mouse events at the element's position. The test skips
only when no Chromium executable is found (`WEBR_CHROMIUM`, or `chromium` /
`chromium-browser` on PATH). Screenshots of every step (and of the page at a failure) go
to `$WEBR_UI_SCREENSHOTS` (default: the test's tmp folder) for CI to keep as artifacts.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.dagster_ui import DOMAIN_ASSETS, webr_ui, write_crawl
from tests.support.loopback_openai import LoopbackOpenAI

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpora" / "webr-sample" / "web_en_1k.json"
HOSTS = ["smoke1.example", "smoke2.example"]
STEP_TIMEOUT_S = 60.0


def chromium_executable() -> str | None:
    for candidate in (os.environ.get("WEBR_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


class Chromium:
    """Headless Chromium in its own process group with a throwaway profile, and one page
    spoken to over the DevTools protocol."""

    def __init__(self, executable: str, width: int = 1440, height: int = 1000):
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="webr-chromium-")
        self.proc = subprocess.Popen(
            [executable, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             f"--window-size={width},{height}", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=True)
        self._stack = ExitStack()
        self.ws = None
        try:
            port_file = Path(self.profile) / "DevToolsActivePort"
            self._until(lambda: port_file.exists() and len(port_file.read_text().split()) >= 2,
                        30, "Chromium's DevTools port")
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                page = next(t for t in json.load(r) if t["type"] == "page")
            self.ws = self._stack.enter_context(connect(
                page["webSocketDebuggerUrl"], max_size=None, open_timeout=10, close_timeout=5))
            self._next_id = 0
            self.send("Page.enable")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _until(condition, timeout_s: float, what: str):
        deadline = time.monotonic() + timeout_s
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(0.25)

    def send(self, method: str, params: dict | None = None, timeout_s: float = 30.0) -> dict:
        self._next_id += 1
        message_id = self._next_id
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout_s
        while True:  # events arrive in between; skip them
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def js(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(json.dumps(result["exceptionDetails"])[:1000])
        return result["result"].get("value")

    def wait_js(self, expression: str, what: str, timeout_s: float = STEP_TIMEOUT_S):
        return self._until(lambda: self.js(expression), timeout_s, what)

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def click(self, element_js: str, what: str) -> None:
        """A real left click (mouse move, press, release) at the element's centre, once
        the element is on the page and visible."""
        x, y = self.wait_js(f"""(() => {{
            const e = ({element_js});
            if (!e) return null;
            e.scrollIntoView({{block: 'center'}});
            const r = e.getBoundingClientRect();
            return r.width && r.height ? [r.left + r.width / 2, r.top + r.height / 2] : null;
        }})()""", what)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y,
                                                   "button": "left", "clickCount": 1})

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self._stack.close()
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        try:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(timeout=15)
        shutil.rmtree(self.profile, ignore_errors=True)


def button(text: str) -> str:
    """JS for the first enabled button whose text starts with ``text``."""
    return ("Array.from(document.querySelectorAll('button')).find(b => !b.disabled && "
            f"b.innerText.trim().startsWith({json.dumps(text)}))")


def asset_checkbox(asset: str) -> str:
    # The input itself is hidden; its label draws the box.
    return (f"document.querySelector('[data-testid=\"checkbox-{asset}\"]')"
            "?.parentElement.querySelector('svg')")


@pytest.fixture
def screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("WEBR_UI_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_catalog_select_materialize_backfill_in_a_real_browser(tmp_path, screenshots):
    executable = chromium_executable()
    if executable is None:
        # Where Chromium was installed (CI sets this), not finding it is a failure.
        assert not os.environ.get("WEBR_REQUIRE_CHROMIUM"), "Chromium was installed but not found"
        pytest.skip("no Chromium (install Debian's `chromium`, or set WEBR_CHROMIUM)")
    assert CORPUS.is_file(), f"the shared corpora are expected at {CORPUS}"
    crawl = tmp_path / "crawl.jsonl"
    write_crawl(crawl, HOSTS, json.loads(CORPUS.read_text()), 0)

    with LoopbackOpenAI(latency_s=0.05) as server, \
            webr_ui(tmp_path, crawl, server.base_url) as running:
        dev = running.dev
        # The UI greets a first visit with a "Join the Dagster community" dialog that pops up
        # at an unpredictable moment; mark it seen the way its Skip button does.
        assert dev.query("mutation { setNuxSeen }")["setNuxSeen"] is True
        assert dev.query("{ shouldShowNux }")["shouldShowNux"] is False
        browser = Chromium(executable)
        step = "start"
        try:
            step = "overview"
            browser.goto(dev.url)
            browser.click("Array.from(document.querySelectorAll('a'))"
                          ".find(a => a.innerText.trim() === 'Catalog')", "the Catalog link")
            browser.wait_js(f"!!({asset_checkbox('raw_pages')})", "the Catalog's asset rows")
            step = "select"
            for asset in DOMAIN_ASSETS:
                browser.click(asset_checkbox(asset), f"{asset}'s checkbox")
            browser.wait_js(
                "document.querySelectorAll('input[data-testid^=\"checkbox-\"]:checked').length"
                f" === {len(DOMAIN_ASSETS)}", "the seven domain assets to be ticked")
            browser.screenshot(screenshots / "01-catalog-selected.png")

            step = "materialize"
            browser.click(button("Materialize selected"), "Materialize selected")
            browser.wait_js("!!document.querySelector('[role=dialog]')", "the launch dialog")
            # A click that lands before the dialog has loaded the partitions only focuses
            # the button: click again until the dialog counts them.
            for attempt in range(6):
                browser.click("Array.from(document.querySelectorAll('[role=dialog] button'))"
                              ".find(b => b.innerText.trim() === 'All')", "All partitions")
                try:
                    # (the dialog re-renders while it loads: it may be absent a moment)
                    browser.wait_js("document.querySelector('[role=dialog]')?.innerText"
                                    f"?.includes('{len(HOSTS)} partitions')",
                                    "all partitions selected", timeout_s=10)
                    break
                except TimeoutError:
                    if attempt == 5:
                        raise
            browser.screenshot(screenshots / "02-launch-dialog.png")

            step = "launch"
            browser.click(button("Launch backfill"), "Launch backfill")
            toast = browser.wait_js(
                "(document.body.innerText.match(/Created backfill\\s+(\\w+)/) || [])[1]",
                "the 'Created backfill' toast")
            browser.screenshot(screenshots / "03-backfill-created.png")

            step = "backfill"
            backfill, runs = dev.wait_backfill_finished(toast, timeout_s=300)
            browser.goto(f"{dev.url}/runs/b/{toast}")
            # Loaded once it lists the backfill's assets (a spinner shows before that).
            browser.wait_js("document.body.innerText.includes('filtered_pairs')",
                            "the backfill's page to load")
            browser.screenshot(screenshots / "04-backfill-page.png")
        except BaseException:
            try:
                browser.screenshot(screenshots / f"failed-at-{step}.png")
            except Exception:  # noqa: BLE001 - keep the original error
                pass
            raise
        finally:
            browser.close()

        assert backfill["status"] == "COMPLETED_SUCCESS", backfill
        assert sorted(backfill["partitionNames"]) == HOSTS
        assert [run["status"] for run in runs] == ["SUCCESS"], \
            [(run["id"], run["status"], dev.failure_report(run["id"])) for run in runs]
        done = set(dev.materializations(runs[0]["id"]))
        assert {(asset, host) for asset in DOMAIN_ASSETS for host in HOSTS} <= done
        assert server.replies_ok > 0 and server.paid_twice() == {}
        assert re.fullmatch(r"\w+", toast)
