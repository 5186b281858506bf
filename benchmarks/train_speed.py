"""Time our training loop against pytorch/examples' VAE loop as users run it, same model.

    python benchmarks/train_speed.py [--device auto|cpu|cuda] [--epochs 3] [--batch-size 128]
                                     [--compile default|reduce-overhead|...]

Every loop trains pytorch/examples' model (784-400-20, no sigmoid on z) from the same initial
weights, batch 128, in its own subprocess (so peak RSS is its own), one warm-up epoch, then
`--epochs` timed epochs. It prints a table and writes it as JSON (`--out`).

(a) pytorch-examples: the loop of pytorch/examples' vae/main.py with its own choices:
    torchvision.datasets.MNIST with transforms.ToTensor() in a shuffled DataLoader, default
    (unfused) Adam, a sigmoid output with F.binary_cross_entropy summed over the batch,
    `loss.item()` every batch;
(b) conventional: the same data path, but our loss and our fused Adam;
(c) ours: mnist_vae.training.train_epoch, the loop the `train` stage runs;
(d) with --compile MODE, also (c) on torch.compile(model, mode=MODE): "reduce-overhead" is the
    mode that replays CUDA graphs. Compiling is counted in its warm-up epoch, not in the timings.

It also measures the CPU's float32 matrix-multiply peak (a large square product) and reports
which share of it each loop reaches, counting the epoch's multiply-adds.
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
import torch.nn.functional as F

from mnist_vae.loops import make_optimizer
from mnist_vae.mnist import load_split
from mnist_vae.model import VAE, loss_terms
from mnist_vae.runtime import (
    configure_threads,
    cpu_info,
    describe_device,
    resolve_device,
    usable_cores,
)
from mnist_vae.training import train_epoch

LOOPS = ("pytorch-examples", "conventional", "ours", "compiled")
SEED = 1
# pytorch/examples' VAE: 784-400-20, a standard VAE (no sigmoid on z).
MODEL = {"hidden_dim": 400, "latent_dim": 20, "sigmoid_latent": False}


def examples_epoch(model, optimizer, loader, device) -> float:
    """pytorch/examples' vae/main.py `train`: sigmoid output, F.binary_cross_entropy summed
    over the batch plus the KL, loss.item() every batch."""
    model.train()
    total = 0.0
    for images, _ in loader:
        x = images.view(-1, 784).to(device)
        optimizer.zero_grad()
        logits, mu, logvar = model(x)
        bce = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = bce + kld
        loss.backward()
        total += loss.item()
        optimizer.step()
    return total / len(loader.dataset)


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


def forward_flops(layers: list[tuple[int, int]]) -> int:
    """Multiply-adds × 2 of one image through these (inputs, outputs) linear layers."""
    return sum(2 * a * b for a, b in layers)


def training_flops(layers: list[tuple[int, int]]) -> int:
    """Per image: the forward pass, then the backward pass's two products per layer (weights
    and inputs), less the input gradient of the first layer, which nothing needs."""
    first_inputs, first_outputs = layers[0]
    return 3 * forward_flops(layers) - 2 * first_inputs * first_outputs


def vae_layers(hidden: int, latent: int) -> list[tuple[int, int]]:
    return [(784, hidden), (hidden, latent), (hidden, latent), (latent, hidden), (hidden, 784)]


def epoch_flops(images: int) -> float:
    """The floating-point operations of one training epoch of MODEL over `images` images."""
    return images * training_flops(vae_layers(MODEL["hidden_dim"], MODEL["latent_dim"]))


def matmul_peak(device: torch.device, size: int = 4096, repeats: int = 5) -> float:
    """The float32 GFLOP/s of the fastest of `repeats` size × size products."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    best = float("inf")
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


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
    model = VAE(**MODEL).to(device)
    if loop == "pytorch-examples":
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # its default: not fused
    else:
        optimizer = make_optimizer(model.parameters(), lr=1e-3)

    if loop in ("pytorch-examples", "conventional"):
        from torch.utils.data import DataLoader
        from torchvision import datasets, transforms

        dataset = datasets.MNIST(
            data_root, train=True, download=False, transform=transforms.ToTensor()
        )
        images = len(dataset)
        extra = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, **extra)

        run_epoch = examples_epoch if loop == "pytorch-examples" else conventional_epoch

        def epoch() -> float:
            return run_epoch(model, optimizer, loader, device)

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
        "gflops_per_second": round(epoch_flops(images) / median / 1e9, 1),
        "loss_after_first_epoch": round(first_epoch_loss, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_cuda_mb": round(torch.cuda.max_memory_allocated(device) / 2**20)
        if device.type == "cuda"
        else None,
    }


