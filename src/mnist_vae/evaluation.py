"""Counting what the classifier reads: confusions, misreadings, digit shares."""

from __future__ import annotations

import numpy as np
import torch


def confusion_counts(true: torch.Tensor, predicted: torch.Tensor) -> np.ndarray:
    """10×10 counts: row = true digit, column = digit read."""
    pairs = (true.cpu() * 10 + predicted.cpu()).long()
    return torch.bincount(pairs, minlength=100).reshape(10, 10).numpy()


# The pairs the report names ("9 comes back as 4, 5 as 8, 3 as 8"), both ways: always
# reported, so `dvc metrics diff` can line them up across runs.
REPORT_PAIRS = [(9, 4), (4, 9), (5, 8), (8, 5), (3, 8), (8, 3)]


def misreadings(
    true: torch.Tensor, predicted: torch.Tensor, pairs: list[tuple[int, int]] = REPORT_PAIRS
) -> dict:
    """Share of images read as another class, overall and per true class, the given `pairs`
    (the report's, for MNIST) and the three most frequent confusions."""
    counts = confusion_counts(true, predicted)
    per_digit = counts.sum(axis=1)
    wrong = per_digit - np.diag(counts)
    off_diagonal = [(counts[t, r], t, r) for t in range(10) for r in range(10) if t != r]
    top = sorted(off_diagonal, reverse=True)[:3]
    return {
        "misread_share": round(float(wrong.sum() / max(per_digit.sum(), 1)), 4),
        "misread_share_by_digit": {
            str(d): round(float(wrong[d] / per_digit[d]), 4) if per_digit[d] else None
            for d in range(10)
        },
        # "9->4": the share of all true 9s that read as 4
        "report_pairs": {
            f"{t}->{r}": round(float(counts[t, r] / per_digit[t]), 4) if per_digit[t] else None
            for t, r in pairs
        },
        "top_confusions": {
            f"{t}->{r}": round(float(n / per_digit[t]), 4) for n, t, r in top if n > 0
        },
    }


def digit_shares(predicted: torch.Tensor) -> list[float]:
    counts = torch.bincount(predicted.cpu(), minlength=10).double()
    return (counts / counts.sum()).tolist()
