"""Imported first by every stage script, before anything outside the standard library.

1. This tree's `src/` goes first on the import path, so an experiment that DVC runs in a
   temporary copy (`dvc exp run --temp`, `--queue`) runs its own copy of the package, not the
   workspace's editable install. Done here rather than with `PYTHONPATH=src` in dvc.yaml, so
   the stage commands are plain `python stages/X.py` in any shell DVC uses (sh, bash, cmd).
2. DVC runs the `python` first on PATH. When that is not the project's interpreter (the venv is
   not activated), stop with one line that says so, before anything is read or written, instead
   of a ModuleNotFoundError traceback.
"""

import importlib.util
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

# The top-level modules of requirements.in that the stages import.
NEEDED = ("torch", "numpy", "pandas", "matplotlib", "yaml", "pydantic", "tqdm")

_missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
if _missing:
    activate = (
        r".venv\Scripts\Activate.ps1" if sys.platform == "win32" else "source .venv/bin/activate"
    )
    print(
        f"[{Path(sys.argv[0]).stem}] error: {sys.executable} (the `python` first on PATH) "
        f"cannot import {', '.join(_missing)}; DVC runs stages with that python, so activate "
        f"the project's venv first (`{activate}`, or `make repro`). "
        "No output was changed.",
        file=sys.stderr,
    )
    sys.exit(1)
