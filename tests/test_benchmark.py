"""The speed benchmark runs end to end and reports consistent figures (not how fast: that is
the benchmark's job, on a quiet machine)."""

import json
import subprocess
import sys

from conftest import REPO_ROOT


def test_benchmark_times_both_loops_on_the_same_data(synthetic_root, tmp_path):
    out = tmp_path / "speed.json"
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "train_speed.py"),
               "--device", "cpu", "--epochs", "2", "--batch-size", "64",
               "--data", str(synthetic_root), "--out", str(out)]  # fmt: skip
    printed = subprocess.run(command, check=True, capture_output=True, text=True).stdout

    summary = json.loads(out.read_text())
    examples, _, ours = summary["rows"]
    assert [row["loop"] for row in summary["rows"]] == ["pytorch-examples", "conventional", "ours"]
    for row in summary["rows"]:
        assert row["device"] == "cpu" and row["batch_size"] == 64 and row["cpu_threads"] >= 1
        assert 0 < row["seconds_per_epoch_min"] <= row["seconds_per_epoch_median"]
        # 512 synthetic training images, not MNIST's 60,000; the seconds are rounded to 1 ms.
        median = row["seconds_per_epoch_median"]
        assert (
            512 / (median + 5e-4) - 1
            <= row["images_per_second"]
            <= 512 / max(median - 5e-4, 1e-9) + 1
        )
        assert 0 < row["loss_after_first_epoch"] < 784 * 10  # a per-image loss in nats
        assert row["peak_rss_mb"] > 0 and row["peak_cuda_mb"] is None
        share = row["gflops_per_second"] / summary["matmul_peak_gflops"]
        assert abs(row["share_of_matmul_peak"] - share) < 1e-3 and 0 < share < 1.5
    ratio = examples["seconds_per_epoch_median"] / ours["seconds_per_epoch_median"]
    assert abs(summary["speedup_median"] - ratio) < 0.01
    fastest = examples["seconds_per_epoch_min"] / ours["seconds_per_epoch_min"]
    assert abs(summary["speedup_min"] - fastest) < 0.01
    assert f"{summary['speedup_median']}x by median epoch" in printed


def test_the_epoch_flop_count_is_the_products_of_the_layers():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench", REPO_ROOT / "benchmarks/train_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # One image: forward 2·(784·400 + 2·400·20 + 20·400 + 400·784) = 1,302,400; backward twice
    # that, less the first layer's input gradient 2·784·400 = 627,200.
    assert bench.epoch_flops(1) == 3 * 1_302_400 - 627_200
