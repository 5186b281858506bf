"""Where and how a stage computes: its params, the device, CPU threads."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mnist_vae.errors import UserError
from mnist_vae.params import Params, load_params


class DeviceError(UserError, RuntimeError):
    pass


def resolve_device(spec: str) -> torch.device:
    """'auto' → CUDA, else Apple's GPU (MPS), else the CPU; asking for one that is not there
    is an error."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(
            f"device 'mps' requested but this machine has no usable Apple GPU "
            f"(torch {torch.__version__}); set `device` in params.yaml to 'auto' or 'cpu'"
        )
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


def cpu_info() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo ('vendor_id', 'model name', ...): what
    benchmarks and the reproduction check name a machine by. Empty where there is no such file."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return {}
    first = cpuinfo.read_text().split("\n\n")[0]
    pairs = (line.split(":", 1) for line in first.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


# torch's own choice, read before anything here changes it: OMP_NUM_THREADS where set (PyTorch
# reads it at start), else the physical cores.
TORCH_THREADS = torch.get_num_threads()


def stage_threads() -> int:
    """The CPU threads a stage computes with: `OMP_NUM_THREADS` where the user set it, as in
    any PyTorch program; else torch's default, but no more than the cores this process may run
    on (a `taskset` or a container's CPU set). The count changes the last bits of the results
    on some CPUs (docs/reproducibility.md), so it is part of `mnist_vae.machine.describe()`."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return TORCH_THREADS
    return min(TORCH_THREADS, usable_cores())


def configure_threads() -> int:
    threads = stage_threads()
    torch.set_num_threads(threads)
    return threads


def synchronize(device: torch.device) -> None:
    """Wait for the device, so a timing is the work's own (GPUs run asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def describe_device(device: torch.device) -> str:
    """The device as metrics should name it: 'cpu' or 'cuda:0 (NVIDIA H100 80GB HBM3)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type


def stage_setup() -> tuple[Params, torch.device]:
    """A computing stage's params (the whole file, checked) and the device they name, with the
    CPU threads set (`stage_threads`)."""
    params = load_params()
    device = resolve_device(params.device)
    configure_threads()
    return params, device
