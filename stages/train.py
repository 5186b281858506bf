"""Stage `train`: fit the VAE; write the model, the per-epoch loss table, metrics and curves."""

import pandas as pd
import torch
from tqdm import tqdm

from mnist_vae.atomic import atomic_open, write_json
from mnist_vae.checkpoints import save_model
from mnist_vae.cli import run_stage, stage_setup
from mnist_vae.figures import loss_curves
from mnist_vae.mnist import load_split
from mnist_vae.model import VAE
from mnist_vae.runtime import describe_device
from mnist_vae.training import LOSS_COLUMNS, fit, likelihood_targets


def main() -> None:
    params, device = stage_setup(["data", "model", "train"])
    model_params, train, binarize = params["model"], params["train"], params["data"]["binarize"]
    torch.manual_seed(train["seed"])

    dataset = params["data"]["dataset"]
    train_x = load_split("data", "train", dataset).flat_float(device)
    test_x = likelihood_targets(load_split("data", "test", dataset).flat_float(device), binarize)
    model = VAE(**model_params).to(device)

    with tqdm(total=train["epochs"], desc=f"train on {device}", unit="epoch") as bar:

        def show(row: dict) -> None:
            bar.set_postfix(train=f"{row['train_loss']:.2f}", test=f"{row['test_loss']:.2f}")
            bar.update()

        rows = fit(
            model,
            train_x,
            test_x,
            epochs=train["epochs"],
            batch_size=train["batch_size"],
            lr=train["lr"],
            seed=train["seed"],
            binarize=binarize,
            on_epoch=show,
        )

    history = pd.DataFrame(rows)
    save_model(model, "models/vae.pt")
    with atomic_open("metrics/loss.csv") as handle:
        history[LOSS_COLUMNS].to_csv(handle, index=False, float_format="%.4f")
    final = history[LOSS_COLUMNS].iloc[-1].drop("epoch").round(4).to_dict()
    write_json(
        "metrics/train.json",
        {
            **final,
            "epochs": train["epochs"],
            "seconds_per_epoch": round(history["seconds"].mean(), 3),
            "seconds_total": round(history["seconds"].sum(), 2),
            "device": describe_device(device),
            "cpu_threads": torch.get_num_threads(),
        },
    )
    loss_curves(
        history,
        "plots/loss.png",
        f"VAE on {dataset}: latent {model_params['latent_dim']}, hidden {model_params['hidden_dim']}",
    )


if __name__ == "__main__":
    run_stage("train", main)
