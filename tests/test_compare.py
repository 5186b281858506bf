"""mnist_vae.compare: loss curves of git revisions and DVC experiments, read from git."""

import subprocess

import pytest
from PIL import Image

from mnist_vae import compare


def _git(root, *args):
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout.strip()  # fmt: skip


def _commit_run(root, epochs, losses):
    (root / "params.yaml").write_text(f"train:\n  epochs: {epochs}\n")
    (root / "metrics").mkdir(exist_ok=True)
    rows = "".join(f"{i + 1},{train},{test}\n" for i, (train, test) in enumerate(losses))
    (root / "metrics/loss.csv").write_text("epoch,train_loss,test_loss\n" + rows)
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "run")
    return _git(root, "rev-parse", "HEAD")


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A git repo with a committed 2-epoch run, and a 3-epoch run kept only as an experiment
    ref, where `dvc exp run` keeps one (refs/exps/<xx>/<baseline>/<name>)."""
    _git(tmp_path, "init", "-q")
    _commit_run(tmp_path, 2, [(170.0, 168.0), (165.0, 164.0)])
    experiment = _commit_run(tmp_path, 3, [(170.0, 168.0), (165.0, 164.0), (161.0, 162.5)])
    _git(tmp_path, "update-ref", "refs/exps/ab/cdef0123/more-epochs", experiment)
    _git(tmp_path, "reset", "-q", "--hard", "HEAD~1")  # the experiment is on no branch
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_revisions_and_experiment_names_give_their_own_curves_and_epochs(runs):
    histories = compare.loss_histories(["HEAD", "more-epochs"])
    assert list(histories) == ["HEAD (2 epochs)", "more-epochs (3 epochs)"]
    assert histories["HEAD (2 epochs)"]["test_loss"].tolist() == [168.0, 164.0]
    assert histories["more-epochs (3 epochs)"]["test_loss"].tolist() == [168.0, 164.0, 162.5]


def test_the_comparison_is_written_as_a_png(runs, capsys):
    compare.main(["HEAD", "more-epochs", "--out", "plots/comparison.png"])
    with Image.open(runs / "plots/comparison.png") as image:
        assert image.format == "PNG" and image.size == (720, 460)
    assert "wrote plots/comparison.png" in capsys.readouterr().err


def test_an_unknown_name_is_one_line(runs):
    with pytest.raises(SystemExit, match="'nope' is neither a git revision nor a DVC experiment"):
        compare.loss_histories(["nope"])
