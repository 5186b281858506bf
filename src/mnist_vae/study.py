"""The report's claims over training seeds, for its architecture and for the standard VAE.

    python -m mnist_vae.study run      # queue the missing experiments, run them, then collect
    python -m mnist_vae.study collect  # experiments -> runs.csv, curves.csv, then tabulate
    python -m mnist_vae.study tables   # runs.csv, curves.csv -> summary tables and figure

    python -m mnist_vae.study run --worker 2/3         # on each of 3 machines, its share
    python -m mnist_vae.study collect --remote origin  # anywhere: pull every share, tabulate

Every run is a DVC experiment of the committed pipeline (`dvc exp run --queue`, then DVC's
own queue worker, `dvc queue start`), named `study-<architecture>-e<epochs>-s<seed>`;
everything not varied keeps its value in params.yaml. `run` skips experiments that already
exist for this commit, and leaves those still on the queue where they are, so an interrupted
study resumes. `collect` reads params and metrics from `dvc exp show --json` and each run's
loss curve from the experiment's commit (metrics are tracked by git), and writes one row per
run; the tables and the figure follow from those files alone.

On several machines, each runs a disjoint share (`--worker K/N`) of the same study on the same
commit, which must be on the git remote. Each finished experiment is pushed at once with `dvc
exp push`: its git ref to the git remote, its cached outputs (models) to the default DVC
remote, so a machine that stops loses at most the experiment it was running. An experiment is
shared only when DVC finds its cached outputs on the DVC remote (`shared`), never because its
ref is on the git remote: a push that failed on the store is pushed again on the next run.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mnist_vae.compare import show
from mnist_vae.confusions import REPORT_PAIRS, REPORT_PAIRS_BOTH_WAYS, pair_name
from mnist_vae.figures import CLASS_COLOURS, save_loss_chart

# model.sigmoid_latent of each architecture, and how the tables name it.
ARCHITECTURES = {"sigmoid_on_z": True, "standard": False}
LABELS = {"sigmoid_on_z": "report (sigmoid on z)", "standard": "standard VAE"}
EPOCHS = (10, 100)
SEEDS = (1, 2, 3, 4, 5)
# eval.json's names of the report's pairs, as the report names them first, then reversed.
PAIRS = tuple(pair_name(*pair) for pair in REPORT_PAIRS_BOTH_WAYS)
METRICS = ("test_loss", "misread_share", *PAIRS, "iwae")  # runs.csv's measured columns
OUT = Path("docs/study")
# What the pipeline itself rewrites: a workspace changed only there still runs the committed
# pipeline (an experiment regenerates them). Anything else changed is refused.
PIPELINE_OUTPUTS = ("dvc.lock", "data", "models", "metrics", "plots")
NO_DVC_REMOTE = (
    "no default DVC remote: experiments pushed without one arrive without their models; "
    "add one with `dvc remote add -d NAME URL` (docs/sharing.md)"
)


def experiment_name(architecture: str, epochs: int, seed: int) -> str:
    return f"study-{architecture}-e{epochs}-s{seed}"


def plan(epochs: tuple[int, ...], seeds: tuple[int, ...]) -> list[str]:
    """Every experiment of the study, in the order they are dealt to workers: shortest
    training first, so each worker gets its part of every length."""
    return [experiment_name(architecture, count, seed)
            for count in sorted(epochs) for architecture in ARCHITECTURES for seed in seeds]  # fmt: skip


def worker_of(names: list[str], name: str, workers: int) -> int:
    """The worker (1..workers) whose share holds `name`: experiments are dealt in turn."""
    return names.index(name) % workers + 1


def parse_worker(text: str) -> tuple[int, int]:
    worker, _, workers = text.partition("/")
    if not (worker.isdigit() and workers.isdigit() and 1 <= int(worker) <= int(workers)):
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N, e.g. 2/3; got {text!r}")
    return int(worker), int(workers)


def what_went_wrong(said: str) -> str:
    """The line of a failed git or dvc command that says why: its last error line (DVC ends
    with a line asking for support, which says nothing), else its last line."""
    lines = [line for line in said.strip().splitlines() if line.strip()] or ["no output"]
    errors = [line for line in lines if line.startswith(("ERROR", "error:", "fatal:"))]
    return (errors or lines)[-1]


class ToolFailed(SystemExit):
    """A git or dvc command failed: the study stops with one line, unless it can try again."""


def run_tool(*command: str) -> str:
    """A git or dvc command's output; its failure stops the study with the line saying why."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        said = what_went_wrong(result.stdout + "\n" + result.stderr)  # stderr's line last
        raise ToolFailed(f"error: `{' '.join(command[:3])}` failed: {said}")
    return result.stdout


