"""The 10- vs 100-epoch workflow in miniature: commit a run, `dvc exp run -S`, diff through DVC."""

import json

import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.e2e


def test_an_experiment_reruns_train_and_downstream_and_diffs_against_the_commit(reproduced_repo):
    repo = reproduced_repo  # a committed run of the tiny params' 3 epochs; then one of 4
    result = repo.run("dvc", "exp", "run", "-S", "train.epochs=4")
    for stage in ("train", "evaluate", "generate", "interpolate", "evaluate_likelihood"):
        assert f"Running stage '{stage}'" in result.stdout, stage
    for stage in ("download", "classifier"):  # upstream of train, or independent of it
        assert f"Running stage '{stage}'" not in result.stdout, stage

    params = json.loads(repo.run("dvc", "params", "diff", "--json").stdout)
    assert params["params.yaml"]["train.epochs"] == {"old": 3, "new": 4, "diff": 1}

    # the diff's two sides are the committed run's file and the experiment's
    metrics = json.loads(repo.run("dvc", "metrics", "diff", "--json").stdout)
    committed = json.loads(repo.run("git", "show", "HEAD:metrics/train.json").stdout)
    workspace = json.loads((repo.root / "metrics/train.json").read_text())
    assert committed != workspace
    for key, diff in metrics["metrics/train.json"].items():
        assert (diff["old"], diff["new"]) == (committed[key], workspace[key]), key

    plots = json.loads(repo.run("dvc", "plots", "diff", "--json", "HEAD").stdout)
    loss_rows = [
        row
        for definition in plots["data"]["metrics/loss.csv"]
        for row in definition["content"]["data"]["values"]
    ]
    epochs_by_rev_and_field = {}
    for row in loss_rows:
        epochs_by_rev_and_field.setdefault((row["rev"], row["field"]), set()).add(int(row["epoch"]))
    # both revisions, each with its train and its test curve: the overlay `dvc plots diff` draws
    assert epochs_by_rev_and_field == {
        ("HEAD", "train_loss"): {1, 2, 3},
        ("HEAD", "test_loss"): {1, 2, 3},
        ("workspace", "train_loss"): {1, 2, 3, 4},
        ("workspace", "test_loss"): {1, 2, 3, 4},
    }


def test_the_literature_protocol_runs_as_an_experiment_and_keeps_its_best_epoch(reproduced_repo):
    """docs/literature.md's settings in miniature: two hidden layers, dynamic binarization, a
    held-out split, KL warm-up and early stopping, through `dvc exp run -S`."""
    repo = reproduced_repo
    repo.run("dvc", "exp", "run", "-S", "data.binarize=dynamic",
             "-S", "data.validation_images=128", "-S", "model.hidden_dims=[16,8]",
             "-S", "model.sigmoid_latent=false", "-S", "train.epochs=12",
             "-S", "train.kl_warmup_epochs=2", "-S", "train.patience=2")  # fmt: skip
    root = repo.root
    history = pd.read_csv(root / "metrics/loss.csv")
    train = json.loads((root / "metrics/train.json").read_text())
    counted = history[history["epoch"] > 2]  # after the warm-up
    best = int(counted.loc[counted["validation_loss"].idxmin(), "epoch"])
    # Stopped two epochs after the best, or at the last epoch when the best came later.
    assert train["best_epoch"] == best
    assert train["stopped_epoch"] == len(history) == min(best + 2, 12)
    kept = history.set_index("epoch").loc[best]
    for name in ("train_loss", "test_loss", "validation_loss"):
        assert train[name] == pytest.approx(kept[name], abs=1e-4), name
    model = torch.load(root / "models/vae.pt", weights_only=True)
    assert model["hyperparameters"]["hidden_dims"] == [16, 8]
    assert 'id="unavailable"' in (root / "plots/latent_explorer.html").read_text()
    assert set(json.loads((root / "metrics/likelihood.json").read_text())["iwae"]) == {"k1", "k20"}
    assert "Data and pipelines are up to date." in repo.run("dvc", "status").stdout
