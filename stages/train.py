"""Stage `train`: fit the VAE; write the model, the per-epoch loss table, metrics and curves."""

import _bootstrap  # noqa: F401  (first: this tree's package, and the right python)

# isort: split
import logging

import pandas as pd
import torch
from tqdm import tqdm

from mnist_vae.atomic import atomic_open, write_json
from mnist_vae.checkpoints import save_model
from mnist_vae.cli import run_stage
from mnist_vae.figures import loss_curves
from mnist_vae.mnist import likelihood_targets, load_split
from mnist_vae.model import VAE
from mnist_vae.runtime import describe_device, stage_setup
from mnist_vae.training import LOSS_COLUMNS, fit

log = logging.getLogger(__name__)


def main() -> None:
    params, device = stage_setup()
    data, settings = params.data, params.train
    torch.manual_seed(settings.seed)

    train_x = load_split("data", "train", data.dataset).flat_float(device)
    test_x = load_split("data", "test", data.dataset).flat_float(device)
    model = VAE(**params.model.model_dump()).to(device)

    with tqdm(total=settings.epochs, desc=f"train on {device}", unit="epoch") as bar:

        def show(row: dict) -> None:
            bar.set_postfix(train=f"{row['train_loss']:.2f}", test=f"{row['test_loss']:.2f}")
            bar.update()

        rows = fit(
            model,
            train_x,
            likelihood_targets(test_x, data.binarize),
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            lr=settings.lr,
            seed=settings.seed,
            binarize=data.binarize,
            on_epoch=show,
        )

    history = pd.DataFrame(rows)
    save_model(model, "models/vae.pt")
    with atomic_open("metrics/loss.csv") as handle:
        history[LOSS_COLUMNS].to_csv(handle, index=False, float_format="%.4f")
    final = history.iloc[-1]
    write_json(
        "metrics/train.json",
        {"train_loss": round(final["train_loss"], 4), "test_loss": round(final["test_loss"], 4)},
    )
    # Timings are not results (they differ on every run): logged, never written to metrics.
    log.info(
        "%.2f s per epoch on %s (%d CPU threads)",
        history["seconds"].mean(),
        describe_device(device),
        torch.get_num_threads(),
    )
    loss_curves(
        history,
        "plots/loss.png",
        f"VAE on {data.dataset}: latent {params.model.latent_dim}, hidden {params.model.hidden_dim}",
    )


if __name__ == "__main__":
    run_stage("train", main)
