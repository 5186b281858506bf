"""Figures as PNG files, drawn with matplotlib (headless) and written atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # stages run headless, in CI and under DVC
import matplotlib.pyplot as plt
import pandas as pd

from mnist_vae.atomic import atomic_path


def save_figure(figure: plt.Figure, path: str | Path, dpi: int = 100) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    plt.close(figure)


def loss_curves(history: pd.DataFrame, path: str | Path, title: str) -> None:
    """Train and test negative ELBO per image against epoch."""
    figure, axis = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    axis.plot(history["epoch"], history["train_loss"], marker="o", label="train")
    axis.plot(history["epoch"], history["test_loss"], marker="s", label="test")
    axis.set_xlabel("epoch")
    axis.set_ylabel("negative ELBO per image (nats)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    save_figure(figure, path)