def dvc(*args: str) -> str:
    return run_tool("dvc", *args)


def git(*args: str) -> str:
    return run_tool("git", *args)


def head() -> str:
    return git("rev-parse", "HEAD").strip()


def exp_refs(commit: str) -> str:
    """Where git keeps a commit's experiments (DVC's layout)."""
    return f"refs/exps/{commit[:2]}/{commit[2:]}/"


def finished(commit: str, remote: str | None = None) -> dict[str, str]:
    """Name -> git ref of the commit's finished experiments, here or on a git remote."""
    prefix = exp_refs(commit)
    if remote is None:
        refs = git("for-each-ref", "--format=%(refname)", prefix).split()
    else:
        refs = [line.split()[1] for line in git("ls-remote", remote, f"{prefix}*").splitlines()]
    return {ref.removeprefix(prefix): ref for ref in refs if ref.startswith(prefix)}


def experiments(baseline: str = "HEAD") -> list[dict]:
    """The experiments of a commit as `dvc exp show --json` gives them (name, rev, data), each
    with its queue state: 'queued', 'running', 'failed', or 'done'."""
    shown = json.loads(dvc("exp", "show", "--json", "--rev", baseline))
    commit = next(entry for entry in shown if entry["rev"] != "workspace")
    found = []
    for branch in commit.get("experiments") or []:
        state = (branch.get("executor") or {}).get("state") or "done"
        for exp in branch["revs"]:
            if exp.get("data") and not exp.get("error"):
                found.append({**exp, "state": "done" if state == "success" else state})
    return found


def refuse_a_changed_workspace(out: Path) -> None:
    """The study is of the committed pipeline: a change to its code or params is refused."""
    root = Path(git("rev-parse", "--show-toplevel").strip())
    keep = [f":(exclude,top){path}" for path in PIPELINE_OUTPUTS]
    if out.resolve().is_relative_to(root.resolve()):  # the study's own tables, rewritten
        keep.append(f":(exclude,top){out.resolve().relative_to(root.resolve()).as_posix()}")
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ":/", *keep).split("\n")
    if changed := [line[3:] for line in changed if line.strip()]:
        raise SystemExit(f"error: the workspace changes {changed[0]} (and {len(changed) - 1} "
                         "more): the study runs the committed pipeline; commit or stash first")  # fmt: skip


def refuse_what_cannot_be_shared(remote: str, commit: str) -> None:
    """Pushed experiments must apply elsewhere: a DVC remote for their models, and their
    commit on the git remote for every worker and for `collect`."""
    if not dvc("config", "core.remote").strip():
        raise SystemExit(f"error: {NO_DVC_REMOTE}")
    git("fetch", "--quiet", remote)
    if not git("branch", "--remotes", "--contains", commit, "--list", f"{remote}/*").strip():
        raise SystemExit(f"error: commit {commit[:7]} is not on the git remote {remote!r}: "
                         f"`git push {remote} HEAD` first, then run every worker on it")  # fmt: skip


def push(remote: str, ref: str) -> None:
    dvc("exp", "push", remote, ref)  # the git ref, and the cached outputs to the DVC remote
    print(f"pushed {ref.rsplit('/', 1)[-1]} to {remote}", file=sys.stderr)


