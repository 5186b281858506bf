"""What happens when things go wrong: each protection, exercised the way a user would trip it."""

import signal
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.e2e


def _temp_files(root):
    return [p for p in root.rglob(".*.tmp")]


def test_sigterm_mid_write_keeps_the_previous_output_and_no_temp_file(tmp_path):
    (tmp_path / "out.txt").write_text("previous")
    script = (
        "import os, signal\n"
        "from mnist_vae.atomic import atomic_open\n"
        "from mnist_vae.cli import run_stage\n"
        "def main():\n"
        "    with atomic_open('out.txt') as handle:\n"
        "        handle.write('half of the new')\n"
        "        handle.flush()\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        handle.write(' and the rest')\n"
        "run_stage('demo', main)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 130
    assert "[demo] interrupted" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "out.txt").read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_ctrl_c_during_training_exits_promptly_and_loses_nothing(pipeline_repo):
    pipeline_repo.run("dvc", "repro", "train")
    root = pipeline_repo.root
    before = {
        p: (root / p).read_bytes()
        for p in ("metrics/loss.csv", "metrics/train.json", "models/vae.pt")
    }
    pipeline_repo.set_params({"train": {"epochs": 100_000}})
    process = subprocess.Popen(
        ["python", "stages/train.py"],
        cwd=root,
        env=pipeline_repo.env,
        stderr=subprocess.PIPE,
        text=True,
        # As in a terminal: a test runner started in the background (CI) passes SIGINT on as
        # ignored, and Python then never turns Ctrl-C into KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    received: list[str] = []
    reader = threading.Thread(
        target=lambda: received.extend(iter(lambda: process.stderr.read(1), "")), daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while "train on cpu" not in "".join(received):  # the epoch bar: training has started
            assert process.poll() is None and time.monotonic() < deadline, "".join(received)
            time.sleep(0.1)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        reader.join(timeout=10)
    finally:  # never leave a 100,000-epoch run behind a failed assertion
        process.kill()
        process.wait()
    stderr = "".join(received)
    assert time.monotonic() - sent < 5
    assert process.returncode == 130, stderr
    assert "[train] interrupted" in stderr and "Traceback" not in stderr
    assert {p: (root / p).read_bytes() for p in before} == before
    assert _temp_files(root) == []


def test_a_diverging_run_names_the_epoch_and_writes_no_model(pipeline_repo):
    pipeline_repo.set_params({"train": {"lr": 1e12, "epochs": 5}})
    result = pipeline_repo.run("python", "stages/train.py", check=False)
    assert result.returncode == 1
    assert "[train] error: epoch " in result.stderr and "the training loss became" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (pipeline_repo.root / "models/vae.pt").exists()
    assert not (pipeline_repo.root / "metrics/loss.csv").exists()


def test_a_params_mistake_stops_the_stage_before_any_output(pipeline_repo):
    params = pipeline_repo.root / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 3", "epoch: 3"))
    result = pipeline_repo.run("python", "stages/train.py", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "[train] error: params.yaml: train: unknown key 'epoch'; did you mean 'epochs'? "
        "(known keys: batch_size, epochs, lr, seed)"
    )
    assert not (pipeline_repo.root / "models/vae.pt").exists()


def test_a_model_trained_with_other_params_is_refused_by_the_stages_that_use_it(pipeline_repo):
    pipeline_repo.run("dvc", "repro", "train")
    pipeline_repo.set_params({"model": {"hidden_dim": 64}})
    result = pipeline_repo.run("python", "stages/interpolate.py", check=False)
    assert result.returncode == 1
    assert "hidden_dim: file has 32, params.yaml has 64" in result.stderr
    assert "Traceback" not in result.stderr
