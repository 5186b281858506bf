"""The seed study split between machines (clones) that share it through a bare git remote and
the S3 server, which fails under them: docs/study.md's miniature commands, run as written."""

import re
import subprocess

import pytest
import yaml
from conftest import PipelineRepo, documented_commands
from test_study import STUDY, pushed_experiments, refused, rows_are_the_experiments

from mnist_vae import study

pytestmark = pytest.mark.e2e

SHARE = ("--epochs", "1", "--seeds", "1")  # one experiment each: the report's, the standard VAE


def start(repo: PipelineRepo, command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=repo.root, env=repo.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def finish(process: subprocess.Popen) -> tuple[int, str]:
    """A worker's exit status and what it said; killed after a deadline that only a hang meets."""
    try:
        _, said = process.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return process.returncode, said


def pushed(said: str) -> list[str]:
    return sorted(re.findall(r"pushed (\S+) to origin", said))


def test_a_study_on_two_machines_survives_the_store_failing_and_a_third_clone_collects_it(
    shared_project, tmp_path
):
    """Two machines (clones) run their shares and push each experiment to the bare git remote
    and the S3 server. The server goes down while worker 1 trains: its push fails after DVC
    sent the git ref, so a collector finds the experiment without its model and says so. The
    same worker line again pushes it; a fresh clone then collects the study, and every
    experiment applied there is complete: model present, nothing to rerun."""
    s3 = shared_project.s3
    out = tmp_path / "collected"
    *shares, collect = documented_commands(
        "docs/study.md", "On several machines", {"/tmp/tiny-study": str(out)}, block=2
    )
    assert all(" ".join(SHARE) in " ".join(words) for words in (*shares, collect))
    workers = [shared_project.clone(tmp_path / f"worker-{k}") for k in (1, 2)]
    for worker in workers:
        worker.run("dvc", "pull")
    # Worker 2 was interrupted before: its experiment is still on its queue.
    workers[1].run("dvc", "exp", "run", "--queue", "--name", "study-standard-e1-s1",
                   "-S", "model.sigmoid_latent=false", "-S", "train.epochs=1",
                   "-S", "train.seed=1")  # fmt: skip
    code, said = finish(start(workers[1], shares[1]))
    assert code == 0, said
    assert "queued 0 experiments, 0 already done, 1 still on the queue" in said
    assert pushed(said) == ["study-standard-e1-s1"]

    try:
        worker = start(workers[0], shares[0])
        for line in worker.stderr:  # the store goes down once DVC's queue trains
            if line.startswith("DVC's queue runs them"):
                s3.stop()
                break
        code, said = finish(worker)
    finally:
        if s3.process is None:
            s3.start()  # the same data and ports
    assert code == 1
    assert (
        said.strip()
        .splitlines()[-1]
        .startswith("error: `dvc exp push` failed: ERROR: failed to push cache")
    ), said
    origin = PipelineRepo(shared_project.origin)
    refs = origin.run("git", "for-each-ref", "--format=%(refname:lstrip=-1)", "refs/exps").stdout
    assert "study-sigmoid_on_z-e1-s1" in refs.split()  # DVC pushed the git ref, then failed

    early = shared_project.clone(tmp_path / "early-collector")
    stopped = early.run(*collect, check=False)
    assert stopped.returncode == 1
    assert stopped.stderr.strip().splitlines()[-1] == (
        "error: 1 of 2 study experiments arrived without their models, which are on neither "
        "this machine nor the DVC remote: study-sigmoid_on_z-e1-s1 (worker 1/2); on each of "
        "those workers' machines run its line again, which pushes them: "
        "`python -m mnist_vae.study run --epochs 1 --seeds 1 --worker 1/2`"
    )
    assert not out.exists() and early.git_status() == []  # nothing written

    code, said = finish(start(workers[0], shares[0]))  # the same line again, the store back
    assert code == 0, said
    assert pushed(said) == ["study-sigmoid_on_z-e1-s1"]
    assert "queued 0 experiments, 1 already done, 0 still on the queue" in said

    # Worker 1's machine is gone; a fresh one resumes its share from the remotes: nothing to do.
    again = shared_project.clone(tmp_path / "worker-1-again")
    resumed = again.run(*STUDY, "run", *SHARE, "--worker", "1/2").stderr
    assert "queued 0 experiments, 1 already done, 0 still on the queue" in resumed
    assert not pushed(resumed)

    collector = shared_project.clone(tmp_path / "collector")
    alone = collector.run(*STUDY, "collect", *SHARE, "--workers", "2", "--out", str(out),
                          check=False)  # fmt: skip
    assert alone.returncode == 1
    assert alone.stderr.strip() == (
        "error: 2 of 2 study experiments missing: study-sigmoid_on_z-e1-s1 (worker 1/2), "
        "study-standard-e1-s1 (worker 2/2); run each worker's share again"
    )
    collector.run(*collect)
    assert len(rows_are_the_experiments(collector, out)) == 2

    for name in study.plan((1,), (1,)):
        collector.run("dvc", "exp", "apply", name)
        assert (collector.root / "models" / "vae.pt").stat().st_size > 0, name
        assert "Data and pipelines are up to date." in collector.run("dvc", "status").stdout, name
    params = yaml.safe_load((collector.root / "params.yaml").read_text())
    assert params["model"]["sigmoid_latent"] is False  # the last applied: the standard VAE's


def test_a_worker_the_store_refuses_stops_in_one_line_and_writes_nothing(shared_project, tmp_path):
    s3, origin = shared_project.s3, shared_project.origin
    worker = shared_project.clone(tmp_path / "worker")
    worker.run("dvc", "remote", "modify", "--local", "storage", "secret_access_key", "wrong")
    stored, refs = s3.keys("dvc"), pushed_experiments(origin)
    said = refused(worker, "--worker", "1/2")
    assert said.startswith("error: cannot compare with the DVC remote: "), said
    assert s3.keys("dvc") == stored and pushed_experiments(origin) == refs
