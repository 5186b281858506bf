"""MNIST or Fashion-MNIST splits as tensors, loaded from the canonical IDX files (mnist_vae.idx)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mnist_vae.idx import IDX_NAMES, DataError, raw_dir, read_idx


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # uint8, (N, 28, 28)
    labels: torch.Tensor  # int64, (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def flat_float(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """Pixels as float32 in [0, 1], shape (N, 784), converted once on `device`."""
        return self.images.to(device).reshape(len(self), -1).float().div_(255)


def load_split(root: str | Path, split: str, dataset: str = "MNIST") -> Split:
    """Read one split ('train' or 'test') and refuse anything not shaped like MNIST (28×28
    images, one label 0-9 per image; Fashion-MNIST has the same shape)."""
    folder = raw_dir(root, dataset)
    images_path = folder / IDX_NAMES[f"{split}_images"]
    labels_path = folder / IDX_NAMES[f"{split}_labels"]
    for path in (images_path, labels_path):
        if not path.is_file():
            raise DataError(f"{path} is missing; run `dvc repro download` first")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: expected images of shape (N, 28, 28), got {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected a 1-D label array, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels"
        )
    if len(labels) == 0:
        raise DataError(f"{images_path}: the {split} split is empty")
    if labels.max() > 9:
        raise DataError(f"{labels_path}: labels must be classes 0-9, found {int(labels.max())}")
    return Split(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)))


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
