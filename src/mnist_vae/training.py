"""The training loop, over data held in memory on the training device, and the negative ELBO
it minimises and reports per epoch.

MNIST is small enough to live on the device as one tensor, so each epoch is a seeded index
permutation plus slicing: no DataLoader, no per-image Python, no PIL. Losses are summed on the
device and read back once per epoch, so a GPU never waits for the host inside an epoch.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from mnist_vae.errors import UserError
from mnist_vae.loops import EVAL_BATCH_SIZE, FusedAdam, shuffled_batches
from mnist_vae.model import VAE, loss_terms
from mnist_vae.runtime import FairThreads, synchronize

LOSS_COLUMNS = [
    "epoch",
    "train_loss",
    "train_recon",
    "train_kl",
    "test_loss",
    "test_recon",
    "test_kl",
]
VALIDATION_COLUMNS = ["validation_loss", "validation_recon", "validation_kl"]


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
    kl_weight: float = 1.0,
) -> ElboTerms:
    """One epoch minimising recon + `kl_weight` · KL; with `binarizer` (a generator on x's
    device), each batch is drawn afresh as pixels ~ Bernoulli(grey level): dynamic binarization.
    The terms returned are the unweighted negative ELBO's."""
    model.train()
    recon_sum = torch.zeros((), device=x.device)
    kl_sum = torch.zeros((), device=x.device)
    for indices in shuffled_batches(len(x), batch_size, generator, x.device):
        batch = x[indices]
        if binarizer is not None:
            batch = torch.bernoulli(batch, generator=binarizer)
        logits, mu, logvar = model(batch)
        recon, kl = loss_terms(logits, batch, mu, logvar, model.likelihood)
        loss = (recon + kl_weight * kl).mean()  # x · 1.0 is x exactly: no warm-up, no change
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        recon_sum += recon.detach().sum()
        kl_sum += kl.detach().sum()
    return elbo_per_image(recon_sum, kl_sum, len(x))


def kl_weight(epoch: int, warmup_epochs: int) -> float:
    """The KL term's weight in epoch `epoch` (from 1): rising linearly from 0 in the first epoch
    to 1 from epoch warmup_epochs + 1 on (Bowman et al. 2016); 1 throughout without warm-up."""
    return min(1.0, (epoch - 1) / warmup_epochs) if warmup_epochs else 1.0


@dataclass
class Fit:
    """What `fit` did: one row per epoch run, and which epoch's model it kept."""

    rows: list[dict]
    kept_epoch: int


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
    validation_x: torch.Tensor | None = None,
    kl_warmup_epochs: int = 0,
    patience: int = 0,
    threads: FairThreads | None = None,
    on_epoch: Callable[[dict], None] = lambda row: None,
) -> Fit:
    """Train `model` in place; one row per epoch with LOSS_COLUMNS (and VALIDATION_COLUMNS with
    `validation_x`) and `seconds`.

    `binarize`: "none" trains on grey levels (the report), "dynamic" on a fresh Bernoulli draw
    of every batch; `test_x` and `validation_x` are used as given (`likelihood_targets` prepares
    them). With `patience`, training stops after that many epochs without a lower validation
    loss, counted once the KL warm-up is over (before, the objective is not yet the ELBO), and
    the model is left as it was after its best epoch. `threads` sets the CPU threads before
    each epoch (`runtime.FairThreads`); each row says how many it ran with.
    """
    generator = torch.Generator().manual_seed(seed)
    binarizer = None
    if binarize == "dynamic":
        binarizer = torch.Generator(device=train_x.device).manual_seed(seed + 1)
    optimizer = FusedAdam(model.parameters(), lr)
    rows: list[dict] = []
    best_epoch, best_loss, best_state = 0, math.inf, None
    for epoch in range(1, epochs + 1):
        if threads is not None:
            threads.adjust(rows[-1]["seconds"] if rows else None)
        weight = kl_weight(epoch, kl_warmup_epochs)
        synchronize(train_x.device)
        started = time.perf_counter()
        fitted = train_epoch(model, optimizer, train_x, batch_size, generator, binarizer, weight)
        synchronize(train_x.device)
        seconds = time.perf_counter() - started
        if not math.isfinite(fitted.loss):
            raise TrainingDiverged(
                f"epoch {epoch}: the training loss became {fitted.loss}; "
                f"try a smaller train.lr (now {lr})"
            )
        held_out = evaluate_elbo(model, test_x)
        row = {"epoch": epoch, **_columns("train", fitted), **_columns("test", held_out)}
        if validation_x is not None:
            validated = evaluate_elbo(model, validation_x)
            row.update(_columns("validation", validated))
            if patience and epoch > kl_warmup_epochs and validated.loss < best_loss:
                best_epoch, best_loss = epoch, validated.loss
                best_state = copy.deepcopy(model.state_dict())
        rows.append({**row, "seconds": seconds, "threads": torch.get_num_threads()})
        on_epoch(rows[-1])
        if patience and best_epoch and epoch - best_epoch == patience:
            break
    if best_state is None:
        return Fit(rows, kept_epoch=len(rows))
    model.load_state_dict(best_state)
    return Fit(rows, kept_epoch=best_epoch)


def threads_used(rows: list[dict]) -> int | str:
    """The CPU threads a run trained with: one count, or each count with its epochs, e.g.
    '2 (epochs 1-3), 1 (epochs 4-10)'."""
    spans = [list(group) for _, group in itertools.groupby(rows, key=lambda row: row["threads"])]
    if len(spans) == 1:
        return spans[0][0]["threads"]

    def epochs(span: list[dict]) -> str:
        first, last = span[0]["epoch"], span[-1]["epoch"]
        return f"epoch {first}" if first == last else f"epochs {first}-{last}"

    return ", ".join(f"{span[0]['threads']} ({epochs(span)})" for span in spans)


def _columns(split: str, terms: ElboTerms) -> dict:
    return {f"{split}_loss": terms.loss, f"{split}_recon": terms.recon, f"{split}_kl": terms.kl}
