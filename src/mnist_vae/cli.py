"""What every stage script shares: logging, signals, and one-line errors instead of tracebacks."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable

import torch

from mnist_vae.checkpoints import ModelFileError
from mnist_vae.download import DownloadError
from mnist_vae.mnist import DataError
from mnist_vae.params import ParamsError, load_params
from mnist_vae.runtime import DeviceError, configure_threads, resolve_device
from mnist_vae.training import TrainingDiverged

# Problems a user can fix from the message alone; anything else is a bug and keeps its traceback.
USER_ERRORS = (ParamsError, DataError, DownloadError, DeviceError, ModelFileError, TrainingDiverged)


def stage_setup(sections: list[str]) -> tuple[dict, torch.device]:
    """A computing stage's params (its `sections` plus `device`), and the device they name,
    with the CPU threads set to every core this process may use."""
    params = load_params(["device", *sections])
    device = resolve_device(params["device"])
    configure_threads()
    return params, device


def _terminate(signum, frame):
    # Unwind like Ctrl-C, so every `atomic_path` removes its temporary file.
    raise KeyboardInterrupt


def run_stage(name: str, main: Callable[[], None]) -> None:
    logging.basicConfig(level=logging.INFO, format=f"[{name}] %(message)s")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        main()
    except USER_ERRORS as error:
        print(f"[{name}] error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(
            f"[{name}] interrupted; outputs already in place were left untouched", file=sys.stderr
        )
        sys.exit(130)
