"""The training loop, over data held in memory on the training device, and the negative ELBO
it minimises and reports per epoch.

MNIST is small enough to live on the device as one tensor, so each epoch is a seeded index
permutation plus slicing: no DataLoader, no per-image Python, no PIL. Losses are summed on the
device and read back once per epoch, so a GPU never waits for the host inside an epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from mnist_vae.errors import UserError
from mnist_vae.loops import EVAL_BATCH_SIZE, FusedAdam, shuffled_batches
from mnist_vae.model import VAE, loss_terms
from mnist_vae.runtime import synchronize

LOSS_COLUMNS = [
    "epoch",
    "train_loss",
    "train_recon",
    "train_kl",
    "test_loss",
    "test_recon",
    "test_kl",
]


class TrainingDiverged(UserError, RuntimeError):
    pass


@dataclass(frozen=True)
class ElboTerms:
    """Negative ELBO per image, in nats."""

    recon: float
    kl: float

    @property
    def loss(self) -> float:
        return self.recon + self.kl


def elbo_per_image(recon_sum: torch.Tensor, kl_sum: torch.Tensor, count: int) -> ElboTerms:
    totals = torch.stack([recon_sum, kl_sum]).tolist()  # the one host sync
    return ElboTerms(recon=totals[0] / count, kl=totals[1] / count)


@torch.no_grad()
def evaluate_elbo(model: VAE, x: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> ElboTerms:
    """One-sample estimate of the negative ELBO per image (z is sampled, as in training)."""
    model.eval()
    recon_sum = torch.zeros((), device=x.device)
    kl_sum = torch.zeros((), device=x.device)
    for batch in x.split(batch_size):
        logits, mu, logvar = model(batch)
        recon, kl = loss_terms(logits, batch, mu, logvar, model.likelihood)
        recon_sum += recon.sum()
        kl_sum += kl.sum()
    return elbo_per_image(recon_sum, kl_sum, len(x))


def train_epoch(
    model: VAE,
    optimizer: FusedAdam,
    x: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    binarizer: torch.Generator | None = None,
) -> ElboTerms:
    """One epoch; with `binarizer` (a generator on x's device), each batch is drawn afresh as
    pixels ~ Bernoulli(grey level): dynamic binarization."""
    model.train()
    recon_sum = torch.zeros((), device=x.device)
    kl_sum = torch.zeros((), device=x.device)
    for indices in shuffled_batches(len(x), batch_size, generator, x.device):
        batch = x[indices]
        if binarizer is not None:
            batch = torch.bernoulli(batch, generator=binarizer)
        logits, mu, logvar = model(batch)
        recon, kl = loss_terms(logits, batch, mu, logvar, model.likelihood)
        loss = (recon + kl).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        recon_sum += recon.detach().sum()
        kl_sum += kl.detach().sum()
    return elbo_per_image(recon_sum, kl_sum, len(x))


def fit(
    model: VAE,
    train_x: torch.Tensor,
    test_x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    binarize: str = "none",
    on_epoch: Callable[[dict], None] = lambda row: None,
) -> list[dict]:
    """Train `model` in place; return one row per epoch with LOSS_COLUMNS and `seconds`.

    `binarize`: "none" trains on grey levels (the report), "dynamic" on a fresh Bernoulli draw
    of every batch; `test_x` is used as given (`likelihood_targets` prepares it).
    """
    generator = torch.Generator().manual_seed(seed)
    binarizer = None
    if binarize == "dynamic":
        binarizer = torch.Generator(device=train_x.device).manual_seed(seed + 1)
    optimizer = FusedAdam(model.parameters(), lr)
    rows = []
    for epoch in range(1, epochs + 1):
        synchronize(train_x.device)
        started = time.perf_counter()
        fitted = train_epoch(model, optimizer, train_x, batch_size, generator, binarizer)
        synchronize(train_x.device)
        seconds = time.perf_counter() - started
        if not math.isfinite(fitted.loss):
            raise TrainingDiverged(
                f"epoch {epoch}: the training loss became {fitted.loss}; "
                f"try a smaller train.lr (now {lr})"
            )
        held_out = evaluate_elbo(model, test_x)
        row = {
            "epoch": epoch,
            "train_loss": fitted.loss,
            "train_recon": fitted.recon,
            "train_kl": fitted.kl,
            "test_loss": held_out.loss,
            "test_recon": held_out.recon,
            "test_kl": held_out.kl,
            "seconds": seconds,
        }
        rows.append(row)
        on_epoch(row)
    return rows
