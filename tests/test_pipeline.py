"""End to end: the real stages, run by `dvc repro` in a temporary git + DVC repository."""

import json

import pandas as pd
import pytest
import yaml

from mnist_vae.training import LOSS_COLUMNS

pytestmark = pytest.mark.e2e


def test_repro_trains_and_then_has_nothing_to_do(pipeline_repo):
    first = pipeline_repo.run("dvc", "repro", "train")
    assert "Running stage 'download'" not in first.stdout
    assert "Running stage 'train'" in first.stdout

    history = pd.read_csv(pipeline_repo.root / "metrics/loss.csv")
    assert list(history.columns) == LOSS_COLUMNS
    assert history["epoch"].tolist() == [1, 2, 3]  # that the loss falls: test_training.py

    metrics = json.loads((pipeline_repo.root / "metrics/train.json").read_text())
    assert metrics["test_loss"] == pytest.approx(history["test_loss"].iloc[-1], abs=1e-3)
    assert (pipeline_repo.root / "plots/loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (pipeline_repo.root / "models/vae.pt").is_file()

    again = pipeline_repo.run("dvc", "repro", "train")
    assert "Running stage" not in again.stdout


def test_same_params_same_seed_give_identical_outputs(reproduced_repo):
    root = reproduced_repo.root
    table = (root / "metrics/loss.csv").read_bytes()
    model = (root / "models/vae.pt").read_bytes()
    reproduced_repo.run("dvc", "repro", "--force", "--single-item", "train")
    assert (root / "metrics/loss.csv").read_bytes() == table
    assert (root / "models/vae.pt").read_bytes() == model


# Pixel sizes follow from the tiny params in conftest: 4×4 reconstructions, 20 and 30 samples in
# rows of 10, 5 interpolation steps, a 4×4 lattice, each digit drawn at 2× its 28 px.
EXPECTED_PNG_SIZES = {
    "plots/loss.png": (640, 420),
    "plots/reconstructions.png": (10 + 2 * (244 + 10), 36 + 244 + 10),
    "plots/reconstruction_confusion.png": (640, 560),
    "plots/latent_scatter.png": (700, 600),
    "plots/samples_small.png": (10 + 604 + 10, 36 + 124 + 10),
    "plots/samples_large.png": (10 + 604 + 10, 36 + 184 + 10),
    "plots/generated_digits.png": (640, 400),
    "plots/interpolation.png": (10 + (64 + 10) + (304 + 10) + (64 + 10), 36 + 64 + 10),
    "plots/latent_grid.png": (10 + 244 + 10, 36 + 244 + 10),
}


def _png_size(path):
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def test_every_figure_stage_writes_its_pngs_and_metrics(reproduced_repo):
    # `dvc repro` ran every stage here (conftest's `reproduced_repo`) and recorded each one
    root = reproduced_repo.root
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    assert set(yaml.safe_load((root / "dvc.lock").read_text())["stages"]) == set(stages)
    assert json.loads(reproduced_repo.run("dvc", "status", "--json").stdout) == {}
    for path, size in EXPECTED_PNG_SIZES.items():
        assert _png_size(root / path) == size, path

    # The explorer page (tests/test_explorer.py checks its numbers in a browser): the model's
    # decoder and all 128 test images, and the same bytes when the stage runs again.
    page = (root / "plots/latent_explorer.html").read_bytes()
    assert b'"count":128' in page and b'"hidden_dim":32' in page and b'"steps":5' in page
    reproduced_repo.run("dvc", "repro", "--force", "--single-item", "explorer")
    assert (root / "plots/latent_explorer.html").read_bytes() == page

    evaluation = json.loads((root / "metrics/eval.json").read_text())
    assert set(evaluation) == {"misread_share", "3->8", "8->3", "5->8", "8->5", "4->9", "9->4"}
    confusion = pd.read_csv(root / "metrics/reconstruction_confusion.csv")
    assert list(confusion.columns) == ["actual", "predicted"] and len(confusion) == 128
    misread = pd.read_csv(root / "metrics/misread_by_class.csv")
    assert misread["class"].tolist() == list(range(10))
    wrong = (confusion["actual"] != confusion["predicted"]).mean()
    assert evaluation["misread_share"] == pytest.approx(wrong, abs=1e-4)
    per_class = confusion.groupby("actual").apply(lambda g: (g["predicted"] != g.name).mean())
    assert misread.set_index("class")["misread_share"].to_dict() == pytest.approx(
        per_class.to_dict(), abs=1e-4
    )

    samples = pd.read_csv(root / "metrics/sample_classes.csv")
    assert samples["share"].sum() == pytest.approx(1, abs=1e-3)
    # Ten learnable patterns: far above chance (0.1), as a classifier that learnt nothing is not.
    assert json.loads((root / "metrics/classifier.json").read_text())["accuracy"] > 0.9

    likelihood = json.loads((root / "metrics/likelihood.json").read_text())
    assert set(likelihood["iwae"]) == {"k1", "k20"}
    assert likelihood["iwae"]["k20"] > likelihood["iwae"]["k1"]

    train = json.loads((root / "metrics/train.json").read_text())
    assert set(train) == {"train_loss", "test_loss", "threads"}  # results only: no timings

    reproduced_repo.run("dvc", "plots", "show", "-o", "page")
    html = (root / "page/index.html").read_text()
    assert "cdn.jsdelivr" not in html and "vegaEmbed" in html
    for path in EXPECTED_PNG_SIZES:
        assert path.replace("/", "_") in html, path


def test_a_one_dimensional_latent_still_gets_every_figure(reproduced_repo):
    reproduced_repo.set_params({"model": {"latent_dim": 1}})
    reproduced_repo.run("dvc", "repro")
    root = reproduced_repo.root
    assert _png_size(root / "plots/latent_grid.png") == (
        10 + 244 + 10,
        36 + 64 + 10,
    )  # one row of 4
    assert _png_size(root / "plots/latent_scatter.png") == (700, 600)
    # The explorer stage ran too (repro stops at a failing stage); test_explorer.py checks the page.


def test_dynamic_binarization_and_the_continuous_bernoulli_run_through_the_pipeline(
    reproduced_repo,
):
    reproduced_repo.set_params(
        {"data": {"binarize": "dynamic"}, "model": {"likelihood": "continuous_bernoulli"}}
    )
    reproduced_repo.run("dvc", "repro", "evaluate_likelihood", "evaluate")
    root = reproduced_repo.root
    # A density on [0, 1]: positive log-likelihoods for these near-binary images.
    likelihood = json.loads((root / "metrics/likelihood.json").read_text())
    assert likelihood["iwae"]["k1"] > 0
    history = pd.read_csv(root / "metrics/loss.csv")
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert (
        _png_size(root / "plots/reconstructions.png")
        == EXPECTED_PNG_SIZES["plots/reconstructions.png"]
    )


def test_every_stage_runs_on_fashion_mnist_with_class_names(pipeline_repo):
    from conftest import write_synthetic_mnist

    pipeline_repo.set_params({"data": {"dataset": "FashionMNIST"}})
    write_synthetic_mnist(pipeline_repo.root / "data", dataset="FashionMNIST")
    pipeline_repo.run("dvc", "commit", "--force", "download")
    result = pipeline_repo.run("dvc", "repro")
    assert "Running stage 'download'" not in result.stdout
    root = pipeline_repo.root
    for path, size in EXPECTED_PNG_SIZES.items():
        assert _png_size(root / path) == size, path
    confusion = pd.read_csv(root / "metrics/reconstruction_confusion.csv")
    assert set(confusion["actual"]) <= {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    }  # fmt: skip
    evaluation = json.loads((root / "metrics/eval.json").read_text())
    assert list(evaluation) == ["misread_share"]  # the report's digit pairs mean nothing here
    misread = pd.read_csv(root / "metrics/misread_by_class.csv")
    assert misread["class"].tolist()[:2] == ["T-shirt/top", "Trouser"]
    assert '"dataset":"FashionMNIST"' in (root / "plots/latent_explorer.html").read_text()


def test_changing_one_sample_count_leaves_the_other_samples_as_they_were(reproduced_repo):
    root = reproduced_repo.root
    before = reproduced_repo.outputs()
    reproduced_repo.set_params({"generate": {"small_count": 10}})
    result = reproduced_repo.run("dvc", "repro")
    assert [line for line in result.stdout.splitlines() if line.startswith("Running stage")] == [
        "Running stage 'generate':"
    ]
    after = reproduced_repo.outputs()
    assert after["plots/samples_small.png"] != before["plots/samples_small.png"]
    assert _png_size(root / "plots/samples_small.png") == (10 + 604 + 10, 36 + 64 + 10)
    for path in ("plots/samples_large.png", "metrics/sample_classes.csv",
                 "plots/generated_digits.png"):  # fmt: skip
        assert after[path] == before[path], path


def test_editing_the_iwae_code_reruns_only_evaluate_likelihood(reproduced_repo):
    # `dvc status` names the stages whose own deps changed (the ones after `train` follow once
    # it has written a new model).
    for module, stages in (("likelihood.py", {"evaluate_likelihood"}), ("training.py", {"train"})):
        path = reproduced_repo.root / "src/mnist_vae" / module
        original = path.read_text()
        path.write_text(original + "\n# an edit\n")
        status = json.loads(reproduced_repo.run("dvc", "status", "--json").stdout)
        assert set(status) == stages, module
        path.write_text(original)
