"""Time our training loop against pytorch/examples' VAE loop as users run it, same model.

    python benchmarks/train_speed.py [--device auto|cpu|cuda] [--epochs 3] [--batch-size 128]
                                     [--compile default|reduce-overhead|...] [--flush-denormals]
                                     [--peak-size 4096]

Every loop trains pytorch/examples' model (784-400-20, no sigmoid on z) from the same initial
weights, batch 128, in its own worker process (so peak RSS is its own), after one warm-up
epoch. The loops' timed epochs alternate: each of `--epochs` rounds measures the float32
matrix-multiply peak, then one epoch of every loop, starting with a different loop each round.
Speed-ups are the median of the rounds' ratios, so a drift in the machine's speed, which is
large on shared machines, moves both sides of each ratio. It prints a table and writes it,
with every round, as JSON (`--out`).

(a) pytorch-examples: the loop of pytorch/examples' vae/main.py with its own choices:
    torchvision.datasets.MNIST with transforms.ToTensor() in a shuffled DataLoader, default
    (unfused) Adam, a sigmoid output with F.binary_cross_entropy summed over the batch,
    `loss.item()` every batch;
(b) conventional: the same data path, but our loss and our fused Adam;
(c) ours: mnist_vae.training.train_epoch, the loop the `train` stage runs;
(d) with --compile MODE, also (c) on torch.compile(model, mode=MODE): "reduce-overhead" is the
    mode that replays CUDA graphs. Compiling is counted in its warm-up epoch, not in the timings;
(e) with --flush-denormals, also (c) with torch.set_flush_denormal(True): tiny floats read as
    zero. Its weights after the last epoch are compared with (c)'s, bit for bit.

The share of the peak each loop reaches counts the epoch's multiply-adds (`epoch_flops`).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from provenance import provenance  # this folder, as `python benchmarks/...` runs it

from mnist_vae.loops import FusedAdam
from mnist_vae.machine import label
from mnist_vae.mnist import load_split
from mnist_vae.model import VAE, loss_terms
from mnist_vae.runtime import (
    configure_threads,
    describe_device,
    resolve_device,
    synchronize,
)
from mnist_vae.training import train_epoch

LOOPS = ("pytorch-examples", "conventional", "ours", "compiled", "flushed")
SEED = 1
# pytorch/examples' VAE: 784-400-20, a standard VAE (no sigmoid on z).
MODEL = {"hidden_dims": [400], "latent_dim": 20, "sigmoid_latent": False}


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


def vae_layers(hidden_dims: list[int], latent: int) -> list[tuple[int, int]]:
    """The (inputs, outputs) of each linear layer of `mnist_vae.model.VAE`."""
    encoder, decoder = [784, *hidden_dims], [latent, *reversed(hidden_dims), 784]
    heads = [(hidden_dims[-1], latent)] * 2  # mean and log-variance
    return [*itertools.pairwise(encoder), *heads, *itertools.pairwise(decoder)]


def epoch_flops(images: int) -> float:
    """The floating-point operations of one training epoch of MODEL over `images` images."""
    return images * training_flops(vae_layers(MODEL["hidden_dims"], MODEL["latent_dim"]))


def matmul_peak(device: torch.device, size: int = 4096, repeats: int = 5) -> float:
    """The float32 GFLOP/s of the fastest of `repeats` size × size products."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    best = min(timed(device, lambda: a @ b)[0] for _ in range(repeats + 1))
    return 2 * size**3 / best / 1e9


def build_loop(
    loop: str, device: torch.device, batch_size: int, data_root: str, compile_mode: str | None
) -> tuple[int, torch.nn.Module, Callable[[], float]]:
    """The number of training images, a fresh model (MODEL, seeded) and a function that trains
    it one epoch of `loop` and returns the mean loss per image."""
    if loop == "flushed":
        torch.set_flush_denormal(True)  # for this worker process, before anything is computed
    torch.manual_seed(SEED)
    model = VAE(**MODEL).to(device)
    if loop == "pytorch-examples":
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # its default: not fused
    else:
        optimizer = FusedAdam(model.parameters(), lr=1e-3)

    if loop in ("pytorch-examples", "conventional"):
        from torch.utils.data import DataLoader
        from torchvision import datasets, transforms

        dataset = datasets.MNIST(
            data_root, train=True, download=False, transform=transforms.ToTensor()
        )
        extra = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, **extra)
        run_epoch = examples_epoch if loop == "pytorch-examples" else conventional_epoch
        return len(dataset), model, lambda: run_epoch(model, optimizer, loader, device)

    x = load_split(data_root, "train").flat_float(device)
    generator = torch.Generator().manual_seed(SEED)
    trained = torch.compile(model, mode=compile_mode) if loop == "compiled" else model
    return len(x), model, lambda: train_epoch(trained, optimizer, x, batch_size, generator).loss


