"""What the classifier reads: confusion counts, shares misread, the most frequent confusions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the counting is NumPy's: the study imports the pair names without torch
    import torch

# The pairs the report names ("9 comes back as 4, 5 as 8, 3 as 8") as (true, read as), then
# the same pairs the other way round: a model may confuse a pair one way only.
REPORT_PAIRS = [(3, 8), (5, 8), (4, 9)]
REPORT_PAIRS_BOTH_WAYS = REPORT_PAIRS + [(read_as, true) for true, read_as in REPORT_PAIRS]


def pair_name(true: int, read_as: int) -> str:
    """A pair's name in metrics/eval.json: '3->8' is the share of 3s read as 8."""
    return f"{true}->{read_as}"


def confusion_counts(true: torch.Tensor, predicted: torch.Tensor) -> np.ndarray:
    """10×10 counts: row = true class, column = class read."""
    pairs = true.cpu().numpy().astype(np.int64) * 10 + predicted.cpu().numpy()
    return np.bincount(pairs, minlength=100).reshape(10, 10)


def read_as_shares(counts: np.ndarray) -> np.ndarray:
    """Row-normalised counts: [t, r] is the share of true class t that was read as r
    (NaN for a class with no images)."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.full(counts.shape, np.nan), where=totals > 0)


def misread_share(counts: np.ndarray) -> float:
    """The share of all images read as another class."""
    return float(1 - np.trace(counts) / max(counts.sum(), 1))


def misread_share_by_class(counts: np.ndarray) -> np.ndarray:
    return 1 - np.diag(read_as_shares(counts))


def top_confusions(counts: np.ndarray, n: int = 3) -> list[tuple[int, int, float]]:
    """The `n` largest shares of a class read as another, as (true, read, share)."""
    shares = read_as_shares(counts)
    pairs = [(t, r, float(shares[t, r])) for t in range(10) for r in range(10) if t != r]
    seen = [pair for pair in pairs if pair[2] > 0]  # NaN > 0 is False: absent classes drop out
    return sorted(seen, key=lambda pair: pair[2], reverse=True)[:n]


def class_shares(predicted: torch.Tensor) -> np.ndarray:
    """The share of images read as each class."""
    counts = np.bincount(predicted.cpu().numpy(), minlength=10).astype(np.float64)
    return counts / counts.sum()
