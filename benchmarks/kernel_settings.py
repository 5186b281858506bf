"""Which CPU kernel settings move the trained bits? Two epochs of the default model under each.

    python benchmarks/kernel_settings.py [--epochs 2] [--data data] [--params params.yaml] [--out FILE]

Each setting trains the `train` stage's model from params.yaml (same seed, same data, same
loop) in its own process, with the setting in its environment or thread count, and reports a
SHA-256 of the trained weights' bytes, the last epoch's test loss and the seconds `fit` took.
A setting whose hash equals the default's leaves the results bit for bit as they are;
docs/reproducibility.md reads the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

# name → (environment additions, CPU threads or None for every usable core)
SETTINGS = {
    "default": ({}, None),
    "1 thread instead of 2": ({}, 1),
    "ATEN_CPU_CAPABILITY=avx2": ({"ATEN_CPU_CAPABILITY": "avx2"}, None),
    "MKL_ENABLE_INSTRUCTIONS=AVX2": ({"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, None),
    "MKL_CBWR=AVX2,STRICT": ({"MKL_CBWR": "AVX2,STRICT"}, None),
    "MKL_CBWR=SSE4_2": ({"MKL_CBWR": "SSE4_2"}, None),
    "MKL_CBWR=COMPATIBLE": ({"MKL_CBWR": "COMPATIBLE"}, None),
}


def train_once(epochs: int, threads: int | None, root: Path, params_file: Path) -> dict:
    """The `train` stage's training, shortened to `epochs`, in this process."""
    from train_speed import weights_sha256  # this folder, as `python benchmarks/...` runs it

    from mnist_vae.mnist import likelihood_targets, load_split
    from mnist_vae.model import VAE
    from mnist_vae.params import load_params
    from mnist_vae.runtime import configure_threads
    from mnist_vae.training import fit

    configure_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    params = load_params(params_file)
    data, settings = params.data, params.train
    torch.manual_seed(settings.seed)
    train_x = load_split(root, "train", data.dataset).flat_float()
    test_x = likelihood_targets(load_split(root, "test", data.dataset).flat_float(), data.binarize)
    model = VAE(**params.model.model_dump())
    started = time.perf_counter()
    rows = fit(model, train_x, test_x, epochs=epochs, batch_size=settings.batch_size,
               lr=settings.lr, seed=settings.seed, binarize=data.binarize).rows  # fmt: skip
    seconds = time.perf_counter() - started
    return {
        "weights_sha256": weights_sha256(model),
        "test_loss": round(rows[-1]["test_loss"], 4),
        "fit_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data", type=Path, default=REPO / "data", help="folder holding MNIST/raw")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one setting, in a child process
    args = parser.parse_args()
    if args.only:
        print(json.dumps(train_once(args.epochs, SETTINGS[args.only][1], args.data, args.params)))
        return

    from provenance import provenance  # this folder, as `python benchmarks/...` runs it

    from mnist_vae.atomic import write_json

    rows = []
    for name, (environment, _) in SETTINGS.items():
        command = [sys.executable, __file__, "--only", name, "--epochs", str(args.epochs),
                   "--data", str(args.data), "--params", str(args.params)]  # fmt: skip
        env = {**os.environ, **environment}
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        row = {"setting": name, **json.loads(output.stdout.strip().splitlines()[-1])}
        row["same_bits_as_default"] = (
            row["weights_sha256"] == rows[0]["weights_sha256"] if rows else True
        )
        rows.append(row)
        bits = "same bits" if row["same_bits_as_default"] else "different bits"
        print(f"{name}: test loss {row['test_loss']}, {row['fit_seconds']} s, {bits}", flush=True)
    if args.out:
        summary = {**provenance("cpu"), "epochs": args.epochs, "rows": rows}
        write_json(args.out, summary)


if __name__ == "__main__":
    main()
