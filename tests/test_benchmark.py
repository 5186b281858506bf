"""The speed benchmark runs end to end and reports consistent figures (not how fast: that is
the benchmark's job, on a quiet machine)."""

import json
import os
import re
import statistics
import subprocess
import sys

import pytest
import yaml
from conftest import REPO_ROOT, committed, run_benchmark

from mnist_vae.machine import BIT_FIELDS


@pytest.fixture
def params_file(tmp_path):
    """The committed params.yaml, which the benchmarks read for the stages' models."""
    path = tmp_path / "params.yaml"
    path.write_bytes(committed("params.yaml"))
    return path


@pytest.mark.e2e  # a benchmark script, whole, in its own process
def test_benchmark_times_the_loops_in_alternating_rounds(synthetic_root, tmp_path):
    out = tmp_path / "speed.json"
    printed = run_benchmark("train_speed", "--device", "cpu", "--epochs", "3", "--batch-size",
                            "64", "--flush-denormals", "--peak-size", "512",
                            "--data", str(synthetic_root), "--out", str(out))  # fmt: skip

    summary = json.loads(out.read_text())
    assert set(BIT_FIELDS) <= set(summary["machine"]) and summary["machine"]["device"] == "cpu"
    loops = ["pytorch-examples", "conventional", "ours", "flushed"]
    assert [row["loop"] for row in summary["rows"]] == [*loops[:3], "ours, denormals flushed"]
    rounds = summary["rounds"]
    assert len(rounds) == 3 and all(sorted(r["seconds"]) == sorted(loops) for r in rounds)
    # Each round starts with another loop, so no loop always runs first or last.
    assert [r["order"] for r in rounds] == [loops, loops[1:] + loops[:1], loops[2:] + loops[:2]]
    assert summary["matmul_peak_gflops"] > 0
    for loop, row in zip(loops, summary["rows"], strict=True):
        assert row["device"] == "cpu" and row["batch_size"] == 64 and row["cpu_threads"] >= 1
        assert 0 < row["seconds_per_epoch_min"] <= row["seconds_per_epoch_median"]
        assert 0 < row["loss_after_first_epoch"] < 784 * 10  # a per-image loss in nats
        assert row["peak_rss_mb"] > 0 and row["peak_cuda_mb"] is None
        assert len(row["weights_sha256"]) == 64, loop
    for key in ("speedup_median", "speedup_of_fastest_epochs", "flushed_over_eager_median"):
        assert summary[key] > 0, key
    assert isinstance(summary["flushed_same_weights"], bool)
    assert f"{summary['speedup_median']}x by median of the rounds' ratios" in printed


@pytest.mark.e2e  # a benchmark script, whole, with its busy processes
@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="keeps all cores but one busy: needs two",
)
def test_contention_runs_every_loop_quiet_and_beside_busy_processes(synthetic_root, tmp_path):
    out = tmp_path / "contention.json"
    run_benchmark("contention", "--rounds", "1", "--epochs", "1", "--data", str(synthetic_root),
                  "--out", str(out))  # fmt: skip
    summary = json.loads(out.read_text())
    assert set(BIT_FIELDS) <= set(summary["machine"])
    assert summary["busy_processes"] == len(os.sched_getaffinity(0)) - 1
    (measured,) = summary["rounds"]
    for condition in ("quiet", "busy"):
        for loop in ("adaptive", "fixed", "conventional"):
            assert len(measured[condition][loop]["seconds"]) == 1, (condition, loop)
    # Its busy processes are gone.
    spinning = subprocess.run(["pgrep", "-f", "while True: pass"], capture_output=True)
    assert spinning.stdout == b""


