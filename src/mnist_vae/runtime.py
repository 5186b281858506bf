"""Where and how a stage computes: device choice, CPU threads, seeding."""

from __future__ import annotations

import os

import torch


class DeviceError(RuntimeError):
    pass


def resolve_device(spec: str) -> torch.device:
    """'auto' → CUDA when present, else CPU; an explicit CUDA request without CUDA is an error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device '{spec}' requested but this machine has no usable CUDA "
                f"(torch {torch.__version__}); set `device` in params.yaml to 'auto' or 'cpu'"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device '{spec}' requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    return device


def usable_cores() -> int:
    """Cores this process may run on (respects taskset/cgroup affinity, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_threads() -> int:
    threads = usable_cores()
    torch.set_num_threads(threads)
    return threads


def describe_device(device: torch.device) -> str:
    """The device as metrics should name it: 'cpu' or 'cuda:0 (NVIDIA H100 80GB HBM3)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type
