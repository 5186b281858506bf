"""The 10- vs 100-epoch workflow in miniature: commit a run, `dvc exp run -S`, diff through DVC."""

import json

import pytest

pytestmark = pytest.mark.e2e


def test_an_experiment_reruns_train_and_downstream_and_diffs_against_the_commit(pipeline_repo):
    pipeline_repo.set_params({"train": {"epochs": 1}})
    pipeline_repo.run("dvc", "repro")
    pipeline_repo.commit("a 1-epoch run")

    result = pipeline_repo.run("dvc", "exp", "run", "-S", "train.epochs=2")
    for stage in ("train", "evaluate", "generate", "interpolate", "evaluate_likelihood"):
        assert f"Running stage '{stage}'" in result.stdout, stage
    for stage in ("download", "classifier"):  # upstream of train, or independent of it
        assert f"Running stage '{stage}'" not in result.stdout, stage

    params = json.loads(pipeline_repo.run("dvc", "params", "diff", "--json").stdout)
    assert params["params.yaml"]["train.epochs"] == {"old": 1, "new": 2, "diff": 1}

    # the diff's two sides are the committed run's file and the experiment's
    metrics = json.loads(pipeline_repo.run("dvc", "metrics", "diff", "--json").stdout)
    committed = json.loads(pipeline_repo.run("git", "show", "HEAD:metrics/train.json").stdout)
    workspace = json.loads((pipeline_repo.root / "metrics/train.json").read_text())
    assert committed != workspace
    for key, diff in metrics["metrics/train.json"].items():
        assert (diff["old"], diff["new"]) == (committed[key], workspace[key]), key

    plots = json.loads(pipeline_repo.run("dvc", "plots", "diff", "--json", "HEAD").stdout)
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
        ("HEAD", "train_loss"): {1},
        ("HEAD", "test_loss"): {1},
        ("workspace", "train_loss"): {1, 2},
        ("workspace", "test_loss"): {1, 2},
    }
