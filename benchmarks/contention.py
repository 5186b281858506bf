"""Epoch time on a quiet machine and beside busy processes: the `train` stage's loop, which
sets its threads by the cores other processes leave free (runtime.FairThreads), against the
same loop on fixed threads and the conventional DataLoader loop of train_speed.py.

    python benchmarks/contention.py [--rounds 3] [--epochs 2] [--out FILE]

Every loop trains pytorch/examples' model (784-400-20, batch 128, train_speed.MODEL) in a
fresh worker process: one warm-up epoch, then `--epochs` timed ones, whose median is the
loop's time in that round. "busy" starts one `python -c "while True: pass"` per core but one
before the worker starts, and stops them when it is done; "quiet" runs the worker alone.
Rounds alternate which condition goes first and turn the order of the loops. The figures are
medians over rounds: each loop's epoch time per condition, its slowdown (busy over quiet, per
round), and the adapting loop's quiet time over the fixed loop's (per round): what adapting
costs on a quiet machine. Workers run with OMP_NUM_THREADS unset, as a user's run would.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import torch
from provenance import provenance  # this folder, as `python benchmarks/...` runs it
from train_speed import (
    MODEL,
    SEED,
    build_loop,
    timed,
)

from mnist_vae.machine import label
from mnist_vae.mnist import load_split
from mnist_vae.model import VAE
from mnist_vae.runtime import FairThreads, configure_threads, usable_cores
from mnist_vae.training import fit

LOOPS = ("adaptive", "fixed", "conventional")
CONDITIONS = ("quiet", "busy")
SPIN = "while True: pass"


def serve(loop: str, epochs: int, data: str) -> None:
    """A worker: one warm-up and `epochs` timed epochs of `loop`; prints one JSON line."""
    device = torch.device("cpu")
    configure_threads()  # the threads every stage starts with (runtime.stage_setup)
    if loop == "conventional":
        _, _, epoch = build_loop("conventional", device, 128, data, None)
        seconds = [timed(device, epoch)[0] for _ in range(1 + epochs)]
        threads = [torch.get_num_threads()] * len(seconds)
    else:
        x = load_split(data, "train").flat_float()
        share = FairThreads() if loop == "adaptive" else None  # as the train stage: after loading
        torch.manual_seed(SEED)
        rows = fit(VAE(**MODEL), x, x[:2048], epochs=1 + epochs, batch_size=128, lr=1e-3,
                   seed=SEED, threads=share).rows  # fmt: skip
        seconds, threads = [r["seconds"] for r in rows], [r["threads"] for r in rows]
    timed_seconds = seconds[1:]  # after the warm-up
    print(json.dumps({"seconds": [round(s, 3) for s in timed_seconds], "threads": threads[1:],
                      "median": round(statistics.median(timed_seconds), 3)}))  # fmt: skip


def run_worker(loop: str, condition: str, args: argparse.Namespace) -> dict:
    spinners = []
    if condition == "busy":
        spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)]
    try:
        command = [sys.executable, __file__, "--serve", loop, "--epochs", str(args.epochs),
                   "--data", args.data]  # fmt: skip
        said = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    return json.loads(said.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per worker")
    parser.add_argument("--data", default="data", help="folder holding MNIST/raw (DVC's layout)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    parser.add_argument("--serve", choices=LOOPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.epochs, args.data)
        return
    args.busy = usable_cores() - 1
    if args.busy < 1:
        raise SystemExit("error: needs two cores or more, to keep all but one busy")

    rounds = []
    for number in range(args.rounds):
        conditions = CONDITIONS if number % 2 == 0 else CONDITIONS[::-1]
        turn = number % len(LOOPS)
        loops = [*LOOPS[turn:], *LOOPS[:turn]]
        measured = {c: {loop: run_worker(loop, c, args) for loop in loops} for c in conditions}
        rounds.append({"order": [f"{c} {loop}" for c in conditions for loop in loops],
                       **measured})  # fmt: skip
        print(f"round {number + 1}: " + "; ".join(
            f"{c} {loop} {measured[c][loop]['median']} s" for c in conditions for loop in loops
        ), file=sys.stderr)  # fmt: skip

    def median(values) -> float:
        return round(statistics.median(values), 3)

    summary = {
        **provenance("cpu"),
        "model": MODEL,
        "busy_processes": args.busy,
        "timed_epochs_per_worker": args.epochs,
        "median_seconds_per_epoch": {
            c: {loop: median(r[c][loop]["median"] for r in rounds) for loop in LOOPS}
            for c in CONDITIONS
        },
        "slowdown_busy_over_quiet": {
            loop: median(r["busy"][loop]["median"] / r["quiet"][loop]["median"] for r in rounds)
            for loop in LOOPS
        },
        "adaptive_over_fixed_quiet": median(
            r["quiet"]["adaptive"]["median"] / r["quiet"]["fixed"]["median"] for r in rounds
        ),
        "rounds": rounds,
    }
    print(label(summary["machine"]), f"; {args.busy} busy processes beside")
    for condition, row in summary["median_seconds_per_epoch"].items():
        print(condition, " | ".join(f"{loop} {seconds} s" for loop, seconds in row.items()))
    print("slowdown, busy / quiet:", summary["slowdown_busy_over_quiet"])
    print("adapting loop / fixed loop, quiet:", summary["adaptive_over_fixed_quiet"])
    if args.out:
        from mnist_vae.atomic import write_json

        write_json(args.out, summary)


if __name__ == "__main__":
    os.environ.pop("OMP_NUM_THREADS", None)  # threads as a user's run has them
    main()
