"""Stage `classifier`: train the MLP that judges which digit an image shows; record its accuracy."""

import _bootstrap  # noqa: F401  (first: this tree's package, and the right python)

# isort: split
import torch
from tqdm import tqdm

from mnist_vae.atomic import write_json
from mnist_vae.checkpoints import save_model
from mnist_vae.classifier import Classifier, classify, fit_classifier
from mnist_vae.cli import run_stage
from mnist_vae.mnist import load_split
from mnist_vae.runtime import stage_setup


def main() -> None:
    params, device = stage_setup()
    settings = params.classifier
    torch.manual_seed(settings.seed)

    dataset = params.data.dataset
    train, test = load_split("data", "train", dataset), load_split("data", "test", dataset)
    model = Classifier(settings.hidden_dim).to(device)
    with tqdm(total=settings.epochs, desc=f"classifier on {device}", unit="epoch") as bar:
        fit_classifier(
            model,
            train.flat_float(device),
            train.labels.to(device),
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            lr=settings.lr,
            seed=settings.seed,
            on_epoch=bar.update,
        )
    predicted, _ = classify(model, test.flat_float(device))
    accuracy = (predicted.cpu() == test.labels).double().mean().item()

    save_model(model, "models/classifier.pt")
    write_json("metrics/classifier.json", {"accuracy": round(accuracy, 4)})


if __name__ == "__main__":
    run_stage("classifier", main)
