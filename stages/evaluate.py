"""Stage `evaluate`: reconstructions, how the classifier reads them, the latent scatter."""

import _bootstrap  # noqa: F401  (first: this tree's package, and the right python)

# isort: split
import logging

import numpy as np
import pandas as pd
import torch

from mnist_vae.atomic import atomic_open, write_json
from mnist_vae.checkpoints import load_model
from mnist_vae.classifier import Classifier, classify
from mnist_vae.cli import run_stage
from mnist_vae.confusions import (
    REPORT_PAIRS_BOTH_WAYS,
    confusion_counts,
    misread_share,
    misread_share_by_class,
    pair_name,
    read_as_shares,
    top_confusions,
)
from mnist_vae.figures import confusion_heatmap, digit_grid, digit_panels, latent_scatter
from mnist_vae.idx import DATASETS
from mnist_vae.latents import decode, posterior_means
from mnist_vae.mnist import load_split
from mnist_vae.model import VAE
from mnist_vae.runtime import stage_setup

log = logging.getLogger(__name__)


def main() -> None:
    params, device = stage_setup()
    settings = params.evaluate
    vae = load_model("models/vae.pt", VAE, expected=params.model.model_dump(), device=device)
    judge = load_model("models/classifier.pt", Classifier, device=device)
    dataset = DATASETS[params.data.dataset]
    test = load_split("data", "test", dataset.name)
    x = test.flat_float(device)

    means = posterior_means(vae, x)
    reconstructions = decode(vae, means)
    read, _ = classify(judge, reconstructions)
    labels = test.labels
    counts = confusion_counts(labels, read)
    shares = read_as_shares(counts)

    # Headline numbers only; the per-class shares are a plot (metrics/misread_by_class.csv).
    metrics = {"misread_share": round(misread_share(counts), 4)}
    if dataset.name == "MNIST":  # the report's digit pairs mean nothing for other data
        for true, read_as in REPORT_PAIRS_BOTH_WAYS:
            share = shares[true, read_as]
            metrics[pair_name(true, read_as)] = None if np.isnan(share) else round(float(share), 4)
    write_json("metrics/eval.json", metrics)
    for true, read_as, share in top_confusions(counts):
        log.info(
            "%.1f %% of %s read as %s",
            100 * share,
            dataset.class_names[true],
            dataset.class_names[read_as],
        )
    names = np.array(dataset.class_names)
    with atomic_open("metrics/reconstruction_confusion.csv") as handle:
        pd.DataFrame(
            {"actual": names[labels.numpy()], "predicted": names[read.cpu().numpy()]}
        ).to_csv(handle, index=False)
    with atomic_open("metrics/misread_by_class.csv") as handle:
        pd.DataFrame({"class": names, "misread_share": misread_share_by_class(counts)}).to_csv(
            handle, index=False, float_format="%.4f"
        )

    side = min(settings.digits_per_side, int(len(x) ** 0.5))
    generator = torch.Generator().manual_seed(settings.seed)
    shown = torch.randperm(len(x), generator=generator)[: side * side].to(device)
    digit_panels(
        [
            (f"{side * side} test images", digit_grid(x[shown], side)),
            ("decoded from their posterior means", digit_grid(reconstructions[shown], side)),
        ],
        "plots/reconstructions.png",
    )
    confusion_heatmap(
        counts,
        "plots/reconstruction_confusion.png",
        f"How the classifier reads each test {dataset.noun}'s reconstruction (%)",
        dataset.class_names,
    )
    latent_dim = means.shape[1]
    title = f"Posterior means of the {len(x)} test images"
    if latent_dim > 2:
        title += f"\n(first 2 of {latent_dim} latent dimensions)"
    latent_scatter(means, labels, "plots/latent_scatter.png", title, dataset.class_names)


if __name__ == "__main__":
    run_stage("evaluate", main)
