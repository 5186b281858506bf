"""What every stage script shares: logging, signals, all-or-nothing outputs, one-line errors."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable

from mnist_vae.atomic import all_or_nothing
from mnist_vae.errors import UserError


def _interrupt(signum, frame):
    # Unwind, so every `atomic_path` removes its temporary file. One signal is enough: a second
    # (Ctrl-C and DVC's death both send one) must not cut the clean-up short.
    for held in (signal.SIGINT, signal.SIGTERM):
        signal.signal(held, signal.SIG_IGN)
    raise KeyboardInterrupt


def _stop_with_dvc() -> None:
    """Under DVC on Linux, ask the kernel for SIGTERM when our parent dies, so a killed `dvc
    repro` does not leave its stage running unobserved. The parent is DVC itself where DVC's
    `$SHELL` execs a lone command (bash does); dash, Debian's /bin/sh, forks instead, and then
    the stage outlives DVC (docs/failures.md)."""
    if "DVC_STAGE" in os.environ and sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def run_stage(name: str, main: Callable[[], None]) -> None:
    """Run a stage's `main` so that it changes all of its outputs or none of them.

    Its outputs are written to temporary files and renamed into place only once `main` has
    returned; a user error, a bug, Ctrl-C or SIGTERM leaves every earlier output as it was.
    """
    logging.basicConfig(level=logging.INFO, format=f"[{name}] %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not a background job
        signal.signal(signal.SIGINT, _interrupt)
    _stop_with_dvc()
    try:
        with all_or_nothing():
            main()
    except UserError as error:  # anything else is a bug, and keeps its traceback
        print(f"[{name}] error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"[{name}] interrupted; no output was changed", file=sys.stderr)
        sys.exit(130)
