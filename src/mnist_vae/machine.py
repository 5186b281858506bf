"""One description of a machine, for CI's reproduction check and for every benchmark.

Two runs of the pipeline with the same params and seed give the same bytes only where all of
`BIT_FIELDS` agree: the CPU and its instruction set pick the matrix-multiply kernels, the
library versions pick the code (matplotlib also writes its version into every PNG), `MKL_CBWR`
or torch's CPU-capability override change the kernels on the same CPU, and the stages' CPU
threads (`runtime.stage_threads`) change the bits on some CPUs too (docs/reproducibility.md,
docs/study.md). The cores are described, not compared: the threads are what they decide.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

import torch

from mnist_vae.runtime import cpu_info, stage_threads, usable_cores

LIBRARIES = ("torch", "numpy", "pandas", "matplotlib", "pillow")
SETTINGS = ("MKL_CBWR", "ATEN_CPU_CAPABILITY")  # environment settings that change the bits
BIT_FIELDS = (
    "os",
    "architecture",
    "cpu_vendor",
    "cpu_model",
    "cpu_capability",
    "python",
    *LIBRARIES,
    *SETTINGS,
    "device",
    "threads",
)


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "absent"


def describe(device: str = "cpu", threads: int | str | None = None) -> dict[str, str | int]:
    """This machine, as `BIT_FIELDS` and its cores; `device` as `runtime.describe_device`
    names the device the work ran on ('cpu', 'mps', 'cuda:0 (NVIDIA H100 80GB HBM3)'),
    `threads` the CPU threads it ran with (by default, those a stage here would use)."""
    info = cpu_info()  # Linux; elsewhere the platform module's names
    return {
        "os": platform.system(),
        "architecture": platform.machine(),
        "cpu_vendor": info.get("vendor_id") or platform.processor() or "unknown",
        "cpu_model": info.get("model name") or platform.processor() or "unknown",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        **{name: _version(name) for name in LIBRARIES},
        "torch": torch.__version__,  # with its build: 2.14.1+cu130 and 2.14.1+cpu differ
        **{name: os.environ.get(name, "unset") for name in SETTINGS},
        "device": device,
        "threads": stage_threads() if threads is None else threads,
        "cores": usable_cores(),
    }


def differences(here: dict, reference: dict) -> list[str]:
    """The `BIT_FIELDS` in which two descriptions differ, as 'field: reference -> here'."""
    return [
        f"{field}: {reference.get(field, 'not recorded')} -> {here.get(field, 'not recorded')}"
        for field in BIT_FIELDS
        if here.get(field) != reference.get(field)
    ]


def label(description: dict) -> str:
    """A description in one line, for printing."""
    d = description
    return (
        f"{d['cpu_model']} ({d['cpu_vendor']}, {d['cpu_capability']}), {d['cores']} cores, "
        f"{d.get('threads', d['cores'])} threads, "  # records before threads had one per core
        f"{d['os']} {d['architecture']}, Python {d['python']}, torch {d['torch']}, "
        f"device {d['device']}"
    )
