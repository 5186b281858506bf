"""What happens when things go wrong, through DVC, the way a user meets it.

Each case starts from a tiny repo in which `dvc repro` has run every stage and was committed,
makes the mistake a user would make, runs `dvc repro` (or `dvc exp run`), and checks that DVC
stops with our one-line message and that every output of every stage (data, models, metrics,
plots, dvc.lock) is byte-identical afterwards, with nothing left in git's status but the
user's own edit.
"""

import codecs
import contextlib
import errno
import os
import re
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import yaml
from conftest import write_idx

from mnist_vae.idx import MNIST_FILES, raw_dir

pytestmark = pytest.mark.e2e

# Seconds a test waits for a process that should stop. Only a hang takes that long: nothing
# here measures how fast anything is.
HANG = 600


def _temp_files(root):
    return [p for p in root.rglob(".*.tmp")]


def _assert_nothing_lost(repo, before, edited=("params.yaml",)):
    assert repo.outputs() == before
    assert _temp_files(repo.root) == []
    assert sorted(repo.git_status()) == sorted(f" M {name}" for name in edited)


def _one_error_line(stderr: str, stage: str) -> str:
    ours = [line for line in stderr.splitlines() if line.startswith(f"[{stage}] error:")]
    assert len(ours) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return ours[0]


def test_a_params_typo_anywhere_stops_the_first_stage_before_any_work(reproduced_repo):
    # train reruns (its epochs changed); the typo is in a section only the last stage reads.
    before = reproduced_repo.outputs()
    reproduced_repo.set_params({"train": {"epochs": 2}})
    params = reproduced_repo.root / "params.yaml"
    params.write_text(params.read_text().replace("test_images: 64", "test_image: 64", 1))
    result = reproduced_repo.run("dvc", "repro", check=False)
    assert result.returncode != 0
    assert _one_error_line(result.stderr, "train") == (
        "[train] error: params.yaml: evaluate_likelihood: unknown key 'test_image'; did you "
        "mean 'test_images'? (known keys: ks, seed, test_images)"
    )
    assert "Running stage 'classifier'" not in result.stdout
    _assert_nothing_lost(reproduced_repo, before)


def _file_size_limit(size: int):
    """For preexec_fn: no file written by the child or its children grows past `size` bytes
    (RLIMIT_FSIZE, in bytes here, unlike `ulimit -f`, whose blocks are 512 bytes in dash and
    1024 in bash)."""
    import resource

    def limit() -> None:
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))

    return limit


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_a_write_that_fails_is_one_line_naming_the_file_and_loses_nothing(reproduced_repo):
    # A file-size limit stands in for a full disk: 1 MiB leaves room for DVC's own state
    # files, not for a VAE with 400 hidden units (2.5 MB).
    before = reproduced_repo.outputs()
    reproduced_repo.set_params({"model": {"hidden_dims": [400]}})
    result = subprocess.run(
        ["dvc", "repro", "train"], cwd=reproduced_repo.root, env=reproduced_repo.env,
        capture_output=True, text=True, preexec_fn=_file_size_limit(2**20),
    )  # fmt: skip
    assert result.returncode != 0
    assert _one_error_line(result.stderr, "train") == (
        f"[train] error: cannot write models/vae.pt: {os.strerror(errno.EFBIG)}"
    )
    _assert_nothing_lost(reproduced_repo, before)


def test_a_failed_workspace_experiment_loses_nothing(reproduced_repo):
    before = reproduced_repo.outputs()
    result = reproduced_repo.run("dvc", "exp", "run", "-S", "train.lr=1e12", check=False)
    assert result.returncode != 0
    line = _one_error_line(result.stderr, "train")
    assert re.fullmatch(
        r"\[train\] error: epoch \d+: the training loss became (nan|inf); "
        r"try a smaller train.lr \(now 1000000000000.0\)",
        line,
    ), line
    _assert_nothing_lost(reproduced_repo, before)
    assert reproduced_repo.run("dvc", "exp", "list", "--name-only").stdout.strip() == ""


