"""Stage `generate`: decode z ~ N(0, I) into sample images; ask the classifier what they are."""

import torch

from mnist_vae.atomic import write_json
from mnist_vae.checkpoints import load_model
from mnist_vae.classifier import Classifier, classify
from mnist_vae.cli import run_stage, stage_setup
from mnist_vae.evaluation import digit_shares
from mnist_vae.figures import digit_grid, digit_histogram, digit_panels
from mnist_vae.latents import decode
from mnist_vae.mnist import DATASETS
from mnist_vae.model import VAE

COLUMNS = 10


def main() -> None:
    params, device = stage_setup(["data", "model", "generate"])
    settings = params["generate"]
    vae = load_model("models/vae.pt", VAE, expected=params["model"], device=device)
    judge = load_model("models/classifier.pt", Classifier, device=device)

    # Drawn on the CPU so the same seed gives the same latents on every device.
    generator = torch.Generator().manual_seed(settings["seed"])

    def samples(count: int) -> torch.Tensor:
        return decode(vae, torch.randn(count, vae.latent_dim, generator=generator).to(device))

    for name, count in (("small", settings["small_count"]), ("large", settings["large_count"])):
        digit_panels(
            [(f"{count} decoded samples z ~ N(0, I)", digit_grid(samples(count), COLUMNS))],
            f"plots/samples_{name}.png",
        )
    read, confidence = classify(judge, samples(settings["classified_count"]))
    shares = digit_shares(read)
    write_json(
        "metrics/generate.json",
        {
            "samples_classified": settings["classified_count"],
            "digit_share": {str(d): round(s, 4) for d, s in enumerate(shares)},
            "mean_confidence": round(confidence.mean().item(), 4),
        },
    )
    dataset = DATASETS[params["data"]["dataset"]]
    digit_histogram(
        shares,
        "plots/generated_digits.png",
        f"What the classifier sees in {settings['classified_count']} samples "
        f"(mean confidence {confidence.mean().item():.0%})",
        dataset.class_names,
        dataset.noun,
    )


if __name__ == "__main__":
    run_stage("generate", main)
