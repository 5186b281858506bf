"""Headless Chromium driven over the DevTools protocol, with the standard library only.

`--remote-debugging-pipe` makes Chromium read protocol commands from its file descriptor 3 and
write replies and events to 4, each message JSON ending in a NUL byte: no websocket, no port.
The network is off through Chromium's own switches (every host name fails to resolve, every
proxied request goes to a closed port), so a page that fetched anything would show it.
Used by tests/test_explorer.py and benchmarks/explorer_speed.py; tests/test_plots_page.py
starts Chromium with the same switches (`HEADLESS`).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time

# Off the network: every host name resolves to nothing, every request goes to a closed port.
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *OFFLINE]
FLAGS = [*HEADLESS, "--remote-debugging-pipe"]


def find_chromium() -> str | None:
    """Chromium's executable; None where there is none, or no POSIX descriptors to pass it."""
    if os.name != "posix":
        return None
    return shutil.which("chromium") or shutil.which("chromium-browser")


class ProtocolError(RuntimeError):
    pass


class Chromium:
    """One browser with one page; `call` sends a command, `evaluate` runs JavaScript in it."""

    def __init__(self, executable: str, width: int = 1200, height: int = 900):
        import fcntl  # POSIX only, as find_chromium says

        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        commands, self._to_browser = os.pipe()
        self._from_browser, replies = os.pipe()
        # Chromium reads fd 3 and writes fd 4: move the two ends out of the way (to 10 and up)
        # first, so that putting one at 3 cannot overwrite the other.
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (commands, replies)]
        os.close(commands)
        os.close(replies)

        def at_3_and_4() -> None:  # in the child, before exec; dup2's copies stay open
            os.dup2(ends[0], 3)
            os.dup2(ends[1], 4)

        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
            preexec_fn=at_3_and_4, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for fd in ends:
            os.close(fd)
        self._ids = itertools.count(1)
        self._buffer = b""
        self.events: list[dict] = []
        self.session: str | None = None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip

    def _read_message(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ProtocolError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, **params) -> dict:
        message = {"id": next(self._ids), "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise ProtocolError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)  # fmt: skip
        if "exceptionDetails" in result:
            raise ProtocolError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, ready: str, timeout: float = 30) -> None:
        """Navigate to `url` and wait until the expression `ready` is true in the page."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"Boolean({ready})"):
            if time.monotonic() > deadline:
                raise ProtocolError(f"{url}: `{ready}` still false after {timeout} s")
            time.sleep(0.02)

    def requested_urls(self) -> list[str]:
        return [
            event["params"]["request"]["url"]
            for event in self.events
            if event.get("method") == "Network.requestWillBeSent"
        ]

    def mouse(self, kind: str, x: float, y: float, **extra) -> None:
        self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, **extra)

    def click(self, x: float, y: float) -> None:
        self.mouse("mouseMoved", x, y)
        for kind in ("mousePressed", "mouseReleased"):
            self.mouse(kind, x, y, button="left", clickCount=1)

    def touch(self, kind: str, points: list[tuple[float, float]]) -> None:
        self.call("Input.dispatchTouchEvent", type=kind,
                  touchPoints=[{"x": x, "y": y} for x, y in points])  # fmt: skip

    def key(self, key: str, code: int, shift: bool = False) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key,
                      windowsVirtualKeyCode=code, modifiers=8 if shift else 0)  # fmt: skip

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        try:
            self.session = None
            self.call("Browser.close")
        except (ProtocolError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
