"""Where and how stages compute: the CPU threads they take, and how training shares a busy CPU."""

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mnist_vae import runtime
from mnist_vae.runtime import DeviceError, FairThreads, resolve_device, stage_threads
from mnist_vae.training import threads_used

LINUX = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc/stat")


@pytest.fixture
def threads_restored():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_omp_num_threads_is_the_stages_count_as_in_any_pytorch_program(monkeypatch):
    monkeypatch.setattr(runtime, "TORCH_THREADS", 3)  # what torch read from OMP_NUM_THREADS=3
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    assert stage_threads() == 3  # the user's word, even above the cores
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert stage_threads() == 2  # torch's default, but no more than the cores we may use
    monkeypatch.setattr(runtime, "usable_cores", lambda: 8)
    assert stage_threads() == 3


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="needs CPU affinity (Linux)")
def test_usable_cores_are_the_affinity_mask_not_every_cpu():
    one = sorted(os.sched_getaffinity(0))[0]
    script = "from mnist_vae.runtime import usable_cores; print(usable_cores())"
    pinned = subprocess.run(
        [sys.executable, "-c", script],
        preexec_fn=lambda: os.sched_setaffinity(0, {one}),
        capture_output=True,
        text=True,
        check=True,
    )
    assert pinned.stdout.strip() == "1"


def test_a_cuda_index_beyond_the_devices_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(DeviceError, match=r"^device 'cuda:1' requested but only 1 CUDA device"):
        resolve_device("cuda:1")


class _Machine:
    """Stands in for /proc/stat and the clock: others keep `busy` cores busy per second."""

    def __init__(self, monkeypatch):
        self.now, self.busy_seconds, self.busy = 100.0, 0.0, 0.0
        monkeypatch.setattr(runtime, "_busy_cpu_seconds", lambda cpus: self.busy_seconds)
        monkeypatch.setattr(runtime.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(runtime.time, "process_time", lambda: 0.0)

    def run(self, seconds: float, busy: float) -> None:
        self.now += seconds
        self.busy_seconds += seconds * busy


@pytest.fixture
def two_free_cores(monkeypatch, threads_restored):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "TORCH_THREADS", 2)
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    torch.set_num_threads(2)
    return _Machine(monkeypatch)


@LINUX
def test_training_gives_a_busy_core_back_and_takes_it_again_when_it_is_free(two_free_cores, caplog):
    machine, share = two_free_cores, FairThreads()
    caplog.set_level(logging.INFO, logger="mnist_vae.runtime")
    machine.run(1.0, busy=0.1)  # a quiet machine: nothing changes, nothing is said
    share.adjust(None)
    assert torch.get_num_threads() == 2 and not caplog.messages
    machine.run(2.0, busy=1.2)  # another process takes a core
    share.adjust(2.0)
    assert torch.get_num_threads() == 1
    assert caplog.messages[-1].startswith("other processes keep 1 of the 2 cores busy: training")
    assert "OMP_NUM_THREADS=2 keeps 2 threads" in caplog.messages[-1]
    machine.run(0.1, busy=0.0)  # too short a span to tell: nothing changes
    share.adjust(0.1)
    assert torch.get_num_threads() == 1
    machine.run(2.0, busy=0.2)  # it is gone
    share.adjust(2.0)
    assert torch.get_num_threads() == 2
    assert caplog.messages[-1] == "the cores are free again: training goes on with 2 threads"
    assert len(caplog.messages) == 2


@LINUX
def test_with_omp_num_threads_set_the_threads_stay_and_a_slow_epoch_is_said_once(
    two_free_cores, monkeypatch, caplog
):
    machine = two_free_cores
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    share = FairThreads()
    caplog.set_level(logging.INFO, logger="mnist_vae.runtime")
    for seconds in (1.8, 1.7, 2.0, 31.0, 29.0):
        machine.run(seconds, busy=1.0)
        share.adjust(seconds)
        assert torch.get_num_threads() == 2
    assert caplog.messages == [
        "an epoch took 31.0 s, 18 times this run's fastest: another process is competing for "
        "the CPU; stop it, or unset OMP_NUM_THREADS (now 2) so that training adapts"
    ]


@LINUX
@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs two cores to give one back",
)
def test_beside_a_real_busy_process_training_takes_a_thread_fewer(monkeypatch, threads_restored):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    most = min(len(os.sched_getaffinity(0)), 4)
    monkeypatch.setattr(runtime, "TORCH_THREADS", most)
    torch.set_num_threads(most)
    share = FairThreads()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1)  # a span to measure, not a deadline
        share.adjust(None)
    finally:
        spinner.kill()
        spinner.wait()
    assert torch.get_num_threads() < most


def test_a_runs_threads_are_one_count_or_each_count_with_its_epochs():
    rows = [{"epoch": epoch, "threads": 2} for epoch in (1, 2, 3)]
    assert threads_used(rows) == 2
    rows += [{"epoch": 4, "threads": 1}, {"epoch": 5, "threads": 2}]
    assert threads_used(rows) == "2 (epochs 1-3), 1 (epoch 4), 2 (epoch 5)"
