"""Model files: a state dict plus the constructor arguments, loadable with weights_only=True."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from mnist_vae.atomic import write_bytes
from mnist_vae.errors import UserError


class ModelFileError(UserError, ValueError):
    pass


M = TypeVar("M", bound=nn.Module)


def save_model(model: nn.Module, path: str | Path) -> None:
    checkpoint = {"hyperparameters": model.hyperparameters(), "state_dict": model.state_dict()}
    # Through a buffer: torch.save names the archive's inner folder after a file path, and the
    # temporary name differs each run, which would make identical models differ byte for byte.
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_bytes(path, buffer.getvalue())


def load_model(
    path: str | Path,
    model_class: type[M],
    expected: dict | None = None,
    device: torch.device | str = "cpu",
) -> M:
    """Load a file written by `save_model`; tensors and plain values only (weights_only=True).

    With `expected` (the model's section of params.yaml), a file trained with other
    hyperparameters is refused with the differences named, instead of a shape-mismatch traceback.
    """
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file; run `dvc repro` first") from None
    except pickle.UnpicklingError as error:  # it asks for more than tensors and plain values
        first_line = str(error).strip().splitlines()[0]
        raise ModelFileError(f"{path}: refused, not a plain weights file ({first_line})") from None
    if not isinstance(checkpoint, dict) or {"hyperparameters", "state_dict"} - checkpoint.keys():
        raise ModelFileError(f"{path}: not a model file written by this pipeline")
    stored = checkpoint["hyperparameters"]
    if expected is not None:
        differences = [
            f"{key}: file has {stored.get(key)!r}, params.yaml has {value!r}"
            for key, value in expected.items()
            if stored.get(key) != value
        ]
        if differences:
            raise ModelFileError(
                f"{path} was trained with other params ({'; '.join(differences)}); "
                "rerun `dvc repro` to retrain it"
            )
    try:
        model = model_class(**stored)
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, RuntimeError) as error:
        raise ModelFileError(f"{path}: does not hold a {model_class.__name__}: {error}") from None
    return model.to(device).eval()
