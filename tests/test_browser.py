"""tests/browser.py finds the system's browser by each of its names, then where it installs."""

import sys

import browser
import pytest

EXE = ".exe" if sys.platform == "win32" else ""


def _executable(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """An empty PATH and no install paths: the machine of someone without a browser."""
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(browser, "_installed_paths", list)
    return tmp_path


def test_no_browser_is_none(nowhere):
    assert browser.find_chromium() is None


@pytest.mark.parametrize("name", browser.NAMES)
def test_each_name_on_path_is_found(nowhere, name):
    found = _executable(nowhere / "bin" / f"{name}{EXE}")
    assert browser.find_chromium().lower() == found.lower()


def test_an_install_path_is_found_when_path_has_none(nowhere, monkeypatch):
    app = nowhere / "Applications/Google Chrome.app/Contents/MacOS/Google Chrome"
    monkeypatch.setattr(browser, "_installed_paths", lambda: [nowhere / "missing", app])
    assert browser.find_chromium() is None
    found = _executable(app)
    assert browser.find_chromium() == found


@pytest.mark.parametrize(
    ("platform", "variable", "app"),
    [
        ("darwin", "HOME", "Applications/Chromium.app/Contents/MacOS/Chromium"),
        ("win32", "LOCALAPPDATA", "Google/Chrome/Application/chrome.exe"),
        ("win32", "PROGRAMFILES(X86)", "Microsoft/Edge/Application/msedge.exe"),
    ],
)
def test_the_install_paths_of_macos_and_windows(tmp_path, monkeypatch, platform, variable, app):
    monkeypatch.setattr(browser.sys, "platform", platform)
    for name in ("HOME", "USERPROFILE", "PROGRAMFILES", "PROGRAMFILES(X86)", "LOCALAPPDATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tmp_path))
    if variable == "HOME":
        monkeypatch.setenv("USERPROFILE", str(tmp_path))  # what Path.home() reads on Windows
    assert tmp_path / app in browser._installed_paths()
