"""Headless Debian Chromium driven over the Chrome DevTools Protocol (CDP), with no selenium.

Chromium is started with a fresh profile and `--remote-debugging-port=0`; it writes the port it chose
to `DevToolsActivePort` in the profile, and we talk to its first page target over a websocket. Only a
handful of CDP methods are needed: navigate, evaluate JavaScript, type text, take a screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--window-size=1440,1000",
)


class BrowserError(RuntimeError):
    """Chromium did not start, a CDP call failed, or the page never reached the expected state."""


class Chromium:
    """One headless Chromium process with a throwaway profile, stopped by PID (its process group)."""

    def __init__(self, *, log_path: Path) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Chromium:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        argv = [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self.profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def stop(self) -> None:
        if self.process is not None:
            for signum in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.process.pid, signum)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(timeout=5)
                    break
                except subprocess.TimeoutExpired:
                    continue
            self.process = None
        shutil.rmtree(self.profile, ignore_errors=True)

    def _devtools_port(self, timeout: float = 30) -> int:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BrowserError(f"chromium exited with {self.process.returncode}; see {self.log_path}")
            if port_file.exists() and port_file.read_text().strip():
                return int(port_file.read_text().split()[0])
            time.sleep(0.1)
        raise BrowserError(f"chromium wrote no DevToolsActivePort within {timeout}s; see {self.log_path}")

    @contextlib.contextmanager
    def page(self) -> Iterator[Page]:
        """The browser's first tab, connected over its DevTools websocket for the `with` block."""
        port = self._devtools_port()
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page_target = next(t for t in targets if t["type"] == "page")
        with connect(page_target["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=10) as socket:
            yield Page(socket)


class Page:
    """A page target: synchronous CDP calls (events are read and dropped while waiting for replies)."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self._ids = itertools.count(1)
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"no reply to {method} within {timeout}s")
            message = json.loads(self.socket.recv(timeout=remaining))
            if message.get("id") != message_id:
                continue
            if "error" in message:
                raise BrowserError(f"{method} failed: {message['error']}")
            return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited), as JSON."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(
                f"JavaScript failed: {result['exceptionDetails'].get('text')}: {expression[:200]}"
            )
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = 30, what: str | None = None) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError as error:
                # A client-side redirect replaces the page's JavaScript context under us: retry.
                if "navigated or closed" not in str(error) and "context" not in str(error).lower():
                    raise
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout}s waiting for {what or expression}")
            time.sleep(0.25)

    def navigate(self, url: str, *, timeout: float = 30) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", timeout=timeout, what=f"{url} to load")

    def type_into(self, selector: str, text: str) -> None:
        """Focus the element and type like a user, so React's change handlers see the input."""
        self.wait_for(f"!!document.querySelector({json.dumps(selector)})", what=selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def press_enter(self) -> None:
        key = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
        self.call("Input.dispatchKeyEvent", type="keyDown", text="\r", **key)
        self.call("Input.dispatchKeyEvent", type="keyUp", **key)

    def press_key(self, key: str, key_code: int) -> None:
        """A non-text key (ArrowDown, Escape, ...) on the focused element."""
        event = {"key": key, "code": key, "windowsVirtualKeyCode": key_code}
        self.call("Input.dispatchKeyEvent", type="keyDown", **event)
        self.call("Input.dispatchKeyEvent", type="keyUp", **event)

    def click_text(self, text: str, *, selector: str = "button, a, [role=option], [role=tab]") -> None:
        """Click the first visible element matching `selector` whose text is exactly `text`."""
        script = f"""(() => {{
            const el = [...document.querySelectorAll({json.dumps(selector)})]
                .find(e => e.innerText && e.innerText.trim() === {json.dumps(text)} && e.offsetParent !== null);
            if (!el) return false;
            el.click();
            return true;
        }})()"""
        self.wait_for(script, what=f"a clickable {text!r}")

    def mouse_click_text(self, text: str, *, selector: str = "button", within: str = "document") -> None:
        """Click like a user (pointer events at the element's centre): some widgets ignore `element.click()`."""
        script = f"""(() => {{
            const el = [...{within}.querySelectorAll({json.dumps(selector)})]
                .find(e => e.innerText && e.innerText.trim() === {json.dumps(text)} && e.offsetParent !== null);
            if (!el) return null;
            el.scrollIntoView({{block: 'center'}});
            const r = el.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2];
        }})()"""
        x, y = self.wait_for(script, what=f"a clickable {text!r}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def body_text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