def _assert_only_the_data_changed(repo, corrupted):
    """After bad data: every output as it was. The frozen stand-in for `download` records the
    new data in dvc.lock (outside the tests, `download` would find the bad file and fetch a
    verified one); no other stage's entry may change."""
    after = repo.outputs()
    old_lock, new_lock = (yaml.safe_load(d.pop("dvc.lock"))["stages"] for d in (corrupted, after))
    assert new_lock.pop("download") != old_lock.pop("download")
    assert new_lock == old_lock
    assert after == corrupted
    assert _temp_files(repo.root) == []
    assert repo.git_status() == [" M dvc.lock"]  # that download entry


def test_bad_data_is_refused_naming_the_file_and_loses_nothing(reproduced_repo):
    labels = raw_dir(reproduced_repo.root / "data") / MNIST_FILES["train_labels"].name
    write_idx(labels, np.full(512, 12, np.uint8))
    corrupted = reproduced_repo.outputs()
    result = reproduced_repo.run("dvc", "repro", check=False)
    assert result.returncode != 0
    line = _one_error_line(result.stderr, "train")
    assert str(labels.relative_to(reproduced_repo.root)) in line and "found 12" in line
    _assert_only_the_data_changed(reproduced_repo, corrupted)


def test_an_empty_training_set_is_refused_and_loses_nothing(reproduced_repo):
    folder = raw_dir(reproduced_repo.root / "data")
    write_idx(folder / MNIST_FILES["train_images"].name, np.zeros((0, 28, 28), np.uint8))
    write_idx(folder / MNIST_FILES["train_labels"].name, np.zeros(0, np.uint8))
    corrupted = reproduced_repo.outputs()
    result = reproduced_repo.run("dvc", "repro", "classifier", check=False)
    assert result.returncode != 0
    assert "the train split is empty" in _one_error_line(result.stderr, "classifier")
    _assert_only_the_data_changed(reproduced_repo, corrupted)


def _interpreter_without_the_packages(tmp_path):
    """A `python` first on PATH that is not the venv's: the venv's interpreter without its
    site-packages (-S), as a user without the venv activated gets."""
    folder = tmp_path / "other-python"
    folder.mkdir()
    wrapper = folder / "python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    wrapper.chmod(0o755)
    return folder


@pytest.mark.posix
def test_the_wrong_python_on_path_stops_in_one_line_and_loses_nothing(reproduced_repo, tmp_path):
    before = reproduced_repo.outputs()
    reproduced_repo.set_params({"train": {"epochs": 2}})
    path = f"{_interpreter_without_the_packages(tmp_path)}{os.pathsep}{os.environ['PATH']}"
    dvc = str(sys.exec_prefix) + "/bin/dvc"  # `.venv/bin/dvc repro`, venv not activated
    result = reproduced_repo.run(dvc, "repro", check=False, PATH=path)
    assert result.returncode != 0
    line = _one_error_line(result.stderr, "train")
    assert "cannot import torch" in line and "activate the project's venv" in line
    _assert_nothing_lost(reproduced_repo, before)


@pytest.mark.posix
def test_no_python_on_path_at_all_loses_nothing(reproduced_repo, tmp_path):
    before = reproduced_repo.outputs()
    reproduced_repo.set_params({"train": {"epochs": 2}})
    empty = tmp_path / "no-python"
    empty.mkdir()
    git = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    (empty / "git").symlink_to(git)
    dvc = str(sys.exec_prefix) + "/bin/dvc"
    result = reproduced_repo.run(dvc, "repro", check=False, PATH=str(empty))
    assert result.returncode != 0
    assert "exited with 127" in result.stderr
    _assert_nothing_lost(reproduced_repo, before)


class _Stderr:
    """A child's stderr, read on a thread as it comes, so a test can wait for some text, or
    for every writer to have closed it, with a deadline."""

    def __init__(self, stream):
        self.text, self.closed = "", False
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream.fileno(),), daemon=True)
        self.thread.start()

    def _read(self, fd: int) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while chunk := os.read(fd, 1 << 16):
            with self.changed:
                self.text += decoder.decode(chunk)
                self.changed.notify_all()
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def wait_for(self, text: str) -> bool:
        """Whether `text` came before every writer closed the stream and before the deadline."""
        with self.changed:
            self.changed.wait_for(lambda: text in self.text or self.closed, HANG)
            return text in self.text

    def wait_closed(self) -> bool:
        """Whether every process writing to it (DVC and its stage) exited before the deadline."""
        with self.changed:
            return self.changed.wait_for(lambda: self.closed, HANG)


