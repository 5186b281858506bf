"""Stage `evaluate_likelihood`: importance-weighted bounds on the test log-likelihood."""

import _bootstrap  # noqa: F401  (first: this tree's package, and the right python)

# isort: split
import logging
import math

import torch
from tqdm import tqdm

from mnist_vae.atomic import write_json
from mnist_vae.checkpoints import load_model
from mnist_vae.cli import run_stage
from mnist_vae.likelihood import bits_per_dimension, importance_weighted_bound
from mnist_vae.mnist import likelihood_targets, load_split
from mnist_vae.model import VAE
from mnist_vae.runtime import stage_setup

log = logging.getLogger(__name__)


def main() -> None:
    params, device = stage_setup()
    settings = params.evaluate_likelihood
    vae = load_model("models/vae.pt", VAE, expected=params.model.model_dump(), device=device)
    test = load_split("data", "test", params.data.dataset).flat_float(device)
    x = likelihood_targets(test[: settings.test_images], params.data.binarize)

    bounds = {}
    for k in settings.ks:
        generator = torch.Generator().manual_seed(settings.seed)
        with tqdm(total=len(x), desc=f"IWAE bound, k={k}", unit="image") as bar:
            per_image = importance_weighted_bound(
                vae, x, k, generator=generator, on_batch=bar.update
            )
        mean = per_image.mean().item()
        bounds[f"k{k}"] = round(mean, 3)
        log.info(
            "k=%d: %.3f nats per image (standard error over images %.3f), %.4f bits/dim",
            k,
            mean,
            per_image.std().item() / math.sqrt(len(per_image)),
            bits_per_dimension(mean),
        )
    write_json("metrics/likelihood.json", {"iwae": bounds})


if __name__ == "__main__":
    run_stage("evaluate_likelihood", main)
