"""Training and evaluation loops over data held in memory on the training device.

MNIST is small enough to live on the device as one tensor, so each epoch is a seeded index
permutation plus slicing: no DataLoader, no per-image Python, no PIL. Losses are summed on the
device and read back once per epoch, so a GPU never waits for the host inside an epoch.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from mnist_vae.atomic import write_bytes
from mnist_vae.model import VAE, loss_terms

EVAL_BATCH_SIZE = 2048
LOSS_COLUMNS = [
    "epoch",
    "train_loss",
    "train_recon",
    "train_kl",
    "test_loss",
    "test_recon",
    "test_kl",
]


class TrainingDiverged(RuntimeError):
    pass


class ModelFileError(ValueError):
    pass


@dataclass(frozen=True)
class ElboTerms:
    """Negative ELBO per image, in nats."""

    recon: float
    kl: float

    @property
    def loss(self) -> float:
        return self.recon + self.kl


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _per_image(recon_sum: torch.Tensor, kl_sum: torch.Tensor, count: int) -> ElboTerms:
    totals = torch.stack([recon_sum, kl_sum]).tolist()  # the one host sync
    return ElboTerms(recon=totals[0] / count, kl=totals[1] / count)


def train_epoch(
    model: VAE,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> ElboTerms:
    model.train()
    order = torch.randperm(len(x), generator=generator).to(x.device)
    recon_sum = torch.zeros((), device=x.device)
    kl_sum = torch.zeros((), device=x.device)
    for start in range(0, len(x), batch_size):
        batch = x[order[start : start + batch_size]]
        logits, mu, logvar = model(batch)
        recon, kl = loss_terms(logits, batch, mu, logvar)
        loss = (recon + kl).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        recon_sum += recon.detach().sum()
        kl_sum += kl.detach().sum()
    return _per_image(recon_sum, kl_sum, len(x))


@torch.no_grad()
def evaluate_elbo(model: VAE, x: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> ElboTerms:
    """One-sample estimate of the negative ELBO per image (z is sampled, as in training)."""
    model.eval()
    recon_sum = torch.zeros((), device=x.device)
    kl_sum = torch.zeros((), device=x.device)
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        logits, mu, logvar = model(batch)
        recon, kl = loss_terms(logits, batch, mu, logvar)
        recon_sum += recon.sum()
        kl_sum += kl.sum()
    return _per_image(recon_sum, kl_sum, len(x))


def fit(
    model: VAE,
    train_x: torch.Tensor,
    test_x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    on_epoch: Callable[[dict], None] = lambda row: None,
) -> list[dict]:
    """Train `model` in place; return one row per epoch with LOSS_COLUMNS and `seconds`."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rows = []
    for epoch in range(1, epochs + 1):
        _sync(train_x.device)
        started = time.perf_counter()
        train = train_epoch(model, optimizer, train_x, batch_size, generator)
        _sync(train_x.device)
        seconds = time.perf_counter() - started
        if not math.isfinite(train.loss):
            raise TrainingDiverged(
                f"epoch {epoch}: the training loss became {train.loss}; "
                f"try a smaller train.lr (now {lr}). No model was written."
            )
        test = evaluate_elbo(model, test_x)
        row = {
            "epoch": epoch,
            "train_loss": train.loss,
            "train_recon": train.recon,
            "train_kl": train.kl,
            "test_loss": test.loss,
            "test_recon": test.recon,
            "test_kl": test.kl,
            "seconds": seconds,
        }
        rows.append(row)
        on_epoch(row)
    return rows


def save_model(model: VAE, path: str | Path) -> None:
    checkpoint = {"hyperparameters": model.hyperparameters(), "state_dict": model.state_dict()}
    # Through a buffer: torch.save names the archive's inner folder after a file path, and the
    # temporary name differs each run, which would make identical models differ byte for byte.
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_bytes(path, buffer.getvalue())


def load_model(
    path: str | Path, expected: dict | None = None, device: torch.device | str = "cpu"
) -> VAE:
    """Load a model saved by `save_model` (tensors and plain values only: weights_only=True).

    With `expected` (the `model` section of params.yaml), a file trained with other
    hyperparameters is refused with the differences named, instead of a shape-mismatch traceback.
    """
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file; run `dvc repro train` first") from None
    if not isinstance(checkpoint, dict) or {"hyperparameters", "state_dict"} - checkpoint.keys():
        raise ModelFileError(f"{path}: not a model file written by the train stage")
    stored = checkpoint["hyperparameters"]
    if expected is not None:
        differences = [
            f"model.{key}: file has {stored.get(key)!r}, params.yaml has {value!r}"
            for key, value in expected.items()
            if stored.get(key) != value
        ]
        if differences:
            raise ModelFileError(
                f"{path} was trained with other model params ({'; '.join(differences)}); "
                "rerun `dvc repro` to retrain it"
            )
    model = VAE(**stored)
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()
