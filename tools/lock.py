"""The universal lock: requirements.txt from requirements.in, for every platform we support.

    python tools/lock.py compile   # rewrite requirements.txt (uv's universal resolver)
    python tools/lock.py check     # prove it resolves, with wheels, on each platform and Python below

Both need `uv` on PATH (`make lock` and `make lock-check` install it in a throwaway venv);
pip still does the installing (`make`). `check` resolves the lock itself for each target with
uv's own target options (`--python-platform`, `--python-version`), accepting only wheels for
every package that ships them, so a pin without a wheel for a target fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.txt"
PLATFORMS = {
    "Linux x86_64": "x86_64-manylinux_2_28",
    "Linux aarch64": "aarch64-manylinux_2_28",
    "macOS 14+ arm64": "aarch64-apple-darwin",
    "Windows amd64": "x86_64-pc-windows-msvc",
}
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
# Pure-Python packages published as source only; every other pin must come as a wheel.
SOURCE_ONLY = {"antlr4-python3-runtime"}
HEADER = "# The universal lock: `make lock` regenerates it from requirements.in (tools/lock.py).\n"


def pinned_names() -> set[str]:
    names = set()
    for line in LOCK.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            names.add(line.split("==")[0].strip())
    return names


def compile_lock() -> None:
    subprocess.run(
        ["uv", "pip", "compile", "--universal", "--python-version", PYTHONS[0],
         "--no-header", "requirements.in", "-o", "requirements.txt"],
        cwd=REPO, check=True,
    )  # fmt: skip
    LOCK.write_text(HEADER + LOCK.read_text())


def check_lock() -> int:
    wheels_only = sorted(pinned_names() - SOURCE_ONLY)
    failures = 0
    print(f"{'platform':<17} " + " ".join(f"{python:<6}" for python in PYTHONS))
    for label, platform in PLATFORMS.items():
        cells = []
        for python in PYTHONS:
            command = ["uv", "pip", "compile", str(LOCK), "--quiet", "--no-header",
                       "--python-platform", platform, "--python-version", python,
                       "-o", os.devnull]  # fmt: skip
            for name in wheels_only:
                command += ["--only-binary", name]
            # torch's macOS wheels are built for macOS 14 and later.
            env = {**os.environ, "MACOSX_DEPLOYMENT_TARGET": "14.0"}
            result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
            cells.append("ok" if result.returncode == 0 else "FAILS")
            if result.returncode != 0:
                failures += 1
                print(f"{label}, Python {python}:\n{result.stderr.strip()}", file=sys.stderr)
        print(f"{label:<17} " + " ".join(f"{cell:<6}" for cell in cells))
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["compile"]:
        compile_lock()
    elif sys.argv[1:] == ["check"]:
        sys.exit(check_lock())
    else:
        sys.exit(__doc__)