def test_contention_alternates_the_order_and_takes_medians_of_the_rounds(
    monkeypatch, capsys, tmp_path
):
    contention = _benchmark_module(monkeypatch, "contention")
    seconds = {"adaptive": 2.0, "fixed": 1.9, "conventional": 4.0}
    slower = {"adaptive": 1.5, "fixed": 18.0, "conventional": 11.0}
    calls, given = [], {}

    def run_worker(loop, condition, args):
        calls.append(f"{condition} {loop}")
        factor = slower[loop] if condition == "busy" else 1.0
        value = seconds[loop] * factor * (1 + 0.1 * len(calls) / 18)  # drifting, like a machine
        given.setdefault((condition, loop), []).append(value)
        return {"seconds": [value], "threads": [1], "median": value}

    monkeypatch.setattr(contention, "run_worker", run_worker)
    monkeypatch.setattr(contention, "usable_cores", lambda: 2)
    out = tmp_path / "contention.json"
    monkeypatch.setattr(sys, "argv", ["contention.py", "--rounds", "3", "--out", str(out)])
    contention.main()
    printed = capsys.readouterr().out
    summary = json.loads(out.read_text())
    for (condition, loop), values in given.items():
        median = summary["median_seconds_per_epoch"][condition][loop]
        assert median == pytest.approx(statistics.median(values), abs=1e-3)
    for loop in seconds:
        ratios = [b / q for b, q in zip(given[("busy", loop)], given[("quiet", loop)], strict=True)]
        expected = statistics.median(ratios)
        assert summary["slowdown_busy_over_quiet"][loop] == pytest.approx(expected, abs=1e-3)
    ratios = [
        a / f for a, f in zip(given[("quiet", "adaptive")], given[("quiet", "fixed")], strict=True)
    ]
    assert summary["adaptive_over_fixed_quiet"] == pytest.approx(
        statistics.median(ratios), abs=1e-3
    )
    loops = ["adaptive", "fixed", "conventional"]
    assert calls[:6] == [f"{c} {loop}" for c in ("quiet", "busy") for loop in loops]
    assert calls[6:12] == [
        f"{c} {loop}" for c in ("busy", "quiet") for loop in loops[1:] + loops[:1]
    ]
    assert calls[12:] == [
        f"{c} {loop}" for c in ("quiet", "busy") for loop in loops[2:] + loops[:2]
    ]
    assert "slowdown, busy / quiet:" in printed and "adapting loop / fixed loop, quiet:" in printed


def test_the_summary_is_the_arithmetic_of_the_rounds(monkeypatch):
    bench = _benchmark_module(monkeypatch, "train_speed")
    # Three rounds; pytorch-examples / ours is 3.0, 2.0 and 4.0 round by round (median 3.0),
    # while their fastest epochs are 8 s and 2 s (4.0): the two speed-ups differ on purpose.
    seconds = [
        {"pytorch-examples": 9.0, "conventional": 6.0, "ours": 3.0, "flushed": 3.0},
        {"pytorch-examples": 8.0, "conventional": 8.0, "ours": 4.0, "flushed": 2.0},
        {"pytorch-examples": 10.0, "conventional": 4.0, "ours": 2.5, "flushed": 5.0},
    ]
    rounds = [{"matmul_peak_gflops": peak, "order": [], "seconds": s}
              for peak, s in zip((100.0, 300.0, 200.0), seconds, strict=True)]  # fmt: skip
    rows = {}
    for loop, loss, digest in (("pytorch-examples", 170.0, "a"), ("conventional", 170.5, "b"),
                               ("ours", 169.75, "c"), ("flushed", 169.75, "c")):  # fmt: skip
        rows[loop] = {"loop": loop, "device": "cpu", "loss_after_first_epoch": loss,
                      "weights_sha256": digest}  # fmt: skip
        rows[loop].update(bench.epoch_figures([s[loop] for s in seconds], 600))
    assert rows["ours"]["seconds_per_epoch_min"] == 2.5
    assert rows["ours"]["seconds_per_epoch_median"] == 3.0
    assert rows["ours"]["images_per_second"] == 200  # 600 images in the median 3 s
    assert rows["ours"]["gflops_per_second"] == round(bench.epoch_flops(600) / 3.0 / 1e9, 1)

    summary = bench.summarise(rounds, rows)
    assert summary["matmul_peak_gflops"] == 200.0
    assert summary["speedup_median"] == 3.0
    assert summary["speedup_of_fastest_epochs"] == 3.2  # 8 s / 2.5 s
    assert summary["speedup_over_conventional_median"] == 2.0  # ratios 2.0, 2.0, 1.6
    assert summary["flushed_over_eager_median"] == 1.0  # ratios 1.0, 2.0, 0.5
    assert summary["flushed_same_weights"] is True
    assert summary["first_epoch_loss_difference"] == -0.25
    share = rows["ours"]["gflops_per_second"] / 200.0
    assert summary["rows"][2]["share_of_matmul_peak"] == round(share, 3)


