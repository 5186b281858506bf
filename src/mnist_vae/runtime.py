"""Where and how a stage computes: its params, the device, CPU threads."""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import torch

from mnist_vae.errors import UserError
from mnist_vae.params import Params, load_params

log = logging.getLogger(__name__)


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


def _busy_cpu_seconds(cpus: set[int]) -> float:
    """CPU seconds spent on `cpus` since boot by every process, from Linux's /proc/stat: all
    but idle and I/O wait, time a hypervisor stole for other machines included."""
    busy = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *ticks = line.split()
        if name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, ticks[:8])
            busy += user + nice + system + irq + softirq + steal
    return busy / os.sysconf("SC_CLK_TCK")


class FairThreads:
    """CPU threads for a training loop that shares the machine fairly.

    torch's threads wait for each other at every operation, spinning; beside another busy
    process one of them is always waiting for a core, and the others spin until it gets one
    (benchmarks/contention.py measures what that costs, docs/speed.md shows it). So
    between epochs this reads how many of our cores other processes kept busy since the last
    reading (/proc/stat, less our own CPU time) and trains on the cores they left: one fewer
    thread per busy core, at least one, at most `stage_threads()`. A quiet machine keeps
    `stage_threads()` and its bits. `OMP_NUM_THREADS`, where set, is kept as set.

    Either way, one line says when an epoch ran several times slower than this run's
    fastest, which with fixed threads means another process is competing for the CPU.
    """

    SLOW = 3  # an epoch this many times the fastest is news

    def __init__(self) -> None:
        self.most = stage_threads()
        self.fixed = (
            os.environ.get("OMP_NUM_THREADS", "").isdigit() or not Path("/proc/stat").exists()
        )
        self.cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        self._last = self._reading()
        self.fastest, self.warned = float("inf"), False

    def _reading(self) -> tuple[float, float, float]:
        if self.fixed:
            return 0.0, 0.0, 0.0
        return time.monotonic(), _busy_cpu_seconds(self.cpus), time.process_time()

    def others(self) -> float | None:
        """Cores other processes kept busy, on average, since the last reading; None for a
        span too short to tell (/proc/stat counts in hundredths of a second)."""
        then, now = self._last, self._reading()
        seconds = now[0] - then[0]
        if seconds < 0.25:
            return None
        self._last = now
        return max(0.0, (now[1] - then[1]) - (now[2] - then[2])) / seconds

    def adjust(self, last_epoch_seconds: float | None = None) -> None:
        """Set the threads for the next epoch, saying so (`log`) when they change, or when the
        last epoch ran `SLOW` times slower than this run's fastest at fixed threads."""
        current = torch.get_num_threads()
        threads = current
        if not self.fixed and (others := self.others()) is not None:
            busy = math.floor(others + 0.5)
            threads = max(1, min(self.most, len(self.cpus) - busy))
        if threads != current:
            torch.set_num_threads(threads)
            self.fastest = float("inf")  # another pace from here on
            if threads < self.most:
                log.info(
                    "other processes keep %d of the %d cores busy: training goes on with %d "
                    "threads instead of %d, so as not to wait for them (metrics/train.json "
                    "records it; the last bits differ from a quiet machine's, as on another "
                    "machine; OMP_NUM_THREADS=%d keeps %d threads)",
                    busy, len(self.cpus), threads, self.most, self.most, self.most,
                )  # fmt: skip
            else:
                log.info("the cores are free again: training goes on with %d threads", threads)
            return
        if last_epoch_seconds is None:
            return
        if last_epoch_seconds > self.SLOW * self.fastest and not self.warned:
            self.warned = True
            log.info(
                "an epoch took %.1f s, %.0f times this run's fastest: another process is "
                "competing for the CPU; stop it%s",
                last_epoch_seconds, last_epoch_seconds / self.fastest,
                f", or unset OMP_NUM_THREADS (now {current}) so that training adapts"
                if self.fixed and "OMP_NUM_THREADS" in os.environ else "",
            )  # fmt: skip
        self.fastest = min(self.fastest, last_epoch_seconds)


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
