"""The seed study: its collecting code on a real DVC queue in miniature, its arithmetic on
known numbers, and the committed tables against the committed runs and pipeline metrics (read
from git: `make study` and the pipeline rewrite their workspace copies)."""

import io
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import PipelineRepo, committed, png_pixels
from test_ci_check import check_module

from mnist_vae import study

COMMITTED = "docs/study"
GENERATED = ("summary.csv", "summary.md", "test_loss_curves.png")


STUDY = ("python", "-m", "mnist_vae.study")
TINY_STUDY = ("--epochs", "1", "--seeds", "1", "2")  # both architectures, 2 seeds
ONE_SEED = ("--epochs", "1", "--seeds", "1")  # one experiment per architecture


@pytest.fixture(scope="module")
def one_machine_study(_reproduced_once, tmp_path_factory):
    """The tiny study on one machine with no remote, run twice; the repo, and what each run
    said. (A larger study resuming a smaller one is the same rule, tested without DVC.)"""
    root = tmp_path_factory.mktemp("study") / "repo"
    shutil.copytree(_reproduced_once, root, symlinks=True)
    repo = PipelineRepo(root)
    return repo, [repo.run(*STUDY, "run", *ONE_SEED).stderr for _ in range(2)]


def rows_are_the_experiments(repo: PipelineRepo, out: Path) -> pd.DataFrame:
    """runs.csv and curves.csv under `out`, each row checked against its experiment's own
    files (params, metrics, loss curve) read from its git ref in `repo`; runs.csv's rows."""
    runs = pd.read_csv(out / "runs.csv")
    curves = pd.read_csv(out / "curves.csv")
    refs = repo.run("git", "for-each-ref", "--format=%(refname)", "refs/exps").stdout.split()
    by_name = {ref.rsplit("/", 1)[-1]: ref for ref in refs}
    for row in runs.to_dict("records"):
        ref = by_name[study.experiment_name(row["architecture"], row["epochs"], row["seed"])]

        def read(path, ref=ref):
            return repo.run("git", "show", f"{ref}:{path}").stdout

        params = yaml.safe_load(read("params.yaml"))
        assert params["model"]["sigmoid_latent"] == study.ARCHITECTURES[row["architecture"]]
        assert (params["train"]["epochs"], params["train"]["seed"]) == (row["epochs"], row["seed"])
        assert row["test_loss"] == json.loads(read("metrics/train.json"))["test_loss"]
        evaluation = json.loads(read("metrics/eval.json"))
        for name in ("misread_share", *study.PAIRS):
            assert row[name] == evaluation[name], name
        assert row["iwae_k"] == 20  # the largest of the tiny params' ks
        assert row["iwae"] == json.loads(read("metrics/likelihood.json"))["iwae"]["k20"]
        history = pd.read_csv(io.StringIO(read("metrics/loss.csv")))
        run_curve = curves[
            (curves["architecture"] == row["architecture"])
            & (curves["epochs"] == row["epochs"])
            & (curves["seed"] == row["seed"])
        ]
        assert run_curve["test_loss"].tolist() == history["test_loss"].tolist()
    return runs


@pytest.mark.e2e
def test_a_small_queue_is_run_resumed_and_collected_from_the_experiments_own_files(
    one_machine_study,
):
    repo, (first, again) = one_machine_study
    assert "queued 2 experiments, 0 already done, 0 still on the queue" in first
    # Both exist for this commit, as DVC's experiments: nothing is run.
    assert "queued 0 experiments, 2 already done, 0 still on the queue" in again

    out = repo.root / "docs" / "study"
    runs = rows_are_the_experiments(repo, out)
    assert len(runs) == 2

    summary = pd.read_csv(out / "summary.csv")
    for (architecture, epochs), group in runs.groupby(["architecture", "epochs"]):
        line = summary[(summary["architecture"] == architecture) & (summary["epochs"] == epochs)]
        assert line["test_loss_mean"].item() == pytest.approx(group["test_loss"].mean(), rel=1e-5)
    table = (out / "summary.md").read_text()
    assert "| report (sigmoid on z) | 1 | 1 |" in table
    assert "| standard VAE | 1 | 1 |" in table


