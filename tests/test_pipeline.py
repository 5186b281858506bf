"""End to end: the real stages, run by `dvc repro` in a temporary git + DVC repository."""

import json

import pandas as pd
import pytest

from mnist_vae.training import LOSS_COLUMNS

pytestmark = pytest.mark.e2e


def test_repro_trains_and_then_has_nothing_to_do(pipeline_repo):
    first = pipeline_repo.run("dvc", "repro", "train")
    assert "Running stage 'download'" not in first.stdout
    assert "Running stage 'train'" in first.stdout

    history = pd.read_csv(pipeline_repo.root / "metrics/loss.csv")
    assert list(history.columns) == LOSS_COLUMNS
    assert history["epoch"].tolist() == [1, 2, 3]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["test_loss"].iloc[-1] < history["test_loss"].iloc[0]

    metrics = json.loads((pipeline_repo.root / "metrics/train.json").read_text())
    assert metrics["device"] == "cpu" and metrics["epochs"] == 3
    assert metrics["test_loss"] == pytest.approx(history["test_loss"].iloc[-1], abs=1e-3)
    assert (pipeline_repo.root / "plots/loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (pipeline_repo.root / "models/vae.pt").is_file()

    again = pipeline_repo.run("dvc", "repro", "train")
    assert "Running stage" not in again.stdout


def test_same_params_same_seed_give_identical_outputs(pipeline_repo):
    pipeline_repo.run("dvc", "repro", "train")
    table = (pipeline_repo.root / "metrics/loss.csv").read_bytes()
    model = (pipeline_repo.root / "models/vae.pt").read_bytes()
    pipeline_repo.run("dvc", "repro", "--force", "--single-item", "train")
    assert (pipeline_repo.root / "metrics/loss.csv").read_bytes() == table
    assert (pipeline_repo.root / "models/vae.pt").read_bytes() == model


def test_cuda_on_a_machine_without_it_stops_with_one_line(pipeline_repo):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    pipeline_repo.set_params({"train": {"device": "cuda"}})
    result = pipeline_repo.run("python", "stages/train.py", check=False)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert (
        "[train] error: device 'cuda' requested but this machine has no usable CUDA"
        in result.stderr
    )
    assert not (pipeline_repo.root / "models/vae.pt").exists()