def _benchmark_module(monkeypatch, name):
    import importlib

    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))  # they import each other
    return importlib.import_module(name)


def test_the_epoch_flop_count_is_the_products_of_the_layers(monkeypatch):
    bench = _benchmark_module(monkeypatch, "train_speed")
    # One image: forward 2·(784·400 + 2·400·20 + 20·400 + 400·784) = 1,302,400; backward twice
    # that, less the first layer's input gradient 2·784·400 = 627,200.
    assert bench.epoch_flops(1) == 3 * 1_302_400 - 627_200


def test_the_floor_counts_each_stages_products_from_params(monkeypatch):
    from mnist_vae.params import validate

    floor = _benchmark_module(monkeypatch, "pipeline_floor")
    training = {"epochs": 10, "batch_size": 128, "lr": 0.001, "seed": 1}
    raw = yaml.safe_load(committed("params.yaml"))  # the other sections as committed
    raw["model"] = {"hidden_dims": [400], "latent_dim": 2, "sigmoid_latent": True,
                    "likelihood": "bernoulli"}  # fmt: skip
    raw["train"] = {**training, "kl_warmup_epochs": 0, "patience": 0}
    raw["classifier"] = {**training, "epochs": 5, "hidden_dim": 512}
    params = validate(raw)
    flops = floor.stage_flops(params)
    # By hand. VAE 784-400-2: forward 2·(784·400 + 2·400·2 + 2·400 +
    # 400·784) = 1,259,200 per image; training 3× that less 2·784·400 = 3,150,400. An epoch is
    # 60,000 trained + 10,000 test images, 10 epochs.
    assert flops["train"] == 10 * (60_000 * 3_150_400 + 10_000 * 1_259_200)
    # Classifier 784-512-512-10: forward 1,337,344, training 3,209,216; 5 epochs, then the test set.
    assert flops["classifier"] == 5 * 60_000 * 3_209_216 + 10_000 * 1_337_344


def test_the_floor_adds_start_up_products_at_peak_and_adam(monkeypatch):
    floor = _benchmark_module(monkeypatch, "pipeline_floor")
    medians = [
        {"step": "download", "after_seconds": 0.3, "after_startup_seconds": 0.2},
        {"step": "train", "after_seconds": 12.0, "after_startup_seconds": 2.0},
        {"step": "classifier", "after_seconds": 7.0, "after_startup_seconds": 3.0},
        {"step": "evaluate_likelihood", "after_seconds": 8.0, "after_startup_seconds": 1.5},
        {"step": "dvc repro -f", "after_seconds": 25.0},
    ]
    flops = {"train": 400e9, "classifier": 200e9}
    adam = {"train": 1.5, "classifier": 0.5}
    table = floor.floors(medians, flops, peak_gflops=100, adam=adam)

    download, train, judge, bound = table["stages"]
    assert download == {"step": "download", "measured_seconds": 0.3, "startup_seconds": 0.2,
                        "floor_seconds": 0.2}  # fmt: skip
    assert train["products_at_peak_seconds"] == 4.0 and train["floor_seconds"] == 7.5
    assert train["share_of_peak"] == 0.4  # 4 s of products at the peak, in 10 s of computing
    assert judge["floor_seconds"] == 5.5 and judge["share_of_peak"] == 0.5
    assert bound == {"step": "evaluate_likelihood", "measured_seconds": 8.0,
                     "startup_seconds": 1.5, "floor_seconds": 1.5}  # fmt: skip
    assert table["pipeline"] == {"measured_dvc_repro_seconds": 25.0, "floor_seconds": 14.7}


