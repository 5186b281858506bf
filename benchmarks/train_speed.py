"""Time our training loop against the conventional DataLoader + ToTensor loop, same model.

    python benchmarks/train_speed.py [--device auto|cpu|cuda] [--epochs 3] [--batch-size 128]
                                     [--compile default|reduce-overhead|...]

Each loop runs in its own subprocess (so peak RSS is its own), trains the same VAE from the same
initial weights with the same loss, batch size and Adam settings, runs one warm-up epoch, then
times `--epochs` more. It prints a table and writes it as JSON (`--out`).

(a) conventional: torchvision.datasets.MNIST with transforms.ToTensor() in a DataLoader,
    shuffled, images converted through PIL every epoch, `loss.item()` every batch, as in
    pytorch/examples' vae/main.py (but with our same optimiser, fused Adam, so only the data
    path differs);
(b) ours: mnist_vae.training.train_epoch, the loop the `train` stage runs;
(c) with --compile MODE, also (b) on torch.compile(model, mode=MODE): "reduce-overhead" is the
    mode that replays CUDA graphs. Compiling is counted in its warm-up epoch, not in the timings.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from mnist_vae.loops import make_optimizer
from mnist_vae.mnist import load_split
from mnist_vae.model import VAE, loss_terms
from mnist_vae.runtime import configure_threads, describe_device, resolve_device
from mnist_vae.training import train_epoch

LOOPS = ("conventional", "ours", "compiled")
SEED = 1


def conventional_epoch(model, optimizer, loader, device) -> float:
    model.train()
    total = 0.0
    for images, _ in loader:
        x = images.view(-1, 784).to(device)
        logits, mu, logvar = model(x)
        recon, kl = loss_terms(logits, x, mu, logvar, model.likelihood)
        loss = (recon + kl).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(x)
    return total / len(loader.dataset)


def run_one(
    loop: str,
    device_spec: str,
    epochs: int,
    batch_size: int,
    data_root: str,
    compile_mode: str | None = None,
) -> dict:
    device = resolve_device(device_spec)
    threads = configure_threads()
    torch.manual_seed(SEED)
    model = VAE().to(device)
    optimizer = make_optimizer(model.parameters(), lr=1e-3)

    if loop == "conventional":
        from torch.utils.data import DataLoader
        from torchvision import datasets, transforms

        dataset = datasets.MNIST(
            data_root, train=True, download=False, transform=transforms.ToTensor()
        )
        images = len(dataset)
        extra = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, **extra)

        def epoch() -> float:
            return conventional_epoch(model, optimizer, loader, device)

    else:
        x = load_split(data_root, "train").flat_float(device)
        images = len(x)
        generator = torch.Generator().manual_seed(SEED)

        trained = torch.compile(model, mode=compile_mode) if loop == "compiled" else model

        def epoch() -> float:
            return train_epoch(trained, optimizer, x, batch_size, generator).loss

    def timed() -> tuple[float, float]:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        loss = epoch()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - started, loss

    warmup_seconds, first_epoch_loss = timed()  # also the loss after one epoch, for agreement
    seconds = [timed()[0] for _ in range(epochs)]
    median = statistics.median(seconds)
    return {
        "loop": f"ours, torch.compile mode={compile_mode}" if loop == "compiled" else loop,
        "device": describe_device(device),
        "cpu_threads": threads,
        "batch_size": batch_size,
        "warmup_seconds": round(warmup_seconds, 3),
        "seconds_per_epoch_min": round(min(seconds), 3),
        "seconds_per_epoch_median": round(median, 3),
        "images_per_second": round(images / median),
        "loss_after_first_epoch": round(first_epoch_loss, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_cuda_mb": round(torch.cuda.max_memory_allocated(device) / 2**20)
        if device.type == "cuda"
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--data", default="data", help="folder holding MNIST/raw (DVC's layout)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    parser.add_argument(
        "--compile", metavar="MODE", help="also time our loop under torch.compile(mode=MODE)"
    )
    parser.add_argument("--only", choices=LOOPS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.only:
        row = run_one(args.only, args.device, args.epochs, args.batch_size, args.data, args.compile)
        print(json.dumps(row))
        return

    rows = []
    for loop in LOOPS if args.compile else LOOPS[:2]:
        command = [sys.executable, __file__, "--only", loop, "--device", args.device,
                   "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--data", args.data]  # fmt: skip
        if args.compile:
            command += ["--compile", args.compile]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    conventional, ours = rows[:2]
    summary = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
        "torch": torch.__version__,
        "rows": rows,
        "speedup_median": round(
            conventional["seconds_per_epoch_median"] / ours["seconds_per_epoch_median"], 2
        ),
        # On a shared machine a neighbour only ever adds time, so the fastest epochs are the
        # steadier comparison; both are reported.
        "speedup_min": round(
            conventional["seconds_per_epoch_min"] / ours["seconds_per_epoch_min"], 2
        ),
        "first_epoch_loss_difference": round(
            ours["loss_after_first_epoch"] - conventional["loss_after_first_epoch"], 3
        ),
    }
    columns = ["loop", "device", "cpu_threads", "seconds_per_epoch_min", "seconds_per_epoch_median",
               "images_per_second", "peak_rss_mb", "peak_cuda_mb", "loss_after_first_epoch"]  # fmt: skip
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[c]) for c in columns))
    print(
        f"speed-up, conventional / ours: {summary['speedup_median']}x by median epoch, "
        f"{summary['speedup_min']}x by fastest epoch"
    )
    if args.compile:
        compiled = rows[2]
        summary["compiled_over_eager_median"] = round(
            ours["seconds_per_epoch_median"] / compiled["seconds_per_epoch_median"], 2
        )
        print(
            f"torch.compile speed-up over our eager loop: {summary['compiled_over_eager_median']}x"
        )
    print(
        f"loss after one epoch, ours minus conventional: {summary['first_epoch_loss_difference']}"
    )
    if args.out:
        from mnist_vae.atomic import write_json

        write_json(args.out, summary)


if __name__ == "__main__":
    main()
