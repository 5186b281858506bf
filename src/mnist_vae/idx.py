"""MNIST and Fashion-MNIST as their four canonical IDX files: names, checksums, read, write.

The files live in `<root>/MNIST/raw/` (or `<root>/FashionMNIST/raw/`), exactly where
`torchvision.datasets.MNIST(root, download=False)` (or `FashionMNIST`) looks for them.
NumPy only: the `download` stage needs no torch (its start-up, docs/speed.md).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_vae.errors import UserError

IMAGE_PIXELS = 28 * 28
IMAGE_MAGIC = 0x0803  # uint8 data, 3 dimensions
LABEL_MAGIC = 0x0801  # uint8 data, 1 dimension


@dataclass(frozen=True)
class IdxFile:
    name: str
    size: int
    md5: str


# The four files' names, the same for MNIST and Fashion-MNIST, by split and kind.
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_SIZES = {"train_images": 47_040_016, "train_labels": 60_008,
             "test_images": 7_840_016, "test_labels": 10_008}  # fmt: skip


def _files(md5s: dict[str, str]) -> dict[str, IdxFile]:
    return {key: IdxFile(IDX_NAMES[key], IDX_SIZES[key], md5) for key, md5 in md5s.items()}


# The published checksums of the uncompressed files (the ones torchvision and others check).
MNIST_FILES = _files(
    {
        "train_images": "6bbc9ace898e44ae57da46a324031adb",
        "train_labels": "a25bea736e30d166cdddb491f175f624",
        "test_images": "2646ac647ad5339dbf082846283269ea",
        "test_labels": "27ae3e4e09519cfbb04c329615203637",
    }
)
FASHION_MNIST_FILES = _files(
    {
        "train_images": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train_labels": "9018921c3c673c538a1fc5bad174d6f9",
        "test_images": "8181f5470baa50b63fa0f6fddb340f0a",
        "test_labels": "15d484375f8d13e6eb1aabb0c3f46965",
    }
)


@dataclass(frozen=True)
class Dataset:
    name: str  # torchvision's class name, which is also its folder: <root>/<name>/raw
    files: dict[str, IdxFile]
    class_names: tuple[str, ...]
    noun: str  # what one class is called in figure titles


DIGITS = tuple("0123456789")

DATASETS: dict[str, Dataset] = {
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
