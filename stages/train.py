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
from mnist_vae.params import ParamsError
from mnist_vae.runtime import FairThreads, describe_device, stage_setup
from mnist_vae.training import LOSS_COLUMNS, VALIDATION_COLUMNS, fit, threads_used

log = logging.getLogger(__name__)


def main() -> None:
    params, device = stage_setup()
    data, settings = params.data, params.train
    torch.manual_seed(settings.seed)

    images = load_split("data", "train", data.dataset).flat_float(device)
    if data.validation_images >= len(images):
        raise ParamsError(
            f"params.yaml: data.validation_images: expected fewer than the {len(images)} "
            f"training images, got {data.validation_images}"
        )
    # The last N training images are held out (for MNIST, N = 10,000 is the classic 50k/10k).
    kept = len(images) - data.validation_images
    train_x, validation_x = images[:kept], images[kept:]
    test_x = load_split("data", "test", data.dataset).flat_float(device)
    model = VAE(**params.model.model_dump()).to(device)
    # It reads what other processes take of the CPU from here, over the epochs only: loading the
    # data faults in pages, which a virtual machine's /proc/stat counts as stolen time.
    threads = FairThreads() if device.type == "cpu" else None

    with tqdm(total=settings.epochs, desc=f"train on {device}", unit="epoch") as bar:

        def show(row: dict) -> None:
            bar.set_postfix(train=f"{row['train_loss']:.2f}", test=f"{row['test_loss']:.2f}")
            bar.update()

        result = fit(
            model,
            train_x,
            likelihood_targets(test_x, data.binarize),
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            lr=settings.lr,
            seed=settings.seed,
            binarize=data.binarize,
            validation_x=likelihood_targets(validation_x, data.binarize)
            if len(validation_x)
            else None,
            kl_warmup_epochs=settings.kl_warmup_epochs,
            patience=settings.patience,
            threads=threads,
            on_epoch=show,
        )

    history = pd.DataFrame(result.rows)
    columns = LOSS_COLUMNS + (VALIDATION_COLUMNS if len(validation_x) else [])
    save_model(model, "models/vae.pt")
    with atomic_open("metrics/loss.csv") as handle:
        history[columns].to_csv(handle, index=False, float_format="%.4f")
    kept = history.iloc[result.kept_epoch - 1]  # the last epoch, or with early stopping the best
    summary = {name: round(kept[name], 4) for name in columns if name.endswith("_loss")}
    if settings.patience:
        summary |= {"best_epoch": result.kept_epoch, "stopped_epoch": len(history)}
    # The threads change the last bits on some CPUs: the reproduction check compares them.
    summary["threads"] = threads_used(result.rows)
    write_json("metrics/train.json", summary)
    # Timings are not results (they differ on every run): logged, never written to metrics.
    log.info(
        "%.2f s per epoch on %s (CPU threads: %s)",
        history["seconds"].mean(),
        describe_device(device),
        summary["threads"],
    )
    loss_curves(
        history,
        "plots/loss.png",
        f"VAE on {data.dataset}: latent {params.model.latent_dim}, "
        f"hidden {'-'.join(map(str, params.model.hidden_dims))}",
    )


if __name__ == "__main__":
    run_stage("train", main)
