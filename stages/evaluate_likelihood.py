"""Stage `evaluate_likelihood`: importance-weighted bounds on the test log-likelihood."""

import math

import torch
from tqdm import tqdm

from mnist_vae.atomic import write_json
from mnist_vae.checkpoints import load_model
from mnist_vae.cli import run_stage, stage_setup
from mnist_vae.likelihood import bits_per_dimension, importance_weighted_bound
from mnist_vae.mnist import load_split
from mnist_vae.model import VAE
from mnist_vae.runtime import describe_device
from mnist_vae.training import likelihood_targets


def main() -> None:
    params, device = stage_setup(["data", "model", "evaluate_likelihood"])
    settings = params["evaluate_likelihood"]
    vae = load_model("models/vae.pt", VAE, expected=params["model"], device=device)
    test = load_split("data", "test", params["data"]["dataset"]).flat_float(device)
    test = test[: settings["test_images"]]
    x = likelihood_targets(test, params["data"]["binarize"])

    results = {}
    for k in settings["ks"]:
        generator = torch.Generator().manual_seed(settings["seed"])
        with tqdm(total=len(x), desc=f"IWAE bound, k={k}", unit="image") as bar:
            bounds = importance_weighted_bound(vae, x, k, generator=generator, on_batch=bar.update)
        mean = bounds.mean().item()
        results[f"k{k}"] = {
            "log_likelihood_nats": round(mean, 3),
            "standard_error_nats": round(bounds.std().item() / math.sqrt(len(bounds)), 3),
            "bits_per_dim": round(bits_per_dimension(mean), 4),
        }
    write_json(
        "metrics/likelihood.json",
        {
            **results,
            "test_images": len(x),
            "dataset": params["data"]["dataset"],
            "binarize": params["data"]["binarize"],
            "likelihood": vae.likelihood,
            "device": describe_device(device),
        },
    )


if __name__ == "__main__":
    run_stage("evaluate_likelihood", main)
