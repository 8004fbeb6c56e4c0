"""A real headless Chromium driven over the DevTools protocol (its pipe: no extra packages).

``open_page(url, size)`` loads a page, waits until ``body[data-state]`` leaves "loading" (or a
deadline), and returns what a test needs: the state, a PNG screenshot, and every console error,
uncaught exception and error log entry the browser reported. Chromium is the distribution's
``chromium-headless-shell`` (tools/chromium.py installs it); WebGL runs on SwiftShader.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field

import pytest

CANDIDATES = ("chromium-headless-shell", "chromium", "chromium-browser")


def chromium() -> str:
    """The browser's path; the test is skipped saying why (a failure under CI=1) when there is none."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    missing = "no headless Chromium (install chromium-headless-shell: python3 tools/chromium.py)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests: {missing}")
    pytest.skip(missing)


@dataclass
class PageRun:
    state: str
    screenshot: bytes
    errors: list[str] = field(default_factory=list)
    messages: str = ""  # the page's #message text


class DevTools:
    """The protocol over --remote-debugging-pipe: JSON messages, NUL-terminated, on fds 3 (in) and 4 (out)."""

    def __init__(self, browser: str, size: tuple[int, int]) -> None:
        to_browser_r, self._write = os.pipe()
        self._read, from_browser_w = os.pipe()
        args = [browser, "--headless", "--no-sandbox", "--remote-debugging-pipe", "--enable-unsafe-swiftshader",
                "--use-angle=swiftshader", "--ignore-gpu-blocklist", "--hide-scrollbars", "--mute-audio",
                f"--window-size={size[0]},{size[1]}", "about:blank"]
        # the protocol's pipe must be fds 3 and 4 in the browser: placed there after the fork (Popen would
        # close fds it is not told to keep after preexec_fn, so nothing is closed; ours are CLOEXEC anyway)
        self.process = subprocess.Popen(
            args, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=lambda: _as_fds_3_and_4(to_browser_r, from_browser_w))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer, self._next, self.events = b"", 0, []

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params) -> dict:
        self._next += 1
        message: dict = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._receive(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(f"no answer to {method} within {timeout} s")

    def _receive(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._read], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("the browser went silent")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError("the browser closed its pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.process.kill()
            self.process.wait(timeout=10)
        finally:
            os.close(self._write)
            os.close(self._read)


def _as_fds_3_and_4(read_end: int, write_end: int) -> None:
    """In the forked child: the browser's ends of the pipes at fds 3 and 4, inherited by exec (copied
    away first, as either may already sit at 3 or 4)."""
    a, b = os.dup(read_end), os.dup(write_end)
    os.dup2(a, 3)
    os.dup2(b, 4)


def errors_in(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and error log entries among the protocol's events."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            found.append("exception: " + str(details.get("exception", {}).get("description", details.get("text"))))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
    return found


def open_page(url: str, size: tuple[int, int], timeout: float = 120, settle: float = 0.0) -> PageRun:
    tools = DevTools(chromium(), size)
    try:
        target = tools.call("Target.createTarget", url="about:blank")["targetId"]
        session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            tools.call(domain, session)
        tools.call("Emulation.setDeviceMetricsOverride", session, width=size[0], height=size[1],
                   deviceScaleFactor=1, mobile=False)
        tools.call("Page.navigate", session, url=url)
        deadline, state = time.monotonic() + timeout, "loading"
        while time.monotonic() < deadline:
            value = tools.call("Runtime.evaluate", session, expression="document.body && document.body.dataset.state")
            state = value.get("result", {}).get("value") or "loading"
            if state != "loading":
                break
            time.sleep(0.25)
        time.sleep(settle)
        shot = tools.call("Page.captureScreenshot", session, format="png", timeout=60)["data"]
        text = tools.call("Runtime.evaluate", session,
                          expression="(document.getElementById('message') || {}).textContent || ''")
        return PageRun(state, base64.b64decode(shot), errors_in(tools.events),
                       text.get("result", {}).get("value", ""))
    finally:
        tools.close()
