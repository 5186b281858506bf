"""Loop pieces shared by both models: batches over in-memory data, the optimiser."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.adam import adam

EVAL_BATCH_SIZE = 2048


class FusedAdam:
    """Adam with torch's defaults (betas 0.9 and 0.999, eps 1e-8, no weight decay), updated by
    the fused kernel that `torch.optim.Adam(fused=True)` runs, through its functional form
    `torch.optim.adam.adam`: the same state, the same kernel, the same bits
    (tests/test_training.py compares them step by step).

    Why not torch.optim.Adam itself: building the first `torch.optim` optimizer imports
    `torch._dynamo` (a second of start-up in each training stage), and its `step` and
    `zero_grad` bookkeeping add a quarter to a third to each fused update in our loops
    (benchmarks/adam_step.py, docs/speed.md). The fused kernel replaces the unfused default's
    loop over tensors with one pass.
    """

    def __init__(self, parameters: Iterable[torch.nn.Parameter], lr: float):
        self.parameters = list(parameters)
        self.lr = lr
        self.exp_avgs = [torch.zeros_like(p) for p in self.parameters]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.parameters]
        # The fused kernel reads each parameter's step count as a float32 tensor on its device.
        self.steps = [torch.zeros((), device=p.device) for p in self.parameters]

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        # As torch.optim.Adam: a parameter without a gradient is left alone, its step count too.
        live = [i for i, p in enumerate(self.parameters) if p.grad is not None]
        adam(
            [self.parameters[i] for i in live],
            [self.parameters[i].grad for i in live],
            [self.exp_avgs[i] for i in live],
            [self.exp_avg_sqs[i] for i in live],
            [],
            [self.steps[i] for i in live],
            fused=True,
            amsgrad=False,
            beta1=0.9,
            beta2=0.999,
            lr=self.lr,
            weight_decay=0.0,
            eps=1e-8,
            maximize=False,
        )


def shuffled_batches(
    count: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> list[torch.Tensor]:
    """Index batches of one epoch: a seeded permutation (drawn on the CPU, so the order is the
    same on every device) cut into slices; the last batch may be smaller."""
    order = torch.randperm(count, generator=generator).to(device)
    return list(order.split(batch_size))
