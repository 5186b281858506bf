"""CI's reproduction check (.ci/check_reproduced.py): its tolerances name committed metrics,
and both of its paths judge, through DVC, in a tiny repository of the tests' own."""

import importlib.util
import json

import pytest
from conftest import REPO_ROOT


def check_module():
    spec = importlib.util.spec_from_file_location(
        "check_reproduced", REPO_ROOT / ".ci/check_reproduced.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_tolerance_names_a_committed_metric():
    # A misspelt key would never appear in `dvc metrics diff`, so it would pass as "identical"
    # on another machine whatever the metric did.
    assert check_module().unmatched() == []


def test_metric_keys_are_named_as_dvc_metrics_diff_names_them():
    keys = check_module().flat({"iwae": {"k1": -1.0, "k50": -0.5}, "accuracy": 0.9})
    assert keys == {"iwae.k1": -1.0, "iwae.k50": -0.5, "accuracy": 0.9}


def _check(repo, **env):
    return repo.run("python", ".ci/check_reproduced.py", check=False, **env)


@pytest.mark.e2e
def test_both_paths_pass_what_reproduces_and_fail_a_wrong_committed_loss(reproduced_repo):
    repo = reproduced_repo
    repo.run("python", ".ci/check_reproduced.py", "--record")  # this machine made the results
    repo.run("git", "commit", "-q", "--allow-empty", "-am", "the machine the results came from")
    other_machine = {"MKL_CBWR": "COMPATIBLE"}  # a setting known to change the bits

    same = _check(repo)
    assert (same.returncode, same.stdout) == (0, "reproduced: every committed output, byte for byte\n")  # fmt: skip
    other = _check(repo, **other_machine)
    assert other.returncode == 0, other.stdout
    assert other.stdout.startswith("another machine: MKL_CBWR: unset -> COMPATIBLE\n")
    assert "metrics/train.json test_loss" in other.stdout

    # A committed loss further from what the code gives than its tolerance, 0.5 nats.
    train = repo.root / "metrics/train.json"
    produced = train.read_text()
    wrong = json.loads(produced)
    wrong["test_loss"] += 0.6
    train.write_text(json.dumps(wrong))
    repo.commit("a committed loss that the code does not give")
    train.write_text(produced)  # what the pipeline writes, as dvc.lock records it
    assert repo.run("dvc", "status", "--json").stdout.strip() in ("", "{}")

    same = _check(repo)
    assert same.returncode == 1
    assert "this is the machine the committed results came from: they must match" in same.stdout
    other = _check(repo, **other_machine)
    assert other.returncode == 1
    assert "metrics/train.json test_loss" in other.stdout and "TOO FAR" in other.stdout


@pytest.mark.e2e
def test_a_run_on_other_threads_is_another_machine_judged_within_tolerance(reproduced_repo):
    """The committed run's threads are in its record; a run that trained on another count
    (another process kept a core busy, or OMP_NUM_THREADS said so) is judged as another
    machine's, never failed for its bits."""
    repo = reproduced_repo
    repo.run("python", ".ci/check_reproduced.py", "--record")
    repo.run("git", "commit", "-q", "--allow-empty", "-am", "the machine the results came from")
    recorded = json.loads((repo.root / ".ci/results-machine.json").read_text())["threads"]
    other = "2" if recorded == 1 else "1"
    repo.run("dvc", "repro", "-f", "train", OMP_NUM_THREADS=other)
    repo.run("dvc", "repro", OMP_NUM_THREADS=other)
    assert json.loads((repo.root / "metrics/train.json").read_text())["threads"] == int(other)
    result = _check(repo)
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith(f"another machine: threads: {recorded} -> {other}\n")
