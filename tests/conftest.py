"""Shared fixtures: small synthetic MNIST-shaped data, never the network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mnist_vae.mnist import MNIST_FILES, raw_dir, write_idx


def synthetic_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ten fixed blob patterns (one per 'digit') plus pixel noise: learnable, unlike pure noise."""
    prototypes = np.random.default_rng(0).random((10, 28, 28)) > 0.7
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count).astype(np.uint8)
    noise = rng.random((count, 28, 28)) < 0.05
    images = (prototypes[labels] ^ noise).astype(np.uint8) * 255
    return images, labels


def write_synthetic_mnist(
    root: Path, n_train: int = 512, n_test: int = 128, dataset: str = "MNIST"
) -> Path:
    folder = raw_dir(root, dataset)
    for split, count, seed in (("train", n_train, 1), ("test", n_test, 2)):
        images, labels = synthetic_digits(count, seed)
        write_idx(folder / MNIST_FILES[f"{split}_images"].name, images)
        write_idx(folder / MNIST_FILES[f"{split}_labels"].name, labels)
    return folder


@pytest.fixture
def synthetic_root(tmp_path: Path) -> Path:
    write_synthetic_mnist(tmp_path)
    return tmp_path


REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_PARAMS = {
    "device": "cpu",
    "model": {"hidden_dim": 32},
    "train": {"epochs": 3, "batch_size": 32, "lr": 0.01},
    "classifier": {"hidden_dim": 16, "epochs": 2, "batch_size": 32, "lr": 0.01},
    "evaluate": {"digits_per_side": 4},
    "generate": {"small_count": 20, "large_count": 30, "classified_count": 100},
    "interpolate": {"steps": 5, "grid_size": 4},
    "evaluate_likelihood": {"ks": [1, 20], "test_images": 64},
}


class PipelineRepo:
    """A throwaway copy of this repository, as its own git + DVC repo, on synthetic data."""

    def __init__(self, root: Path):
        self.root = root
        bin_dir = Path(sys.executable).parent  # the venv running pytest has dvc and python
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            # The copy's own code, not the editable install's, so DVC hashes what runs.
            "PYTHONPATH": str(root / "src"),
            "GIT_AUTHOR_NAME": "test",
            "GIT_AUTHOR_EMAIL": "test@example.invalid",
            "GIT_COMMITTER_NAME": "test",
            "GIT_COMMITTER_EMAIL": "test@example.invalid",
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(args, cwd=self.root, env=self.env, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def set_params(self, changes: dict) -> None:
        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text())
        for name, value in changes.items():
            if isinstance(value, dict):
                params[name].update(value)
            else:
                params[name] = value
        path.write_text(yaml.safe_dump(params, sort_keys=False))

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "-m", message)


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> PipelineRepo:
    """The project's files, synthetic IDX data standing in for `download`'s output, tiny params.

    The synthetic files are recorded as the `download` stage's output with `dvc commit`, the
    DVC way to register outputs produced outside a stage: the stage itself never runs, so its
    checksum check on real MNIST stays exactly as strict as it is, and nothing touches the network.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    root = tmp_path / "repo"
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file() and not name.startswith(("metrics/", "plots/")):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    (root / "dvc.lock").unlink(missing_ok=True)
    repo = PipelineRepo(root)
    repo.run("git", "init", "-q")
    write_synthetic_mnist(root / "data")
    repo.run("dvc", "commit", "--force", "download")
    repo.set_params(TINY_PARAMS)
    repo.commit("tiny pipeline on synthetic data")
    return repo
