"""Stage `generate`: decode z ~ N(0, I) into sample images; ask the classifier what they are."""

import _bootstrap  # noqa: F401  (first: this tree's package, and the right python)

# isort: split
import numpy as np
import pandas as pd
import torch

from mnist_vae.atomic import atomic_open
from mnist_vae.checkpoints import load_model
from mnist_vae.classifier import Classifier, classify
from mnist_vae.cli import run_stage
from mnist_vae.confusions import class_shares
from mnist_vae.figures import digit_grid, digit_histogram, digit_panels
from mnist_vae.idx import DATASETS
from mnist_vae.latents import decode
from mnist_vae.model import VAE
from mnist_vae.runtime import stage_setup

COLUMNS = 10


def main() -> None:
    params, device = stage_setup()
    settings = params.generate
    vae = load_model("models/vae.pt", VAE, expected=params.model.model_dump(), device=device)
    judge = load_model("models/classifier.pt", Classifier, device=device)
    dataset = DATASETS[params.data.dataset]

    def samples(count: int, stream: int) -> torch.Tensor:
        # One independent stream of latents per output, so changing one count leaves the other
        # outputs' samples as they were; drawn on the CPU, so the same on every device.
        seed = np.random.SeedSequence([settings.seed, stream]).generate_state(1, np.uint64)[0]
        generator = torch.Generator().manual_seed(int(seed))
        return decode(vae, torch.randn(count, vae.latent_dim, generator=generator).to(device))

    for stream, (name, count) in enumerate(
        (("small", settings.small_count), ("large", settings.large_count))
    ):
        digit_panels(
            [(f"{count} decoded samples z ~ N(0, I)", digit_grid(samples(count, stream), COLUMNS))],
            f"plots/samples_{name}.png",
        )
    read, confidence = classify(judge, samples(settings.classified_count, stream=2))
    shares = class_shares(read)
    with atomic_open("metrics/sample_classes.csv") as handle:
        pd.DataFrame({"class": dataset.class_names, "share": shares}).to_csv(
            handle, index=False, float_format="%.4f"
        )
    digit_histogram(
        shares,
        "plots/generated_digits.png",
        f"What the classifier sees in {settings.classified_count} samples "
        f"(mean confidence {confidence.mean().item():.0%})",
        dataset.class_names,
        dataset.noun,
    )


if __name__ == "__main__":
    run_stage("generate", main)