def machine() -> str:
    """The CPU by name (lscpu's model name) and the number of cores this process may use."""
    model = cpu_info().get("model name") or platform.processor() or platform.machine()
    return f"{model}, {usable_cores()} cores, {platform.machine()}"


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
    parser.add_argument("--only", choices=(*LOOPS, "peak"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.only == "peak":
        configure_threads()
        print(json.dumps({"matmul_peak_gflops": round(matmul_peak(resolve_device(args.device)))}))
        return
    if args.only:
        row = run_one(args.only, args.device, args.epochs, args.batch_size, args.data, args.compile)
        print(json.dumps(row))
        return

    rows = []
    for loop in ["peak", *(LOOPS if args.compile else LOOPS[:3])]:
        command = [sys.executable, __file__, "--only", loop, "--device", args.device,
                   "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--data", args.data]  # fmt: skip
        if args.compile:
            command += ["--compile", args.compile]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    peak = rows.pop(0)["matmul_peak_gflops"]
    examples, conventional, ours = rows[:3]
    for row in rows:
        row["share_of_matmul_peak"] = round(row["gflops_per_second"] / peak, 3)

    def speedup(baseline: dict, key: str) -> float:
        return round(baseline[key] / ours[key], 2)

    summary = {
        "machine": machine(),
        "torch": torch.__version__,
        "matmul_peak_gflops": peak,
        "rows": rows,
        # On a shared machine a neighbour only ever adds time, so the fastest epochs are the
        # steadier comparison; both are reported.
        "speedup_median": speedup(examples, "seconds_per_epoch_median"),
        "speedup_min": speedup(examples, "seconds_per_epoch_min"),
        "speedup_over_conventional_median": speedup(conventional, "seconds_per_epoch_median"),
        "first_epoch_loss_difference": round(
            ours["loss_after_first_epoch"] - examples["loss_after_first_epoch"], 3
        ),
    }
    columns = ["loop", "device", "cpu_threads", "seconds_per_epoch_min", "seconds_per_epoch_median",
               "images_per_second", "share_of_matmul_peak", "peak_rss_mb", "peak_cuda_mb",
               "loss_after_first_epoch"]  # fmt: skip
    print(f"{summary['machine']}; float32 matmul peak {peak} GFLOP/s")
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[c]) for c in columns))
    print(
        f"speed-up, pytorch-examples / ours: {summary['speedup_median']}x by median epoch, "
        f"{summary['speedup_min']}x by fastest epoch; conventional / ours: "
        f"{summary['speedup_over_conventional_median']}x by median epoch"
    )
    if args.compile:
        compiled = rows[3]
        summary["compiled_over_eager_median"] = round(
            ours["seconds_per_epoch_median"] / compiled["seconds_per_epoch_median"], 2
        )
        print(
            f"torch.compile speed-up over our eager loop: {summary['compiled_over_eager_median']}x"
        )
    print(
        f"loss after one epoch, ours minus pytorch-examples: {summary['first_epoch_loss_difference']}"
    )
    if args.out:
        from mnist_vae.atomic import write_json

        write_json(args.out, summary)


if __name__ == "__main__":
    main()