def weights_sha256(model: torch.nn.Module) -> str:
    """A hash of the weights' names and bytes: equal hashes, the same trained model bit for bit."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def timed(device: torch.device, work: Callable[[], object]) -> tuple[float, object]:
    """Seconds `work` took on `device`, and what it returned."""
    synchronize(device)
    started = time.perf_counter()
    result = work()
    synchronize(device)
    return time.perf_counter() - started, result


def serve(loop: str, args: argparse.Namespace) -> None:
    """A worker: set up `loop`, train its warm-up epoch, then one timed epoch (or, for "peak",
    one peak measurement) per line read from stdin, each answered with one JSON line; on end of
    input, its summary. One process per loop, so each peak RSS is its own."""
    device = resolve_device(args.device)
    threads = configure_threads()

    def answer(message: dict) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    if loop == "peak":
        answer({"ready": True})
        for _ in sys.stdin:
            answer({"gflops": round(matmul_peak(device, args.peak_size), 1)})
        return

    names = {"compiled": f"ours, torch.compile mode={args.compile}",
             "flushed": "ours, denormals flushed"}  # fmt: skip
    images, model, epoch = build_loop(loop, device, args.batch_size, args.data, args.compile)
    # The warm-up epoch also gives the loss after one epoch, to check the loops agree. A
    # compiled loop compiles here, so compiling is not counted in its timings.
    warmup_seconds, first_epoch_loss = timed(device, epoch)
    answer({"ready": True})
    for _ in sys.stdin:
        answer({"seconds": timed(device, epoch)[0]})
    answer(
        {
            "loop": names.get(loop, loop),
            "device": describe_device(device),
            "cpu_threads": threads,
            "batch_size": args.batch_size,
            "images": images,
            "warmup_seconds": round(warmup_seconds, 3),
            "loss_after_first_epoch": round(first_epoch_loss, 3),
            "weights_sha256": weights_sha256(model),
            "peak_rss_mb": peak_rss_mb(),
            "peak_cuda_mb": round(torch.cuda.max_memory_allocated(device) / 2**20)
            if device.type == "cuda"
            else None,
        }
    )


class Worker:
    """One `serve` process, driven a line at a time."""

    def __init__(self, loop: str, args: argparse.Namespace):
        command = [sys.executable, __file__, "--serve", loop, "--device", args.device,
                   "--batch-size", str(args.batch_size), "--data", args.data,
                   "--peak-size", str(args.peak_size)]  # fmt: skip
        if args.compile:
            command += ["--compile", args.compile]
        self.loop = loop
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)  # fmt: skip
        self.read()  # {"ready": true}: set up and warmed up

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.loop} worker exited with {self.process.wait()}")
        return json.loads(line)

    def ask(self) -> dict:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        return self.read()

    def finish(self) -> dict:
        self.process.stdin.close()
        summary = self.read() if self.loop != "peak" else {}
        self.process.wait()
        return summary


def measure(args: argparse.Namespace, loops: list[str]) -> tuple[list[dict], dict[str, dict]]:
    """Round by round, one peak measurement and one epoch of every loop, the order turning
    each round, so that every loop's epochs meet the same moments of a machine whose speed
    drifts. Returns the rounds and each loop's row."""
    workers, rounds = [], []
    try:
        for loop in ["peak", *loops]:
            workers.append(Worker(loop, args))
        for number in range(args.epochs):
            turn = number % len(loops)
            order = [workers[0], *workers[1 + turn :], *workers[1 : 1 + turn]]
            answers = {worker.loop: worker.ask() for worker in order}
            rounds.append(
                {
                    "matmul_peak_gflops": answers.pop("peak")["gflops"],
                    "order": list(answers),
                    "seconds": {loop: round(a["seconds"], 3) for loop, a in answers.items()},
                }
            )
        rows = {worker.loop: worker.finish() for worker in workers[1:]}
        workers[0].finish()
    finally:
        for worker in workers:
            worker.process.kill()
    for loop, row in rows.items():
        row.update(epoch_figures([each["seconds"][loop] for each in rounds], row.pop("images")))
    return rounds, rows


def peak_rss_mb() -> int | None:
    """This process's peak resident memory; None where there is no `resource` module (Windows)."""
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    per_mb = 2**20 if sys.platform == "darwin" else 2**10  # macOS counts bytes, Linux KiB
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / per_mb)


