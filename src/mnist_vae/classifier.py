"""A small MLP digit classifier: the judge that turns "this looks like a 4" into a number."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mnist_vae.idx import IMAGE_PIXELS, DataError
from mnist_vae.loops import EVAL_BATCH_SIZE, FusedAdam, shuffled_batches


class Classifier(nn.Module):
    def __init__(self, hidden_dim: int = 512):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.layers = nn.Sequential(
            nn.Linear(IMAGE_PIXELS, hidden_dim),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(hidden_dim, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def hyperparameters(self) -> dict:
        return {"hidden_dim": self.hidden_dim}


def fit_classifier(
    model: Classifier,
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    on_epoch: Callable[[], object] = lambda: None,
) -> None:
    if len(x) == 0:
        raise DataError("the classifier got an empty training set")
    if len(x) != len(labels):
        raise DataError(f"the classifier got {len(x)} images but {len(labels)} labels")
    generator = torch.Generator().manual_seed(seed)
    optimizer = FusedAdam(model.parameters(), lr)
    model.train()
    for _ in range(epochs):
        for indices in shuffled_batches(len(x), batch_size, generator, x.device):
            loss = F.cross_entropy(model(x[indices]), labels[indices])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        on_epoch()
    model.eval()


@torch.no_grad()
def classify(model: Classifier, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted digit and the classifier's probability for it, per image."""
    model.eval()
    probabilities = torch.cat([model(chunk).softmax(dim=1) for chunk in x.split(EVAL_BATCH_SIZE)])
    confidence, digit = probabilities.max(dim=1)
    return digit, confidence
