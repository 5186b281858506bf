"""Stage `evaluate`: test ELBO, reconstructions, how the classifier reads them, latent scatter."""

import numpy as np
import pandas as pd
import torch

from mnist_vae.atomic import atomic_open, write_json
from mnist_vae.checkpoints import load_model
from mnist_vae.classifier import Classifier, classify
from mnist_vae.cli import run_stage, stage_setup
from mnist_vae.evaluation import REPORT_PAIRS, confusion_counts, misreadings
from mnist_vae.figures import confusion_heatmap, digit_grid, digit_panels, latent_scatter
from mnist_vae.latents import decode, posterior_means
from mnist_vae.mnist import DATASETS, load_split
from mnist_vae.model import VAE
from mnist_vae.training import evaluate_elbo, likelihood_targets


def main() -> None:
    params, device = stage_setup(["data", "model", "evaluate"])
    settings = params["evaluate"]
    vae = load_model("models/vae.pt", VAE, expected=params["model"], device=device)
    judge = load_model("models/classifier.pt", Classifier, device=device)
    dataset = DATASETS[params["data"]["dataset"]]
    test = load_split("data", "test", dataset.name)
    x = test.flat_float(device)

    torch.manual_seed(settings["seed"])
    elbo = evaluate_elbo(vae, likelihood_targets(x, params["data"]["binarize"]))
    means = posterior_means(vae, x)
    reconstructions = decode(vae, means)
    read_originals, _ = classify(judge, x)
    read_reconstructions, _ = classify(judge, reconstructions)
    labels = test.labels

    write_json(
        "metrics/eval.json",
        {
            "test_loss": round(elbo.loss, 4),
            "test_recon": round(elbo.recon, 4),
            "test_kl": round(elbo.kl, 4),
            "classifier_misread_share_on_originals": misreadings(labels, read_originals)[
                "misread_share"
            ],
            "reconstructions": misreadings(
                labels, read_reconstructions, REPORT_PAIRS if dataset.name == "MNIST" else []
            ),
        },
    )
    with atomic_open("metrics/reconstruction_confusion.csv") as handle:
        names = np.array(dataset.class_names)
        table = pd.DataFrame(
            {
                "actual": names[labels.numpy()],
                "predicted": names[read_reconstructions.cpu().numpy()],
            }
        )
        table.to_csv(handle, index=False)

    side = min(settings["digits_per_side"], int(len(x) ** 0.5))
    generator = torch.Generator().manual_seed(settings["seed"])
    shown = torch.randperm(len(x), generator=generator)[: side * side]
    digit_panels(
        [
            (f"{side * side} test images", digit_grid(x[shown.to(device)], side)),
            (
                "decoded from their posterior means",
                digit_grid(reconstructions[shown.to(device)], side),
            ),
        ],
        "plots/reconstructions.png",
    )
    confusion_heatmap(
        confusion_counts(labels, read_reconstructions),
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