@pytest.mark.e2e  # a benchmark script, whole, in its own process
def test_kernel_settings_hash_the_trained_weights_reproducibly(synthetic_root, params_file):
    def train(setting):
        output = run_benchmark("kernel_settings", "--only", setting, "--epochs", "1",
                               "--data", str(synthetic_root), "--params", str(params_file))  # fmt: skip
        return json.loads(output.strip().splitlines()[-1])

    first, again, one_thread = train("default"), train("default"), train("1 thread instead of 2")
    assert len(first["weights_sha256"]) == 64 and 0 < first["test_loss"] < 784 * 10
    # The same setting in another process trains the same bits: the table's "same bits as the
    # default" can only mean the setting.
    assert again["weights_sha256"] == first["weights_sha256"]
    assert again["test_loss"] == first["test_loss"]
    assert one_thread["threads"] == 1


@pytest.mark.e2e  # a benchmark script, whole, in its own process
def test_adam_step_compares_the_two_optimizers_on_the_stages_models(tmp_path, params_file):
    out = tmp_path / "adam.json"
    run_benchmark("adam_step", "--steps", "20", "--processes", "2", "--params", str(params_file),
                  "--out", str(out))  # fmt: skip
    summary = json.loads(out.read_text())

    built = summary["building"]
    assert built["torch.optim.Adam(fused=True)"]["imports_torch_dynamo"] is True
    assert built["FusedAdam"]["imports_torch_dynamo"] is False
    for row in built.values():
        assert len(row["milliseconds"]) == 2
        assert row["milliseconds_median"] == sum(row["milliseconds"]) / 2
    for stage in ("train", "classifier"):
        stepped = summary["stepping"][stage]
        assert stepped["same_weights"] is True
        medians = stepped["step_microseconds_median"]
        theirs, ours = medians["torch.optim.Adam(fused=True)"], medians["FusedAdam"]
        assert theirs > 0 and ours > 0
        # The script rounds the ratio to 2 decimals (±0.005) and the medians to whole µs: a
        # relative bound alone fails whenever one optimizer is far the slower (a busy core).
        ratio = stepped["fused_adam_over_torch_optim"]
        assert abs(ratio - theirs / ours) <= 0.005 + 0.01 * theirs / ours


def _usage(docstring: str) -> str:
    """The usage lines at the top of a benchmark's docstring: `python benchmarks/X.py [...]`
    and the lines that continue it."""
    lines = docstring.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith("python benchmarks/"))
    usage = [lines[first]]
    for line in lines[first + 1 :]:
        if not line.strip().startswith(("[", "--")):
            break
        usage.append(line)
    return "\n".join(usage)


SCRIPTS = sorted(p.stem for p in (REPO_ROOT / "benchmarks").glob("*.py") if "def main(" in p.read_text())  # fmt: skip


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_benchmark_takes_the_options_its_usage_shows_and_writes_out(
    monkeypatch, capsys, script
):
    # Its imports resolve, its argument parser builds, and the usage in its docstring (what a
    # reader copies) names only options it takes; every benchmark can write JSON (`--out`).
    module = _benchmark_module(monkeypatch, script)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", "--help"])
    with pytest.raises(SystemExit) as exited:
        module.main()
    assert exited.value.code == 0
    options = set(re.findall(r"--[\w-]+", capsys.readouterr().out))
    documented = set(re.findall(r"--[\w-]+", _usage(module.__doc__)))
    assert documented, script
    assert documented <= options, f"{script}: its usage shows {sorted(documented - options)}"
    assert "--out" in options, script
