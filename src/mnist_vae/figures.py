"""Figures as PNG files, drawn with matplotlib (headless) and written atomically.

One look throughout: digits in grey (white on black, as MNIST stores them) at 2× their
28 px, digit classes in the `tab10` colours, shares in `Blues`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # stages run headless, in CI and under DVC
import matplotlib.pyplot as plt
import numpy as np

from mnist_vae.atomic import atomic_path
from mnist_vae.idx import DIGITS

if TYPE_CHECKING:  # types only: the study's tables and figure need neither torch nor pandas here
    import pandas as pd
    import torch

DPI = 100
DIGIT_SCALE = 2  # screen pixels per MNIST pixel
TILE_PADDING = 2  # grey pixels between digits in a grid
PANEL_MARGIN = 10  # screen pixels around and between panels
TITLE_BAND = 36  # screen pixels above each panel for its title
DIGIT_COLOURS = "gray"
CLASS_COLOURS = plt.get_cmap("tab10")


def save_figure(figure: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)
    plt.close(figure)


def digit_grid(pixels: torch.Tensor, columns: int) -> np.ndarray:
    """Images (N, 784) in [0, 1] tiled `columns` wide, each framed by TILE_PADDING grey
    pixels, as an (H, W) array: torchvision's make_grid layout, without importing torchvision
    (seconds of every stage's start-up, docs/speed.md)."""
    tiles = pixels.detach().float().cpu().reshape(-1, 28, 28).numpy()
    columns = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    step = 28 + TILE_PADDING
    grid = np.full((rows * step + TILE_PADDING, columns * step + TILE_PADDING), 0.5, np.float32)
    for index, tile in enumerate(tiles):
        top, left = (TILE_PADDING + step * k for k in divmod(index, columns))
        grid[top : top + 28, left : left + 28] = tile
    return grid


def digit_panels_size(grids: Sequence[np.ndarray]) -> tuple[int, int]:
    """(width, height) in pixels of the PNG that `digit_panels` writes for these grids."""
    width = PANEL_MARGIN + sum(g.shape[1] * DIGIT_SCALE + PANEL_MARGIN for g in grids)
    height = TITLE_BAND + max(g.shape[0] for g in grids) * DIGIT_SCALE + PANEL_MARGIN
    return width, height


def digit_panels(panels: Sequence[tuple[str, np.ndarray]], path: str | Path) -> None:
    """Digit grids side by side, each under its title, each MNIST pixel drawn DIGIT_SCALE wide."""
    width, height = digit_panels_size([grid for _, grid in panels])
    figure = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    left = PANEL_MARGIN
    for title, grid in panels:
        panel_w, panel_h = grid.shape[1] * DIGIT_SCALE, grid.shape[0] * DIGIT_SCALE
        bottom = height - TITLE_BAND - panel_h
        axes = figure.add_axes((left / width, bottom / height, panel_w / width, panel_h / height))
        axes.imshow(grid, cmap=DIGIT_COLOURS, vmin=0, vmax=1, interpolation="nearest")
        axes.set_axis_off()
        axes.set_title(title, fontsize=10)
        left += panel_w + PANEL_MARGIN
    save_figure(figure, path)


def save_loss_chart(
    figure: plt.Figure,
    axis: plt.Axes,
    path: str | Path,
    title: str,
    ylabel: str = "negative ELBO per image (nats)",
) -> None:
    """The one look of every loss-against-epoch chart: axis labels, title, grid, legend."""
    axis.set_xlabel("epoch")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    save_figure(figure, path)


def loss_curves(history: pd.DataFrame, path: str | Path, title: str) -> None:
    """Train, test (and validation, where held out) negative ELBO per image against epoch."""
    figure, axis = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    axis.plot(history["epoch"], history["train_loss"], marker="o", label="train")
    axis.plot(history["epoch"], history["test_loss"], marker="s", label="test")
    if "validation_loss" in history:
        axis.plot(history["epoch"], history["validation_loss"], marker="^", label="validation")
    save_loss_chart(figure, axis, path, title)


def latent_scatter(
    means: torch.Tensor,
    labels: torch.Tensor,
    path: str | Path,
    title: str,
    class_names: Sequence[str] = DIGITS,
) -> None:
    """Posterior means coloured by true class; a 1-D latent is drawn against the class."""
    means, labels = means.detach().cpu().numpy(), labels.cpu().numpy()
    figure, axis = plt.subplots(figsize=(7, 6), layout="constrained")
    for digit in range(10):
        chosen = labels == digit
        x = means[chosen, 0]
        y = (
            means[chosen, 1]
            if means.shape[1] > 1
            else labels[chosen] + 0.6 * (np.random.default_rng(digit).random(chosen.sum()) - 0.5)
        )
        axis.scatter(
            x,
            y,
            s=2,
            alpha=0.6,
            color=CLASS_COLOURS(digit),
            label=class_names[digit],
            rasterized=True,
        )
    axis.set_xlabel("z1 (posterior mean)")
    axis.set_ylabel("z2 (posterior mean)" if means.shape[1] > 1 else "true class (jittered)")
    axis.set_title(title)
    axis.legend(title="true class", markerscale=6, loc="center left", bbox_to_anchor=(1, 0.5))
    save_figure(figure, path)


def _class_ticks(axis: plt.Axes, class_names: Sequence[str]) -> None:
    """Class names under the x axis, slanted when they are words (Fashion-MNIST)."""
    words = max(len(name) for name in class_names) > 2
    axis.set_xticks(
        range(10), class_names, rotation=40 if words else 0, ha="right" if words else "center"
    )


def confusion_heatmap(
    counts: np.ndarray,
    path: str | Path,
    title: str,
    class_names: Sequence[str] = DIGITS,
) -> None:
    """Row-normalised 10×10 confusion (true class × classified reconstruction), in percent."""
    shares = 100 * counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, axis = plt.subplots(figsize=(6.4, 5.6), layout="constrained")
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=100)
    for true_class in range(10):
        for read_as in range(10):
            share = shares[true_class, read_as]
            if share >= 0.05:
                colour = "white" if share > 50 else "black"
                axis.text(read_as, true_class, f"{share:.1f}", ha="center", va="center",
                          fontsize=7, color=colour)  # fmt: skip
    _class_ticks(axis, class_names)
    axis.set_yticks(range(10), class_names)
    axis.set_xlabel("classifier's reading of the reconstruction")
    axis.set_ylabel("true class")
    axis.set_title(title)
    figure.colorbar(image, ax=axis, label="% of that class's test images")
    save_figure(figure, path)


def digit_histogram(
    shares: Sequence[float],
    path: str | Path,
    title: str,
    class_names: Sequence[str] = DIGITS,
    noun: str = "digit",
) -> None:
    figure, axis = plt.subplots(figsize=(6.4, 4), layout="constrained")
    axis.bar(range(10), [100 * s for s in shares], color=[CLASS_COLOURS(d) for d in range(10)])
    axis.axhline(10, color="black", linestyle="--", linewidth=1, label="uniform (10 %)")
    _class_ticks(axis, class_names)
    axis.set_xlabel(f"{noun} the classifier sees")
    axis.set_ylabel("% of samples")
    axis.set_title(title)
    axis.legend()
    save_figure(figure, path)
