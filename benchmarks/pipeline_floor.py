"""How fast could the default pipeline be on this machine at float32? A floor per stage.

    python benchmarks/pipeline_floor.py --pipeline benchmarks/results/cpu-2cores/pipeline.json
                                        [--out FILE]

For the two stages that train a network (train, classifier) it counts the floating-point
operations of their matrix products from params.yaml (every weight needs its forward and
backward products, whatever the code), and measures here, in this process, the two things no
float32 code can go below:

- the CPU's float32 matrix-multiply peak (the fastest of several 4096² products), and
- one fused Adam step of each model, its gradients in place (the optimiser streams every
  parameter, gradient and moment once per step; its fastest time is the memory's pace).

A stage's floor is then its measured start-up (from the pipeline benchmark's medians) + its
products at the peak + its Adam steps at their fastest: what remains if everything else
(element-wise ops, autograd, Python, the noise of a shared machine) took no time at all. The
other stages count at their measured start-up, as if their work took no time, and DVC's own
work at nothing, so the sum is generous: below it, no float32 code runs this pipeline.

The pipeline benchmark's result must have timed the stages of this commit's dvc.yaml. The floor
records this commit, its stages and this machine (benchmarks/provenance.py), and under
`pipeline` the commit and stages that result timed.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from provenance import provenance  # this folder, as `python benchmarks/...` runs it
from train_speed import (
    forward_flops,
    matmul_peak,
    timed,
    training_flops,
    vae_layers,
)

from mnist_vae.atomic import write_json
from mnist_vae.classifier import Classifier
from mnist_vae.loops import FusedAdam
from mnist_vae.machine import label
from mnist_vae.model import VAE
from mnist_vae.params import Params, load_params
from mnist_vae.runtime import configure_threads

REPO = Path(__file__).resolve().parents[1]
TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000  # MNIST's splits
TRAINING = ("train", "classifier")


def stage_flops(params: Params) -> dict[str, int]:
    """The matrix products' floating-point operations of each training stage."""
    model, judge = params.model, params.classifier
    vae = vae_layers(model.hidden_dims, model.latent_dim)
    judge_layers = [(784, judge.hidden_dim), (judge.hidden_dim, judge.hidden_dim),
                    (judge.hidden_dim, 10)]  # fmt: skip
    # Every training epoch is followed by the test set's ELBO; the trained classifier then
    # classifies the test set.
    epoch = TRAIN_IMAGES * training_flops(vae) + TEST_IMAGES * forward_flops(vae)
    judging = judge.epochs * TRAIN_IMAGES * training_flops(judge_layers)
    return {
        "train": params.train.epochs * epoch,
        "classifier": judging + TEST_IMAGES * forward_flops(judge_layers),
    }


def fastest_adam_step(model: torch.nn.Module, repeats: int = 50) -> float:
    optimizer = FusedAdam(model.parameters(), lr=1e-3)
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter)
    return min(timed(torch.device("cpu"), optimizer.step)[0] for _ in range(repeats))


def adam_seconds(params: Params) -> dict[str, float]:
    """Each training stage's optimiser steps, each at the fastest step measured here."""
    steps = {
        name: section.epochs * math.ceil(TRAIN_IMAGES / section.batch_size)
        for name, section in (("train", params.train), ("classifier", params.classifier))
    }
    return {
        "train": steps["train"] * fastest_adam_step(VAE(**params.model.model_dump())),
        "classifier": steps["classifier"]
        * fastest_adam_step(Classifier(params.classifier.hidden_dim)),
    }


def floors(medians: list[dict], flops: dict, peak_gflops: float, adam: dict) -> dict:
    """Per stage, from the pipeline benchmark's `medians`: the floor in seconds and, for the
    training stages, the share of the peak their computing part (all but start-up) reaches."""
    rows = []
    for measured in medians:
        step = measured["step"]
        if step == "dvc repro -f":
            continue
        startup = measured["after_startup_seconds"]
        row = {"step": step, "measured_seconds": measured["after_seconds"],
               "startup_seconds": startup, "floor_seconds": startup}  # fmt: skip
        if step in TRAINING:
            at_peak = flops[step] / (peak_gflops * 1e9)
            row |= {
                "gflop": round(flops[step] / 1e9),
                "products_at_peak_seconds": round(at_peak, 2),
                "adam_at_fastest_seconds": round(adam[step], 2),
                "floor_seconds": round(startup + at_peak + adam[step], 2),
                "share_of_peak": round(at_peak / (measured["after_seconds"] - startup), 2),
            }
        rows.append(row)
    repro = next(m for m in medians if m["step"] == "dvc repro -f")
    return {
        "stages": rows,
        "pipeline": {
            "measured_dvc_repro_seconds": repro["after_seconds"],
            "floor_seconds": round(sum(row["floor_seconds"] for row in rows), 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", type=Path, required=True, help="pipeline_speed.py's JSON")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    pipeline = json.loads(args.pipeline.read_text())
    measured_here = provenance("cpu", whole_pipeline=True)
    if pipeline.get("pipeline_stages") != measured_here["pipeline_stages"]:
        raise SystemExit(
            f"{args.pipeline} timed the stages {pipeline.get('pipeline_stages', '(not recorded)')}"
            f", not this commit's {measured_here['pipeline_stages']}: run pipeline_speed.py first"
        )
    params = load_params(args.params)

    configure_threads()
    peak = max(matmul_peak(torch.device("cpu")) for _ in range(3))
    table = floors(pipeline["medians"], stage_flops(params), peak, adam_seconds(params))
    summary = {**measured_here, "matmul_peak_gflops": round(peak), **table}
    summary["pipeline"] |= {key: pipeline[key] for key in ("commit", "pipeline_stages")}

    print(
        f"{label(summary['machine'])}, float32 matmul peak {summary['matmul_peak_gflops']} GFLOP/s"
    )
    columns = ["step", "measured_seconds", "startup_seconds", "products_at_peak_seconds",
               "adam_at_fastest_seconds", "floor_seconds", "share_of_peak"]  # fmt: skip
    print(" | ".join(columns))
    for row in table["stages"]:
        print(" | ".join(str(row.get(column, "")) for column in columns))
    total = table["pipeline"]
    print(f"dvc repro -f: measured {total['measured_dvc_repro_seconds']} s, "
          f"floor {total['floor_seconds']} s")  # fmt: skip
    if args.out:
        write_json(args.out, summary)


if __name__ == "__main__":
    main()
