"""The system's Chromium under Playwright, offline: one set-up for the browser tests and benchmarks/explorer_speed.py (test tooling, so here, not in the package)."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, Route, sync_playwright

MISSING = (
    "needs Chromium, Google Chrome or Microsoft Edge (Debian: `apt-get install chromium`); "
    "Playwright drives the system's browser and never downloads one"
)

# Chromium's own switches. The background-networking, component-update and sync ones stop the
# requests that Chromium makes of itself at start; host names resolve to nothing, so no page
# reaches a server even past the offline context below. Playwright adds a fresh, temporary
# --user-data-dir of its own to every launch (it refuses one in `args`) and deletes it on close.
SWITCHES = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]  # fmt: skip

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def _installed_paths() -> list[Path]:
    """Where Chrome, Chromium and Edge install themselves off PATH (macOS, Windows)."""
    if sys.platform == "darwin":
        apps = ["Google Chrome.app/Contents/MacOS/Google Chrome",
                "Chromium.app/Contents/MacOS/Chromium"]  # fmt: skip
        return [root / app for root in (Path("/Applications"), Path.home() / "Applications")
                for app in apps]  # fmt: skip
    if sys.platform == "win32":
        roots = [
            os.environ.get(name) for name in ("PROGRAMFILES", "PROGRAMFILES(X86)", "LOCALAPPDATA")
        ]
        apps = ["Google/Chrome/Application/chrome.exe", "Chromium/Application/chrome.exe",
                "Microsoft/Edge/Application/msedge.exe"]  # fmt: skip
        return [Path(root) / app for root in roots if root for app in apps]
    return []


def find_chromium() -> str | None:
    """The system's Chromium (or Chrome, or Edge on Windows): on PATH first, then where each
    installs itself. None where there is none."""
    for name in NAMES:
        if found := shutil.which(name):
            return found
    return next((str(path) for path in _installed_paths() if path.is_file()), None)


@contextmanager
def offline_chromium(executable: str) -> Iterator[Browser]:
    """A headless browser of its own, started with SWITCHES and a fresh profile; closed after."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=SWITCHES)
        try:
            yield browser
        finally:
            browser.close()


# Every request but the page's own files and inline data: aborted, as a disconnected machine
# would. Matched in Playwright's driver, so the page's own requests never wait on Python.
NOT_LOCAL = re.compile(r"^(?!(file|data|blob):)")


def _abort(route: Route) -> None:
    route.abort("internetdisconnected")


def offline_page(
    browser: Browser, width: int = 1200, height: int = 900, touch: bool = False
) -> Page:
    """A page in a new context that is offline (Playwright's emulation) and aborts every
    request for anything but local files, at one CSS pixel per device pixel; with `touch`, a
    touchscreen besides the mouse."""
    context = browser.new_context(
        offline=True, viewport={"width": width, "height": height}, device_scale_factor=1,
        has_touch=touch,
    )  # fmt: skip
    context.route(NOT_LOCAL, _abort)
    return context.new_page()