def refused(repo: PipelineRepo, *args: str) -> str:
    """What a refused `study run` said: exactly one line, and nothing queued."""
    result = repo.run(*STUDY, "run", *TINY_STUDY, *args, check=False)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "study-" not in repo.run("dvc", "queue", "status").stdout
    return result.stderr.strip()


def pushed_experiments(origin: Path) -> list[str]:
    listed = subprocess.run(["git", "ls-remote", str(origin), "refs/exps/*"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    return listed.split()


@pytest.mark.e2e
def test_a_worker_or_a_collector_without_a_dvc_remote_is_refused_and_changes_nothing(
    reproduced_repo, tmp_path
):
    repo = reproduced_repo
    origin = tmp_path / "origin.git"
    repo.run("git", "clone", "-q", "--bare", str(repo.root), str(origin))
    repo.run("git", "remote", "add", "origin", str(origin))
    said = refused(repo, "--worker", "1/2")
    assert said == f"error: {study.NO_DVC_REMOTE}"
    assert "dvc remote add -d" in said
    assert pushed_experiments(origin) == []
    # Pulling the study's models needs the DVC remote too: said before anything is fetched.
    out = tmp_path / "collected"
    collector = repo.run(*STUDY, "collect", *TINY_STUDY, "--remote", "origin", "--out", str(out),
                         check=False)  # fmt: skip
    assert (collector.returncode, collector.stderr.strip()) == (1, f"error: {study.NO_DVC_REMOTE}")
    assert not out.exists() and repo.git_status() == []


@pytest.mark.e2e
def test_a_changed_workspace_or_an_unpushed_commit_is_refused_and_pushes_nothing(
    reproduced_repo, tmp_path
):
    """With a local-folder DVC remote: still nothing leaves the machine."""
    repo, storage = reproduced_repo, tmp_path / "storage"
    repo.run("dvc", "remote", "add", "-d", "storage", str(storage))
    repo.commit("DVC remote: a local folder")
    origin = tmp_path / "origin.git"
    repo.run("git", "clone", "-q", "--bare", str(repo.root), str(origin))
    repo.run("git", "remote", "add", "origin", str(origin))

    repo.set_params({"train": {"lr": 0.02}})
    said = refused(repo, "--worker", "1/2")
    assert said.startswith("error: the workspace changes params.yaml (and 0 more): ")
    repo.commit("a faster learning rate")
    said = refused(repo, "--worker", "1/2")
    commit = repo.run("git", "rev-parse", "--short=7", "HEAD").stdout.strip()
    assert said == (f"error: commit {commit} is not on the git remote 'origin': "
                    "`git push origin HEAD` first, then run every worker on it")  # fmt: skip
    assert pushed_experiments(origin) == []
    assert not storage.exists() or not any(storage.rglob("*"))


@pytest.mark.parametrize("given", ["0/2", "3/2", "1/0", "2", "a/2", "1/2/3"])
def test_a_worker_outside_k_of_n_is_refused_before_anything_runs(given, monkeypatch, capsys):
    monkeypatch.setattr(study, "run", lambda *args: pytest.fail(f"--worker {given} was accepted"))
    with pytest.raises(SystemExit) as stopped:
        study.main(["run", "--worker", given])
    assert stopped.value.code == 2  # argparse's usage error
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said.endswith(
        f"argument --worker: expected K/N with 1 <= K <= N, e.g. 2/3; got {given!r}"
    )


def test_a_worker_k_of_n_is_read_as_two_numbers():
    assert [study.parse_worker(text) for text in ("1/1", "2/3", "3/3")] == [(1, 1), (2, 3), (3, 3)]


def test_a_failed_dvc_command_stops_the_study_with_dvcs_error_line(tmp_path, monkeypatch):
    """A real `dvc exp push` that fails: the message is DVC's ERROR line, not the request
    for support DVC prints after it."""
    repo = PipelineRepo(tmp_path)
    repo.run("git", "init", "-q")
    repo.run("git", "init", "-q", "--bare", "origin.git")
    repo.run("git", "remote", "add", "origin", "origin.git")
    repo.run("dvc", "init", "-q")
    monkeypatch.chdir(tmp_path)  # the study's own dvc call, as a worker runs it
    monkeypatch.setenv("PATH", repo.env["PATH"])
    with pytest.raises(SystemExit) as stopped:
        study.dvc("exp", "push", "origin", "study-standard-e1-s1")
    assert str(stopped.value).startswith("error: `dvc exp push` failed: ERROR: ")
    assert "support" not in str(stopped.value)


def test_waiting_reads_the_queue_again_after_dvc_exp_show_fails_and_stops_at_the_third(
    monkeypatch,
):
    """`dvc exp show` can fail for a moment while DVC's queue worker moves refs: the wait goes
    on; three failures in a row stop it with DVC's line."""
    monkeypatch.setattr(study, "POLL_SECONDS", 0)
    monkeypatch.setattr(study, "CHECK_SECONDS", 0)
    failure = study.ToolFailed("error: `dvc exp show --json` failed: ERROR: unexpected error")
    queued = [{"name": "study-standard-e1-s1", "state": "running"}]
    said = iter([failure, failure, queued, failure, failure, queued, queued])
    refs = iter([{}] * 7 + [{"study-standard-e1-s1": "refs/exps/x"}])

    def experiments(baseline="HEAD"):
        answer = next(said)
        if isinstance(answer, study.ToolFailed):
            raise answer
        return answer

    monkeypatch.setattr(study, "experiments", experiments)
    monkeypatch.setattr(study, "finished", lambda commit, remote=None: next(refs))
    study.wait(["study-standard-e1-s1"], "abc", remote=None)  # two failures twice: goes on

    said = iter([failure] * 3)
    monkeypatch.setattr(study, "finished", lambda commit, remote=None: {})
    with pytest.raises(study.ToolFailed, match="ERROR: unexpected error"):
        study.wait(["study-standard-e1-s1"], "abc", remote=None)


def test_a_larger_study_queues_and_waits_for_only_what_this_commit_lacks(
    monkeypatch, tmp_path, capsys
):
    """`--seeds 1 2` after `--seeds 1`: the seed-1 experiments exist for this commit (their
    refs), one seed-2 experiment is still on DVC's queue (an interrupted run), so only the
    other is queued; the wait is for both seed-2 ones."""
    done = {name: f"refs/exps/ab/cd/{name}" for name in study.plan((1,), (1,))}
    left, new = study.plan((1,), (2,))
    monkeypatch.setattr(study, "refuse_a_changed_workspace", lambda out: None)
    monkeypatch.setattr(study, "head", lambda: "abcd")
    monkeypatch.setattr(study, "finished", lambda commit, remote=None: done)
    monkeypatch.setattr(study, "experiments", lambda baseline="HEAD": [{"name": left, "state": "queued"}])  # fmt: skip
    queued, waited = [], []
    monkeypatch.setattr(study, "dvc", lambda *args: queued.append(args[args.index("--name") + 1]))
    monkeypatch.setattr(study, "start_queue", lambda: None)
    monkeypatch.setattr(study, "wait", lambda names, commit, remote: waited.extend(names))
    study.run(study.plan((1,), (1, 2)), tmp_path)
    assert queued == [new]
    assert sorted(waited) == sorted([left, new])
    assert "queued 1 experiments, 2 already done, 1 still on the queue" in capsys.readouterr().err


def test_waiting_pushes_each_experiment_the_moment_it_finishes(monkeypatch):
    """A machine that stops loses at most the experiment it was running: the first finished
    experiment is pushed while the second still trains. Refs appear one poll after another."""
    monkeypatch.setattr(study, "POLL_SECONDS", 0)
    monkeypatch.setattr(study, "failures", lambda commit: [])
    appear = iter([{}, {"a": "refs/exps/ab/cd/a"}, {"a": "refs/exps/ab/cd/a"},
                   {"a": "refs/exps/ab/cd/a", "b": "refs/exps/ab/cd/b"}])  # fmt: skip
    polls, pushed_at = [], []
    monkeypatch.setattr(study, "finished", lambda commit, remote=None: polls.append(1) or next(appear))  # fmt: skip
    monkeypatch.setattr(study, "push", lambda remote, ref: pushed_at.append((ref, len(polls))))
    study.wait(["a", "b"], "abcd", remote="origin")
    assert pushed_at == [("refs/exps/ab/cd/a", 2), ("refs/exps/ab/cd/b", 4)]


def test_summary_gives_mean_sample_sd_and_the_gain_paired_by_seed():
    rows = []
    for architecture, shift in (("sigmoid_on_z", 10.0), ("standard", 0.0)):
        for seed, short, long in ((1, 100.0, 90.0), (2, 110.0, 88.0)):
            for epochs, loss in ((10, short + shift), (100, long + shift)):
                rows.append(
                    {
                        "architecture": architecture,
                        "epochs": epochs,
                        "seed": seed,
                        "test_loss": loss,
                        "misread_share": 0.5,
                        **dict.fromkeys(study.PAIRS, 0.1),
                        "iwae_k": 5000,
                        "iwae": -loss,
                    }
                )
    summary = study.summarize(pd.DataFrame(rows)).set_index(["architecture", "epochs"])
    standard = summary.loc[("standard", 100)]
    assert standard["test_loss_mean"] == 89.0
    assert standard["test_loss_std"] == pytest.approx(math.sqrt(2.0))  # n - 1 in the denominator
    assert standard["gain_mean"] == pytest.approx((0.10 + 0.20) / 2)  # 100 -> 90, 110 -> 88
    assert math.isnan(summary.loc[("standard", 10), "gain_mean"])  # a gain needs both lengths
    cost = study.sigmoid_cost(summary.reset_index()).set_index("epochs")
    assert cost.loc[100, "nats"] == pytest.approx(10.0)
    assert cost.loc[100, "standard_error"] == pytest.approx(math.sqrt(2.0 / 2 + 2.0 / 2))


def test_a_one_seed_one_length_study_is_tabulated_without_spreads_or_gains(tmp_path):
    """`--seeds 1` is a quick first look: means only, no ± nan, no gain of N → N epochs."""
    runs, curves = [], []
    for architecture, loss in (("sigmoid_on_z", 164.0), ("standard", 155.0)):
        key = {"architecture": architecture, "epochs": 2, "seed": 1}
        runs.append({**key, "test_loss": loss, "misread_share": 0.5,
                     **dict.fromkeys(study.PAIRS, 0.1), "iwae_k": 20, "iwae": -loss})  # fmt: skip
        curves += [{**key, "epoch": epoch, "train_loss": loss + 3 - epoch,
                    "test_loss": loss + 2 - epoch} for epoch in (1, 2)]  # fmt: skip
    pd.DataFrame(runs).to_csv(tmp_path / "runs.csv", index=False)
    pd.DataFrame(curves).to_csv(tmp_path / "curves.csv", index=False)

    study.tables(tmp_path)

    table = (tmp_path / "summary.md").read_text()
    assert "nan" not in table
    assert "| gain (needs two epoch counts) |" in table
    assert "| report (sigmoid on z) | 2 | 1 | 164.00 |  | 50.0 % |" in table
    assert "| 2 | 9.00 |  |  |" in table  # the cost, with no standard error or spreads
    assert (tmp_path / "test_loss_curves.png").stat().st_size > 0


def test_the_committed_tables_and_figure_follow_from_the_committed_runs(tmp_path):
    for name in ("runs.csv", "curves.csv"):
        (tmp_path / name).write_bytes(committed(f"{COMMITTED}/{name}"))
    study.tables(tmp_path)
    for name in GENERATED:
        made, kept = (tmp_path / name).read_bytes(), committed(f"{COMMITTED}/{name}")
        if name.endswith(".png"):  # what it shows: its bytes depend on the zlib that packed it
            assert np.array_equal(png_pixels(made, "RGBA"), png_pixels(kept, "RGBA")), name
        else:
            assert made == kept, name


def _committed_json(path: str) -> dict:
    return json.loads(committed(path))


def _study_run(runs: pd.DataFrame, epochs: int, seed: int) -> pd.Series:
    return runs.loc[("sigmoid_on_z", epochs, seed)]


def test_the_study_ran_the_committed_pipeline():
    """The study's seed-1 runs of the report's model are docs/results/epochs-10 and -100, and
    its run at the committed params agrees with the committed pipeline result within the
    reproduction check's tolerances (the two may come from different CPUs, whose losses differ
    by about 0.1 nats: docs/reproducibility.md)."""
    runs = pd.read_csv(io.BytesIO(committed(f"{COMMITTED}/runs.csv")))
    runs = runs.set_index(["architecture", "epochs", "seed"])
    params = yaml.safe_load(committed("params.yaml"))
    assert params["model"]["sigmoid_latent"] is True
    seed = params["train"]["seed"]

    for epochs in (params["train"]["epochs"], 100):
        row = _study_run(runs, epochs, seed)
        metrics = f"docs/results/epochs-{epochs}/metrics"
        assert row["test_loss"] == _committed_json(f"{metrics}/train.json")["test_loss"]
        assert row["misread_share"] == _committed_json(f"{metrics}/eval.json")["misread_share"]
        bounds = _committed_json(f"{metrics}/likelihood.json")["iwae"]
        assert row["iwae"] == bounds[f"k{int(row['iwae_k'])}"]

    row = _study_run(runs, params["train"]["epochs"], seed)
    tolerances = check_module().TOLERANCES
    loss = _committed_json("metrics/train.json")["test_loss"]
    assert abs(row["test_loss"] - loss) <= tolerances["metrics/train.json"]["test_loss"]
    bound = _committed_json("metrics/likelihood.json")["iwae"][f"k{int(row['iwae_k'])}"]
    assert abs(row["iwae"] - bound) <= tolerances["metrics/likelihood.json"]["iwae.k*"]


def test_collecting_without_the_experiments_stops_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(study, "experiments", lambda baseline: [])  # a commit with none yet
    names = study.plan(study.EPOCHS, study.SEEDS)
    with pytest.raises(SystemExit, match=r"^error: 20 of 20 study experiments missing: "
                       r"study-sigmoid_on_z-e10-s1 \(worker 1/3\), .*; run each worker's share again$"):  # fmt: skip
        study.collect(names, tmp_path, "HEAD", workers=3)
    assert not any(tmp_path.iterdir())  # nothing half-written


@pytest.mark.e2e
def test_waiting_stops_in_one_line_when_dvcs_queue_fails_an_experiment(
    reproduced_repo, monkeypatch
):
    """A real failure on DVC's queue (a stage refuses its params), read from DVC's own record
    of failed tasks; a failure left from an earlier run is not taken for this one's."""
    repo = reproduced_repo
    monkeypatch.chdir(repo.root)
    monkeypatch.setenv("PATH", repo.env["PATH"])
    monkeypatch.setattr(study, "POLL_SECONDS", 0.2)
    commit = study.head()
    name = "study-standard-e1-s7"
    try:
        for _ in range(2):
            repo.run("dvc", "exp", "run", "--queue", "--name", name, "-S", "train.lr=-1")
            study.start_queue()
            with pytest.raises(SystemExit) as stopped:
                study.wait([name], commit, remote=None)
            assert str(stopped.value) == (
                f"error: 1 experiments failed, e.g. {name}: `dvc queue logs {name}` says why"
            )
        assert [n for _, n in study.failures(commit)] == [name, name]
    finally:
        repo.run("dvc", "queue", "stop", "--kill", check=False)


def test_a_worker_pushes_only_what_the_dvc_remote_lacks_and_stops_on_what_nobody_has(
    monkeypatch,
):
    """Shared means DVC finds the models on the DVC remote: a ref on the git remote is not
    enough. Refs here or there, with DVC's comparison replaced by a table."""
    refs = {name: f"refs/exps/ab/cd/{name}" for name in ("a", "b", "c", "d")}
    here, there = {"a": refs["a"], "b": refs["b"]}, {"b": refs["b"], "c": refs["c"]}
    fetched, pushed_now = [], []
    monkeypatch.setattr(study, "finished", lambda commit, remote=None: dict(there if remote else here))  # fmt: skip
    monkeypatch.setattr(study, "git", lambda *args: fetched.extend(args[3:]) or here.update(c=refs["c"]) or "")  # fmt: skip
    monkeypatch.setattr(study, "push", lambda remote, ref: pushed_now.append(ref) or places.update({ref.rsplit("/", 1)[-1]: "remote"}))  # fmt: skip
    places = {"this commit": "here", "a": "here", "b": "remote", "c": "remote"}
    asked = []
    monkeypatch.setattr(study, "storage", lambda revisions: asked.append(sorted(revisions)) or {n: places[n] for n in revisions})  # fmt: skip

    # a: finished here, its models not on the DVC remote (its ref may well be on the git remote)
    # b: shared; c: finished elsewhere and shared; d: not finished anywhere.
    assert study.share_what_finished(["a", "b", "c", "d"], "abcd", "origin") == {"a", "b", "c"}
    assert pushed_now == [refs["a"]]
    assert fetched == [f"{refs['c']}:{refs['c']}"]
    # One comparison for all, the commit's with them; then the pushed one is confirmed.
    assert asked == [["a", "b", "c", "this commit"], ["a"]]

    # Nothing finished anywhere: the DVC remote is still asked, before any work.
    kept = dict(here), dict(there)
    for refs_found in (here, there, asked):
        refs_found.clear()
    assert study.share_what_finished(["a", "b", "c", "d"], "abcd", "origin") == set()
    assert asked == [["this commit"]]
    here.update(kept[0])
    there.update(kept[1])

    # A push that DVC reports done but that left the models behind is not taken as done.
    places["a"] = "here"
    monkeypatch.setattr(study, "push", lambda remote, ref: None)
    with pytest.raises(SystemExit, match=r"^error: `dvc exp push` left a without its models"):
        study.share_what_finished(["a", "b", "c", "d"], "abcd", "origin")

    places["c"] = "lost"  # finished on a machine that never pushed its models
    with pytest.raises(SystemExit, match=r"^error: 1 finished experiments have their models neither on this machine nor on the DVC remote, e\.g\. c: .*`dvc exp remove --git-remote origin c`"):  # fmt: skip
        study.share_what_finished(["a", "b", "c", "d"], "abcd", "origin")


def test_collecting_what_arrived_without_its_models_stops_and_writes_nothing(monkeypatch, tmp_path):
    names = study.plan((1,), (1, 2))
    shown = [{"name": name, "rev": f"rev-{name}", "state": "done"} for name in names]
    monkeypatch.setattr(study, "experiments", lambda baseline: shown)
    lost = {"study-standard-e1-s1"}
    monkeypatch.setattr(study, "storage", lambda revisions: {n: "lost" if n in lost else "here" for n in revisions})  # fmt: skip
    with pytest.raises(SystemExit) as stopped:
        study.collect(names, tmp_path, "HEAD", workers=2, pulled=True, options=" --epochs 1 --seeds 1 2")  # fmt: skip
    assert str(stopped.value) == (
        "error: 1 of 4 study experiments arrived without their models, which are on neither "
        "this machine nor the DVC remote: study-standard-e1-s1 (worker 1/2); on each of those "
        "workers' machines run its line again, which pushes them: "
        "`python -m mnist_vae.study run --epochs 1 --seeds 1 2 --worker 1/2`"
    )
    assert not any(tmp_path.iterdir())
