"""What the optimiser costs around its update: torch.optim.Adam(fused=True) against FusedAdam.

    python benchmarks/adam_step.py [--steps 300] [--processes 3] [--out FILE]

Both run the same fused kernel (`mnist_vae.loops.FusedAdam` calls it through
`torch.optim.adam.adam`), so the difference is what torch.optim's `Optimizer` adds:

- **building** the first optimizer in a fresh process, after `import torch` (torch.optim imports
  `torch._dynamo` there): `--processes` fresh pythons per optimizer, taking turns;
- **a step** (`zero_grad`, gradients put back, `step`) for each training stage's model from
  params.yaml: both optimizers in this process, taking turns in blocks of 10 steps, the median
  step of each. After the last step both models' weights must be equal bit for bit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from functools import partial
from pathlib import Path

import torch
from provenance import provenance  # this folder, as `python benchmarks/...` runs it
from train_speed import timed

from mnist_vae.atomic import write_json
from mnist_vae.classifier import Classifier
from mnist_vae.loops import FusedAdam
from mnist_vae.model import VAE
from mnist_vae.params import load_params
from mnist_vae.runtime import configure_threads

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")

OPTIMIZERS = {
    "torch.optim.Adam(fused=True)": lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True),
    "FusedAdam": lambda ps: FusedAdam(ps, lr=1e-3),
}


def build(name: str) -> None:
    """In a fresh process (`--build NAME`): print the milliseconds building optimizer NAME took,
    first thing after the imports, and whether that imported torch._dynamo."""
    assert "torch._dynamo" not in sys.modules
    model = torch.nn.Linear(3, 3)
    seconds, _ = timed(CPU, lambda: OPTIMIZERS[name](model.parameters()))
    print(json.dumps([seconds * 1e3, "torch._dynamo" in sys.modules]))


def building(processes: int) -> dict:
    """Each optimizer built in `processes` fresh processes, taking turns."""
    milliseconds = {name: [] for name in OPTIMIZERS}
    dynamo = {}
    for _ in range(processes):
        for name in OPTIMIZERS:
            printed = subprocess.run([sys.executable, __file__, "--build", name], check=True,
                                     capture_output=True, text=True).stdout  # fmt: skip
            took, dynamo[name] = json.loads(printed)
            milliseconds[name].append(round(took, 2))
    return {name: {"milliseconds_median": statistics.median(milliseconds[name]),
                   "milliseconds": milliseconds[name],
                   "imports_torch_dynamo": dynamo[name]} for name in OPTIMIZERS}  # fmt: skip


def step_with(optimizer, parameters: list[torch.Tensor], gradients: list[torch.Tensor]) -> None:
    """One optimiser step as a training loop takes it: gradients cleared, set, applied."""
    optimizer.zero_grad()
    for parameter, gradient in zip(parameters, gradients, strict=True):
        parameter.grad = gradient
    optimizer.step()


def stepping(make_model, steps: int) -> dict:
    """Median seconds of one step of each optimizer on its own copy of the model, the same
    gradients every step; and whether the two copies end bit for bit equal."""
    models, optimizers = {}, {}
    for name, make in OPTIMIZERS.items():
        torch.manual_seed(0)
        models[name] = make_model()
        optimizers[name] = make(models[name].parameters())
    gradients = [torch.randn_like(p) for p in models["FusedAdam"].parameters()]
    one_step = {
        name: partial(step_with, optimizers[name], list(models[name].parameters()), gradients)
        for name in OPTIMIZERS
    }
    seconds = {name: [] for name in OPTIMIZERS}
    for block in range(0, steps, 10):
        for name in OPTIMIZERS:
            for _ in range(block, min(block + 10, steps)):
                seconds[name].append(timed(CPU, one_step[name])[0])
    first, second = (list(m.parameters()) for m in models.values())
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    return {
        "step_microseconds_median": {name: round(m * 1e6) for name, m in medians.items()},
        "fused_adam_over_torch_optim": round(
            medians["torch.optim.Adam(fused=True)"] / medians["FusedAdam"], 2
        ),
        "same_weights": all(torch.equal(a, b) for a, b in zip(first, second, strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--build", choices=list(OPTIMIZERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        return build(args.build)
    params = load_params(args.params)

    summary = {
        **provenance("cpu"),
        "building": building(args.processes),
    }
    configure_threads()
    summary["stepping"] = {
        "train": stepping(lambda: VAE(**params.model.model_dump()), args.steps),
        "classifier": stepping(lambda: Classifier(params.classifier.hidden_dim), args.steps),
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        write_json(args.out, summary)


if __name__ == "__main__":
    main()