def epoch_figures(seconds: list[float], images: int) -> dict:
    """One loop's epoch times (one per round) as its row's figures."""
    median = statistics.median(seconds)
    return {
        "seconds_per_epoch_min": min(seconds),
        "seconds_per_epoch_median": median,
        "images_per_second": round(images / median),
        "gflops_per_second": round(epoch_flops(images) / median / 1e9, 1),
    }


def summarise(rounds: list[dict], rows: dict[str, dict]) -> dict:
    """Speed-ups as the median of each round's ratio: the two epochs of a ratio ran seconds
    apart, so a drift in the machine's speed moves both."""

    def paired(baseline: str, loop: str = "ours") -> float:
        return round(
            statistics.median(r["seconds"][baseline] / r["seconds"][loop] for r in rounds), 2
        )

    peak = statistics.median(r["matmul_peak_gflops"] for r in rounds)
    for row in rows.values():
        row["share_of_matmul_peak"] = round(row["gflops_per_second"] / peak, 3)
    examples, ours = rows["pytorch-examples"], rows["ours"]
    summary = {
        **provenance(ours["device"]),
        "matmul_peak_gflops": peak,
        "rows": list(rows.values()),
        "rounds": rounds,
        "speedup_median": paired("pytorch-examples"),
        # On a shared machine a neighbour only ever adds time, so the fastest epochs are the
        # other steady comparison: the ratio of the two loops' fastest epochs (not the smallest
        # of the rounds' ratios).
        "speedup_of_fastest_epochs": round(
            examples["seconds_per_epoch_min"] / ours["seconds_per_epoch_min"], 2
        ),
        "speedup_over_conventional_median": paired("conventional"),
        "first_epoch_loss_difference": round(
            ours["loss_after_first_epoch"] - examples["loss_after_first_epoch"], 3
        ),
    }
    if "compiled" in rows:
        summary["compiled_over_eager_median"] = paired("ours", "compiled")
    if "flushed" in rows:
        summary["flushed_over_eager_median"] = paired("ours", "flushed")
        summary["flushed_same_weights"] = (
            rows["flushed"]["weights_sha256"] == rows["ours"]["weights_sha256"]
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=3,
                        help="timed epochs of each loop (rounds), after one warm-up")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--data", default="data", help="folder holding MNIST/raw (DVC's layout)")
    parser.add_argument("--peak-size", type=int, default=4096,
                        help="side of the square float32 products that measure the peak")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    parser.add_argument(
        "--compile", metavar="MODE", help="also time our loop under torch.compile(mode=MODE)"
    )
    parser.add_argument(
        "--flush-denormals",
        action="store_true",
        help="also time our loop with denormal floats flushed to zero, and compare its weights",
    )
    parser.add_argument("--serve", choices=(*LOOPS, "peak"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args)
        return

    loops = [*LOOPS[:3], *(["compiled"] if args.compile else []),
             *(["flushed"] if args.flush_denormals else [])]  # fmt: skip
    rounds, rows = measure(args, loops)
    summary = summarise(rounds, rows)

    columns = ["loop", "device", "cpu_threads", "seconds_per_epoch_min", "seconds_per_epoch_median",
               "images_per_second", "share_of_matmul_peak", "peak_rss_mb", "peak_cuda_mb",
               "loss_after_first_epoch"]  # fmt: skip
    print(f"{label(summary['machine'])}; float32 matmul peak {summary['matmul_peak_gflops']} GFLOP/s "
          f"(median over {len(rounds)} rounds)")  # fmt: skip
    print(" | ".join(columns))
    for row in summary["rows"]:
        print(" | ".join(str(row[c]) for c in columns))
    print(
        f"speed-up, pytorch-examples / ours: {summary['speedup_median']}x by median of the "
        f"rounds' ratios, {summary['speedup_of_fastest_epochs']}x by fastest epochs; conventional / ours: "
        f"{summary['speedup_over_conventional_median']}x"
    )
    if args.compile:
        print(
            f"torch.compile speed-up over our eager loop: {summary['compiled_over_eager_median']}x"
        )
    if args.flush_denormals:
        same = "the same" if summary["flushed_same_weights"] else "different"
        print(
            f"flushing denormals: {summary['flushed_over_eager_median']}x our loop's speed, "
            f"{same} weights"
        )
    print(
        f"loss after one epoch, ours minus pytorch-examples: {summary['first_epoch_loss_difference']}"
    )
    if args.out:
        from mnist_vae.atomic import write_json

        write_json(args.out, summary)


if __name__ == "__main__":
    main()