def storage(revisions: dict[str, str]) -> dict[str, str]:
    """Where the cached outputs (data, models) of each experiment (name -> commit) are, as DVC
    compares its local cache with the default DVC remote (what `dvc status --cloud` does for
    the workspace): 'remote' when the remote has them all, 'here' when the rest are in the
    local cache only, 'lost' when some are in neither. One line if the remote cannot be read."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo() as repo:
            used = {}
            for name, commit in revisions.items():
                used[name] = set()
                for _ in repo.brancher(revs=[commit], workspace=False):
                    for found in repo.index.used_objs().values():
                        used[name] |= found
            status = repo.cloud.status(set().union(*used.values()))
    except (DvcException, OSError) as error:  # the store is down, or refuses these credentials
        raise SystemExit(f"error: cannot compare with the DVC remote: {error}") from None
    return {
        name: "lost" if objects & status.missing else "here" if objects & status.new else "remote"
        for name, objects in used.items()
    }


def run(names: list[str], out: Path, remote: str | None = None) -> None:
    """Queue the experiments of `names` this commit lacks, run DVC's queue, and, with a
    remote, push each one as it finishes; what finished before but is not shared yet (an
    interruption, the store down) is pushed first."""
    refuse_a_changed_workspace(out)
    commit = head()
    done: set[str] = set()
    if remote:
        refuse_what_cannot_be_shared(remote, commit)
        done = share_what_finished(names, commit, remote)
    else:
        done = set(finished(commit)) & set(names)
    pending = {exp["name"] for exp in experiments() if exp["state"] in ("queued", "running")}
    queued = 0
    for name in names:
        if name in done or name in pending:
            continue
        architecture, epochs, seed = name.removeprefix("study-").rsplit("-", 2)
        dvc("exp", "run", "--queue", "--name", name,
            "-S", f"model.sigmoid_latent={str(ARCHITECTURES[architecture]).lower()}",
            "-S", f"train.epochs={epochs[1:]}", "-S", f"train.seed={seed[1:]}")  # fmt: skip
        queued += 1
    print(f"queued {queued} experiments, {len(done)} already done, "
          f"{len([n for n in names if n in pending])} still on the queue", file=sys.stderr)  # fmt: skip
    waiting = [name for name in names if name not in done]
    if waiting:
        start_queue()
        print("DVC's queue runs them (`dvc queue status`; it goes on if this is stopped)",
              file=sys.stderr)  # fmt: skip
        wait(waiting, commit, remote)
        if remote:  # DVC confirms that every model reached the DVC remote
            share_what_finished(names, commit, remote)


def share_what_finished(names: list[str], commit: str, remote: str) -> set[str]:
    """The experiments of `names` that are shared: their ref on the git remote and, as DVC
    finds, their cached outputs on the DVC remote. Those finished here but not yet shared are
    pushed now. One whose models are neither here nor on the DVC remote stops the study, as
    does a DVC remote that refuses these credentials: it is asked before any work."""
    here, elsewhere = finished(commit), finished(commit, remote)
    mine = [name for name in names if name in here or name in elsewhere]
    # Another machine's refs (this share run before, elsewhere): fetched, so DVC can read
    # which outputs they need; their models stay on the DVC remote.
    if fetched := [elsewhere[name] for name in mine if name not in here]:
        git("fetch", "--quiet", remote, *(f"{ref}:{ref}" for ref in fetched))
    here = finished(commit)
    # One comparison with the DVC remote for all (each opens the repo and reads its index);
    # the commit's own outputs ask it even when nothing has finished yet.
    where = storage({"this commit": commit, **{name: here[name] for name in mine}})
    if lost := [name for name in mine if where[name] == "lost"]:
        raise SystemExit(
            f"error: {len(lost)} finished experiments have their models neither on this machine "
            f"nor on the DVC remote, e.g. {lost[0]}: run this line again on the machine that "
            f"trained them, or, if it is gone, `dvc exp remove --git-remote {remote} "
            f"{' '.join(lost)}` and run this line again to retrain them"
        )
    pushed = [name for name in mine if where[name] == "here"]
    for name in pushed:
        push(remote, here[name])
    after = storage({name: here[name] for name in pushed}) if pushed else {}
    if unshared := [name for name in pushed if after[name] != "remote"]:
        raise SystemExit(f"error: `dvc exp push` left {unshared[0]} without its models on the "
                         "DVC remote; run this line again")  # fmt: skip
    return set(mine)


def start_queue() -> None:
    """`dvc queue start` with one worker: two cores gain nothing from a second, and `-j` above
    1 can race. Its output goes to a file: the worker it leaves running holds it open, and
    would keep a pipe open until the queue is empty."""
    with tempfile.TemporaryFile("w+") as said:
        command = ["dvc", "queue", "start", "--jobs", "1"]
        if subprocess.run(command, stdout=said, stderr=subprocess.STDOUT).returncode != 0:
            said.seek(0)
            raise SystemExit(f"error: `dvc queue start` failed: {what_went_wrong(said.read())}")


POLL_SECONDS = 2  # how often the finished and failed experiments' refs are read (git: cheap)
# How often DVC's queue is read (`dvc exp show`: a second of CPU beside the training), only to
# notice a task that vanished without failing (a killed queue worker).
CHECK_SECONDS = 300
FAILED_STASH = "refs/exps/celery/failed"  # DVC's record of its queue's failed tasks


def failures(commit: str) -> list[tuple[str, str]]:
    """(task, name) of the commit's experiments that DVC's queue ran and that failed, read from
    the failed tasks' stash: a git reflog, one commit per task, whose entries DVC writes as
    `commit: dvc-exp:<revision>:<baseline>:<name>`."""
    said = subprocess.run(["git", "reflog", "show", "--format=%H %gs", FAILED_STASH],
                          capture_output=True, text=True).stdout  # fmt: skip
    found = []
    for line in said.splitlines():
        task, _, message = line.partition(" ")
        if "dvc-exp:" in message:
            _, baseline, name = message.split("dvc-exp:", 1)[1].split(":", 2)
            if baseline == commit:
                found.append((task, name))
    return found


def wait(names: list[str], commit: str, remote: str | None) -> None:
    """Until every experiment of `names` has finished (pushing each, with a remote), or one of
    them has failed, or the queue holds none of the rest (a task that vanished). Waiting reads
    git refs, not DVC, so it takes next to no CPU from the training it waits for."""
    earlier = set(failures(commit))  # a failure of an earlier run is not this one's
    left, checked, absent, unreadable = list(names), time.monotonic(), 0, 0
    while left:
        time.sleep(POLL_SECONDS)
        here = finished(commit)
        for name in [name for name in left if name in here]:
            left.remove(name)
            if remote:
                push(remote, here[name])
        failed = {name for entry, name in failures(commit) if (entry, name) not in earlier}
        if failed := [name for name in left if name in failed]:
            raise SystemExit(f"error: {len(failed)} experiments failed, e.g. {failed[0]}: "
                             f"`dvc queue logs {failed[0]}` says why")  # fmt: skip
        if left and time.monotonic() - checked > CHECK_SECONDS:
            checked = time.monotonic()
            try:
                shown = experiments()
            except ToolFailed:
                # `dvc exp show` can fail while DVC's queue worker moves an experiment's refs
                # (treeverse/dvc#8158): read it at the next check, stop at the third failure.
                unreadable += 1
                if unreadable == 3:
                    raise
                continue
            unreadable = 0
            pending = {exp["name"] for exp in shown if exp["state"] in ("queued", "running")}
            # A task DVC's worker is taking off the queue shows as neither for a moment, so the
            # rest count as gone only when two checks in a row find none of them there.
            absent = 0 if pending.intersection(left) else absent + 1
            # Read the refs again: one may have finished since they were last read.
            if absent == 2 and (gone := [name for name in left if name not in finished(commit)]):
                raise SystemExit(f"error: {len(gone)} experiments left DVC's queue unfinished, "
                                 f"e.g. {gone[0]}: `dvc queue logs {gone[0]}` says why")  # fmt: skip


def pull(remote: str, names: list[str], baseline: str) -> None:
    """Fetch the study's experiments of `baseline` that are on the git remote and not here,
    with their cached outputs from the default DVC remote."""
    if not dvc("config", "core.remote").strip():
        raise SystemExit(f"error: {NO_DVC_REMOTE}")
    commit = git("rev-parse", baseline).strip()
    here = finished(commit)
    refs = [
        ref for name, ref in finished(commit, remote).items() if name in names and name not in here
    ]
    if refs:
        dvc("exp", "pull", remote, *refs)
    print(f"pulled {len(refs)} experiments from {remote}", file=sys.stderr)


def worker_line(worker: int, workers: int, options: str) -> str:
    """The command that runs worker `worker` of `workers` of a study with these options."""
    if not options:
        return f"make study WORKER={worker}/{workers}"
    return f"python -m mnist_vae.study run{options} --worker {worker}/{workers}"


def collect(
    names: list[str],
    out: Path,
    baseline: str,
    workers: int = 1,
    pulled: bool = False,
    options: str = "",
) -> None:
    """One row per experiment of `names` (runs.csv) and every epoch of each run (curves.csv).

    `pulled` (from other machines): each experiment's models must be here or on the DVC
    remote, or nothing is written and the one line names the workers that must push them."""
    done = [exp for exp in experiments(baseline) if exp["name"] in names and exp["state"] == "done"]
    found = {exp["name"]: exp["rev"] for exp in done}
    if missing := [name for name in names if name not in found]:
        where = ", ".join(f"{name} (worker {worker_of(names, name, workers)}/{workers})"
                          for name in missing)  # fmt: skip
        again = "`make study` (it resumes)" if workers == 1 else "each worker's share again"
        raise SystemExit(f"error: {len(missing)} of {len(names)} study experiments missing: "
                         f"{where}; run {again}")  # fmt: skip
    if pulled and (lost := [n for n, place in storage(found).items() if place == "lost"]):
        holders = sorted({worker_of(names, name, workers) for name in lost})
        where = ", ".join(f"{name} (worker {worker_of(names, name, workers)}/{workers})"
                          for name in sorted(lost))  # fmt: skip
        again = "; ".join(f"`{worker_line(worker, workers, options)}`" for worker in holders)
        raise SystemExit(f"error: {len(lost)} of {len(names)} study experiments arrived without "
                         f"their models, which are on neither this machine nor the DVC remote: "
                         f"{where}; on each of those workers' machines run its line again, "
                         f"which pushes them: {again}")  # fmt: skip
    rows, curves = [], []
    for exp in done:
        params = exp["data"]["params"]["params.yaml"]["data"]
        metrics = {path: file["data"] for path, file in exp["data"]["metrics"].items()}
        architecture = next(
            name
            for name, sigmoid in ARCHITECTURES.items()
            if sigmoid == params["model"]["sigmoid_latent"]
        )
        bounds = metrics["metrics/likelihood.json"]["iwae"]
        largest_k = max(int(name.removeprefix("k")) for name in bounds)
        key = {
            "architecture": architecture,
            "epochs": params["train"]["epochs"],
            "seed": params["train"]["seed"],
        }
        rows.append(
            {
                **key,
                "test_loss": metrics["metrics/train.json"]["test_loss"],
                **{name: metrics["metrics/eval.json"][name] for name in ("misread_share", *PAIRS)},
                "iwae_k": largest_k,
                "iwae": bounds[f"k{largest_k}"],
            }
        )
        history = pd.read_csv(io.StringIO(show(exp["rev"], "metrics/loss.csv")))
        curves.append(history.assign(**key))
    runs = pd.DataFrame(rows).sort_values(["architecture", "epochs", "seed"], ignore_index=True)
    curves = pd.concat(curves)[
        ["architecture", "epochs", "seed", "epoch", "train_loss", "test_loss"]
    ]
    curves = curves.sort_values(["architecture", "epochs", "seed", "epoch"], ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "runs.csv", index=False)
    curves.to_csv(out / "curves.csv", index=False)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds, per architecture × epochs, plus the
    relative test-loss gain from the fewest to the most epochs (paired by seed)."""
    short, long = runs["epochs"].min(), runs["epochs"].max()
    if short < long:
        by_seed = runs.pivot_table(
            index=["architecture", "seed"], columns="epochs", values="test_loss"
        )
        gain = ((by_seed[short] - by_seed[long]) / by_seed[short]).rename("gain").reset_index()
        gain["epochs"] = long
        runs = runs.merge(gain, on=["architecture", "seed", "epochs"], how="left")
    else:  # one length of training: there is no gain to give
        runs = runs.assign(gain=np.nan)
    columns = [*METRICS, "gain"]
    grouped = runs.groupby(["architecture", "epochs"], sort=False)
    summary = grouped[columns].agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary.insert(0, "seeds", grouped.size())
    summary.insert(1, "iwae_k", grouped["iwae_k"].first())
    return summary.reset_index()


