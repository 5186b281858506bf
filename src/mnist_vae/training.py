"""Training and evaluation loops over data held in memory on the training device.

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

from mnist_vae.loops import EVAL_BATCH_SIZE, make_optimizer, shuffled_batches
from mnist_vae.model import VAE, loss_terms

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


def binarize_once(x: torch.Tensor, seed: int) -> torch.Tensor:
    """A fixed Bernoulli draw of grey levels: the stochastically binarized test set, the same
    for every stage and run with this seed (drawn on the CPU, so on every device too)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x.cpu(), generator=generator).to(x.device)


# One fixed binarized test set for every stage and run, as in the likelihood literature.
TEST_BINARIZATION_SEED = 0


def likelihood_targets(x: torch.Tensor, binarize: str) -> torch.Tensor:
    """The test images a likelihood is measured on under `data.binarize`."""
    return x if binarize == "none" else binarize_once(x, TEST_BINARIZATION_SEED)


def train_epoch(
    model: VAE,
    optimizer: torch.optim.Optimizer,
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
    for batch in x.split(batch_size):
        logits, mu, logvar = model(batch)
        recon, kl = loss_terms(logits, batch, mu, logvar, model.likelihood)
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
    optimizer = make_optimizer(model.parameters(), lr)
    rows = []
    for epoch in range(1, epochs + 1):
        _sync(train_x.device)
        started = time.perf_counter()
        train = train_epoch(model, optimizer, train_x, batch_size, generator, binarizer)
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