def _start_long_training(repo, **env: str) -> tuple[subprocess.Popen, _Stderr]:
    repo.set_params({"train": {"epochs": 100_000}})
    process = subprocess.Popen(
        ["dvc", "repro", "train"],
        cwd=repo.root,
        env={**repo.env, **env},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        # Its own process group, as a terminal's foreground job; and SIGINT at its default (a
        # test runner started in the background, as in CI, passes it on as ignored).
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    stderr = _Stderr(process.stderr)
    if not stderr.wait_for("train on cpu"):  # the epoch bar: training has started
        _kill_group(process)
        pytest.fail(stderr.text)
    return process, stderr


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL to DVC's process group: never leave a 100,000-epoch run behind a failure."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.posix
@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm-to-the-group"]
)
def test_an_interrupted_repro_stops_and_loses_nothing(reproduced_repo, signum):
    before = reproduced_repo.outputs()
    process, stderr = _start_long_training(reproduced_repo)
    try:
        os.killpg(process.pid, signum)  # what Ctrl-C in a terminal, or `kill -TERM -PGID`, does
        stopped = stderr.wait_closed()  # DVC and its stage have exited
    finally:
        _kill_group(process)
    assert stopped, f"still running {HANG} s after the signal:\n{stderr.text}"
    assert "[train] interrupted; no output was changed" in stderr.text
    assert "Traceback" not in stderr.text
    _assert_nothing_lost(reproduced_repo, before)
    assert reproduced_repo.run("dvc", "status", "train").returncode == 0  # no stale lock


@pytest.mark.posix
def test_killing_dvc_alone_stops_its_stage_and_loses_nothing(reproduced_repo):
    before = reproduced_repo.outputs()
    # DVC runs the command through $SHELL (/bin/sh without it). bash runs a lone command in
    # its own process, so the stage's parent is DVC itself; dash forks, and then the stage
    # outlives DVC (docs/failures.md). So this case is checked with the user's usual bash.
    process, stderr = _start_long_training(reproduced_repo, SHELL="/bin/bash")
    try:
        process.kill()  # DVC dies; its stage must not train on unobserved and write results
        stopped = stderr.wait_closed()  # the stage, which shares DVC's stderr, has exited
    finally:
        _kill_group(process)
    assert stopped, f"the stage outlived DVC by {HANG} s:\n{stderr.text}"
    assert "[train] interrupted; no output was changed" in stderr.text
    _assert_nothing_lost(reproduced_repo, before)


def test_cuda_on_a_machine_without_it_stops_in_one_line(reproduced_repo):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    before = reproduced_repo.outputs()
    reproduced_repo.set_params({"device": "cuda"})
    result = reproduced_repo.run("dvc", "repro", check=False)
    assert result.returncode != 0
    assert _one_error_line(result.stderr, "train").startswith(
        "[train] error: device 'cuda' requested but this machine has no usable CUDA"
    )
    _assert_nothing_lost(reproduced_repo, before)


def test_a_model_trained_with_other_params_is_refused_by_the_stages_that_use_it(reproduced_repo):
    before = reproduced_repo.outputs()
    reproduced_repo.set_params({"model": {"hidden_dims": [64]}})
    # --single-item: run interpolate alone, against the model that `train` made with 32 units
    result = reproduced_repo.run("dvc", "repro", "--single-item", "interpolate", check=False)
    assert result.returncode != 0
    assert "hidden_dims: file has [32], params.yaml has [64]" in _one_error_line(
        result.stderr, "interpolate"
    )
    _assert_nothing_lost(reproduced_repo, before)


@pytest.mark.posix
def test_sigterm_mid_write_keeps_the_previous_output_and_no_temp_file(tmp_path):
    """The one moment DVC cannot reach on purpose: a signal while a file is half written."""
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
    assert result.stderr.strip() == "[demo] interrupted; no output was changed"
    assert (tmp_path / "out.txt").read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