def sigmoid_cost(summary: pd.DataFrame) -> pd.DataFrame:
    """Test loss of the report's architecture minus the standard VAE's, per epoch count, with
    the standard error of that difference of means."""
    rows = []
    for epochs, group in summary.groupby("epochs"):
        report, standard = (group.set_index("architecture").loc[name] for name in ARCHITECTURES)
        rows.append(
            {
                "epochs": epochs,
                "nats": report["test_loss_mean"] - standard["test_loss_mean"],
                "standard_error": np.sqrt(
                    report["test_loss_std"] ** 2 / report["seeds"]
                    + standard["test_loss_std"] ** 2 / standard["seeds"]
                ),
                "spread_report": report["test_loss_std"],
                "spread_standard": standard["test_loss_std"],
            }
        )
    return pd.DataFrame(rows)


def _fixed(value: float, digits: int) -> str:
    """A number to `digits` decimals; empty where there is none (a spread of one seed)."""
    return "" if pd.isna(value) else f"{value:.{digits}f}"


def _pm(mean: float, std: float, digits: int, percent: bool = False) -> str:
    if pd.isna(mean):
        return ""
    scale, unit = (100, " %") if percent else (1, "")
    spread = "" if pd.isna(std) else f" ± {std * scale:.{digits}f}"  # one seed has none
    return f"{mean * scale:.{digits}f}{spread}{unit}"


