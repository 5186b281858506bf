"""MNIST and Fashion-MNIST as their four canonical IDX files: read, write, verify, load.

The files live in `<root>/MNIST/raw/` (or `<root>/FashionMNIST/raw/`), exactly where
`torchvision.datasets.MNIST(root, download=False)` (or `FashionMNIST`) looks for them.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mnist_vae.errors import UserError

IMAGE_PIXELS = 28 * 28
IMAGE_MAGIC = 0x0803  # uint8 data, 3 dimensions
LABEL_MAGIC = 0x0801  # uint8 data, 1 dimension


@dataclass(frozen=True)
class IdxFile:
    name: str
    size: int
    md5: str


# The published checksums of the uncompressed files (the ones torchvision and others check).
MNIST_FILES = {
    "train_images": IdxFile(
        "train-images-idx3-ubyte", 47_040_016, "6bbc9ace898e44ae57da46a324031adb"
    ),
    "train_labels": IdxFile("train-labels-idx1-ubyte", 60_008, "a25bea736e30d166cdddb491f175f624"),
    "test_images": IdxFile("t10k-images-idx3-ubyte", 7_840_016, "2646ac647ad5339dbf082846283269ea"),
    "test_labels": IdxFile("t10k-labels-idx1-ubyte", 10_008, "27ae3e4e09519cfbb04c329615203637"),
}


# Same names and sizes, other images (MD5s of the uncompressed canonical files).
FASHION_MNIST_FILES = {
    "train_images": IdxFile(
        "train-images-idx3-ubyte", 47_040_016, "f4a8712d7a061bf5bd6d2ca38dc4d50a"
    ),
    "train_labels": IdxFile("train-labels-idx1-ubyte", 60_008, "9018921c3c673c538a1fc5bad174d6f9"),
    "test_images": IdxFile("t10k-images-idx3-ubyte", 7_840_016, "8181f5470baa50b63fa0f6fddb340f0a"),
    "test_labels": IdxFile("t10k-labels-idx1-ubyte", 10_008, "15d484375f8d13e6eb1aabb0c3f46965"),
}


@dataclass(frozen=True)
class Dataset:
    name: str  # torchvision's class name, which is also its folder: <root>/<name>/raw
    files: dict[str, IdxFile]
    class_names: tuple[str, ...]
    noun: str  # what one class is called in figure titles


DIGITS = tuple("0123456789")

DATASETS = {
    "MNIST": Dataset("MNIST", MNIST_FILES, DIGITS, "digit"),
    "FashionMNIST": Dataset(
        "FashionMNIST",
        FASHION_MNIST_FILES,
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        "class",
    ),
}


class DataError(UserError, ValueError):
    """Data on disk that is missing, corrupt or not shaped like MNIST."""


def raw_dir(root: str | Path, dataset: str = "MNIST") -> Path:
    return Path(root) / dataset / "raw"


def encode_idx(array: np.ndarray) -> bytes:
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise ValueError(
            f"IDX writer takes uint8 arrays of 1 or 3 dims, got {array.dtype} {array.shape}"
        )
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def read_idx(path: str | Path) -> np.ndarray:
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 4:
        raise DataError(f"{path}: {len(data)} bytes is too short for an IDX header")
    (magic,) = struct.unpack(">I", data[:4])
    if magic not in (IMAGE_MAGIC, LABEL_MAGIC):
        raise DataError(
            f"{path}: magic number {magic:#010x}, expected {IMAGE_MAGIC:#010x} (images) "
            f"or {LABEL_MAGIC:#010x} (labels)"
        )
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path}: truncated header")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected = header_size + int(np.prod(shape))
    if len(data) != expected:
        raise DataError(
            f"{path}: header promises shape {shape} ({expected} bytes), file has {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def md5_of(path: str | Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(folder: str | Path, expected: IdxFile) -> str | None:
    """None when `folder/expected.name` is the canonical file, else the reason it is not."""
    path = Path(folder) / expected.name
    if not path.is_file():
        return f"{path} is missing"
    size = path.stat().st_size
    if size != expected.size:
        return f"{path} has {size} bytes, expected {expected.size}"
    digest = md5_of(path)
    if digest != expected.md5:
        return f"{path} has md5 {digest}, expected {expected.md5}"
    return None


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
    """Read one split ('train' or 'test') and refuse anything not shaped like MNIST."""
    folder = raw_dir(root, dataset)
    images_path = folder / MNIST_FILES[f"{split}_images"].name
    labels_path = folder / MNIST_FILES[f"{split}_labels"].name
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
        raise DataError(f"{labels_path}: labels must be digits 0-9, found {int(labels.max())}")
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
