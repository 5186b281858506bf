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

from mnist_vae.atomic import write_bytes
from mnist_vae.idx import IDX_NAMES, encode_idx, raw_dir


def write_idx(path: Path, array: np.ndarray) -> None:
    write_bytes(path, encode_idx(array))


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
        write_idx(folder / IDX_NAMES[f"{split}_images"], images)
        write_idx(folder / IDX_NAMES[f"{split}_labels"], labels)
    return folder


def pytest_collection_modifyitems(config, items):
    if sys.platform != "win32":
        return
    skip = pytest.mark.skip(reason="needs POSIX process groups and signals, which Windows lacks")
    for item in items:
        if "posix" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def synthetic_root(tmp_path: Path) -> Path:
    write_synthetic_mnist(tmp_path)
    return tmp_path


REPO_ROOT = Path(__file__).resolve().parents[1]


def committed(path: str) -> bytes:
    """`path` as committed at HEAD. Tests compare results with this, never with the
    workspace's copy, which the user's own `dvc repro` or `dvc exp run` may have changed."""
    return subprocess.run(
        ["git", "show", f"HEAD:{path}"], cwd=REPO_ROOT, check=True, capture_output=True
    ).stdout


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
        self.env = {
            **os.environ,
            # The venv running pytest has dvc and the packages; DVC runs the `python` on PATH.
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "GIT_AUTHOR_NAME": "test",
            "GIT_AUTHOR_EMAIL": "test@example.invalid",
            "GIT_COMMITTER_NAME": "test",
            "GIT_COMMITTER_EMAIL": "test@example.invalid",
        }
        self.env.pop("PYTHONPATH", None)  # each stage finds its own tree's src/ by itself

    def run(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            args, cwd=self.root, env={**self.env, **env}, capture_output=True, text=True
        )
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

    def outputs(self) -> dict[str, bytes]:
        """Every file DVC tracks or writes here (data, models, metrics, plots, dvc.lock)."""
        folders = ("data", "models", "metrics", "plots")
        files = [p for folder in folders for p in (self.root / folder).rglob("*") if p.is_file()]
        files.append(self.root / "dvc.lock")
        return {str(p.relative_to(self.root)): p.read_bytes() for p in files if p.exists()}

    def git_status(self) -> list[str]:
        return self.run("git", "status", "--porcelain").stdout.splitlines()


VENV_BIN = Path(sys.executable).parent


def make_pipeline_repo(root: Path) -> PipelineRepo:
    """The project's files, synthetic IDX data standing in for `download`'s output, tiny params.

    The code comes from the working tree (so tests see uncommitted changes to it), params.yaml
    from HEAD with TINY_PARAMS on top (so a user's own edits to params.yaml do not leak in).

    The synthetic files are recorded as the `download` stage's output with `dvc commit`, the
    DVC way to register outputs produced outside a stage, and the stage is frozen: it never
    runs, so its checksum check on real MNIST stays exactly as strict as it is, and nothing
    touches the network.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file() and not name.startswith(("metrics/", "plots/")):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    (root / "dvc.lock").unlink(missing_ok=True)
    (root / "params.yaml").write_bytes(committed("params.yaml"))
    repo = PipelineRepo(root)
    repo.run("git", "init", "-q")
    write_synthetic_mnist(root / "data")
    repo.run("dvc", "commit", "--force", "download")
    # `dvc freeze` refuses templated stages, so freeze it in dvc.yaml itself.
    dvc_yaml = root / "dvc.yaml"
    dvc_yaml.write_text(
        dvc_yaml.read_text().replace("  download:\n", "  download:\n    frozen: true\n", 1)
    )
    repo.set_params(TINY_PARAMS)
    repo.commit("tiny pipeline on synthetic data")
    return repo


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> PipelineRepo:
    return make_pipeline_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def _reproduced_once(tmp_path_factory) -> Path:
    repo = make_pipeline_repo(tmp_path_factory.mktemp("reproduced") / "repo")
    repo.run("dvc", "repro")
    repo.commit("every stage's outputs")
    return repo.root


@pytest.fixture
def reproduced_repo(_reproduced_once: Path, tmp_path: Path) -> PipelineRepo:
    """A fresh copy of a tiny repo in which `dvc repro` has run every stage and was committed."""
    root = tmp_path / "repo"
    shutil.copytree(_reproduced_once, root, symlinks=True)
    return PipelineRepo(root)