def markdown(summary: pd.DataFrame, cost: pd.DataFrame) -> str:
    short, long = summary["epochs"].min(), summary["epochs"].max()
    k = summary["iwae_k"].iloc[0]
    gain = f"gain {short} → {long} epochs" if short < long else "gain (needs two epoch counts)"
    header = [
        "architecture", "epochs", "seeds", "test loss (nats)", gain,
        "read as another digit", *(f"{true} → {read_as}" for true, read_as in REPORT_PAIRS),
        f"IWAE bound, k = {k}",
    ]  # fmt: skip
    lines = [
        "<!-- generated by `python -m mnist_vae.study tables` from runs.csv; do not edit -->",
        "",
        "Mean ± sample standard deviation over training seeds.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    for row in summary.to_dict("records"):
        lines.append(
            "| "
            + " | ".join(
                [
                    LABELS[row["architecture"]],
                    str(row["epochs"]),
                    str(row["seeds"]),
                    _pm(row["test_loss_mean"], row["test_loss_std"], 2),
                    _pm(row["gain_mean"], row["gain_std"], 2, percent=True),
                    _pm(row["misread_share_mean"], row["misread_share_std"], 1, percent=True),
                    *(
                        _pm(row[f"{pair}_mean"], row[f"{pair}_std"], 1, percent=True)
                        for pair in PAIRS[: len(REPORT_PAIRS)]
                    ),
                    _pm(row["iwae_mean"], row["iwae_std"], 2),
                ]
            )
            + " |"
        )
    lines += [
        "",
        "A pair a → b is the share of test images of digit a whose reconstruction the classifier "
        "reads as b; the reverse directions are in summary.csv.",
        "",
        "What the sigmoid on z costs: the report's test loss minus the standard VAE's "
        "(± standard error of the difference of means).",
        "",
        "| epochs | cost (nats) | seed spread, report | seed spread, standard |",
        "| --- | --- | --- | --- |",
    ]
    for row in cost.itertuples():
        lines.append(
            f"| {row.epochs} | {_pm(row.nats, row.standard_error, 2)} "
            f"| {_fixed(row.spread_report, 2)} | {_fixed(row.spread_standard, 2)} |"
        )
    return "\n".join(lines) + "\n"


def curves_figure(curves: pd.DataFrame, path: Path) -> None:
    """Test loss per epoch of the longest runs: the mean over seeds, and a ± 1 sd band."""
    longest = curves[curves["epochs"] == curves["epochs"].max()]
    figure, axis = plt.subplots(figsize=(7.2, 4.6), layout="constrained")
    low, high = [], []
    for index, (architecture, runs) in enumerate(longest.groupby("architecture", sort=False)):
        stats = runs.groupby("epoch")["test_loss"].agg(["mean", "std", "size"])
        colour = CLASS_COLOURS(index)
        seeds = stats["size"].iloc[0]
        axis.plot(stats.index, stats["mean"], color=colour,
                  label=f"{LABELS[architecture]}: mean of {seeds} seeds")  # fmt: skip
        spread = stats["std"].fillna(0.0)  # one seed has no spread: the band is the line
        band = (stats["mean"] - spread, stats["mean"] + spread)
        axis.fill_between(stats.index, *band, color=colour, alpha=0.3, linewidth=0)
        # The first epochs fall steeply; the range that matters is where the curves part.
        late = stats.index >= min(3, stats.index.max())
        low.append(band[0][late].min())
        high.append(band[1][late].max())
    axis.set_ylim(min(low) - 1, max(high) + 1)
    save_loss_chart(figure, axis, path,
                    "Test loss over training seeds (band: ± 1 standard deviation)",
                    ylabel="test loss, negative ELBO (nats per image)")  # fmt: skip


def tables(out: Path) -> None:
    runs = pd.read_csv(out / "runs.csv")
    summary = summarize(runs)
    cost = sigmoid_cost(summary)
    summary.to_csv(out / "summary.csv", index=False, float_format="%.6g")
    (out / "summary.md").write_text(markdown(summary, cost))
    curves_figure(pd.read_csv(out / "curves.csv"), out / "test_loss_curves.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=["run", "collect", "tables"])
    parser.add_argument("--epochs", type=int, nargs="+", default=EPOCHS)
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--baseline", default="HEAD", help="the commit whose experiments to collect"
    )
    parser.add_argument("--worker", type=parse_worker, metavar="K/N",
                        help="run: run the K-th of N disjoint shares, pushing each experiment")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="collect: the number of shares, to say where a missing run belongs")  # fmt: skip
    parser.add_argument("--remote", metavar="GIT_REMOTE",
                        help="run: push each experiment there (default with --worker: origin); "
                        "collect: pull the study from there first")  # fmt: skip
    args = parser.parse_args(argv)
    names = plan(tuple(args.epochs), tuple(args.seeds))
    if args.step == "run":
        if args.worker is None:
            run(names, args.out, args.remote)
        else:
            worker, workers = args.worker
            share = [name for name in names if worker_of(names, name, workers) == worker]
            run(share, args.out, args.remote or "origin")
            print(f"worker {worker}/{workers}: its {len(share)} experiments are done and pushed; "
                  f"collect them all with `python -m mnist_vae.study collect --remote "
                  f"{args.remote or 'origin'} --workers {workers}`", file=sys.stderr)  # fmt: skip
            return
    if args.step == "collect" and args.remote:
        pull(args.remote, names, args.baseline)
    if args.step in ("run", "collect"):
        options = "".join(f" --{name} {' '.join(map(str, given))}"
                          for name, given, default in (("epochs", args.epochs, EPOCHS),
                                                       ("seeds", args.seeds, SEEDS))
                          if tuple(given) != default)  # fmt: skip
        pulled = args.step == "collect" and bool(args.remote)
        collect(names, args.out, args.baseline, args.workers, pulled, options)
    tables(args.out)
    print(f"wrote {args.out}/", file=sys.stderr)


if __name__ == "__main__":
    main()
