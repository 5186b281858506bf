"""Overlay the loss curves of several git revisions or DVC experiments in one PNG.

    python -m mnist_vae.compare HEAD epochs-100 --out plots/loss_comparison.png

Each REV is anything git or `dvc exp` names: a commit, a branch, a tag, or an experiment name
(its results are committed under refs/exps, since metrics are tracked by git). The curves come
from `metrics/loss.csv` and the labels from `train.epochs` in `params.yaml` at that revision.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import yaml

from mnist_vae.figures import CLASS_COLOURS, save_loss_chart


def loss_comparison(runs: dict[str, pd.DataFrame], path: str | Path) -> None:
    """Several runs' loss curves on one chart: a colour per run, solid test, dashed train.

    Runs that share a seed share their first epochs exactly, so earlier-listed runs are drawn
    on top, with markers, to stay visible where the curves coincide.
    """
    figure, axis = plt.subplots(figsize=(7.2, 4.6), layout="constrained")
    for index, (label, history) in enumerate(runs.items()):
        style = {"color": CLASS_COLOURS(index), "zorder": len(runs) - index}
        if len(history) <= 30:
            style.update(marker="o", markersize=4)
        axis.plot(history["epoch"], history["test_loss"], label=f"{label}: test", **style)
        axis.plot(
            history["epoch"],
            history["train_loss"],
            linestyle="--",
            label=f"{label}: train",
            **style,
        )
    save_loss_chart(figure, axis, path, "Loss curves of several runs")


def resolve(rev: str) -> str:
    """A commit for `rev`, trying DVC experiment names after git's own names."""
    found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                           capture_output=True, text=True)  # fmt: skip
    if found.returncode == 0:
        return found.stdout.strip()
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    for line in refs.splitlines():
        name, commit = line.split()
        if name.rsplit("/", 1)[-1] == rev:
            return commit
    raise SystemExit(f"error: '{rev}' is neither a git revision nor a DVC experiment name")


def show(commit: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def loss_histories(revs: list[str]) -> dict[str, pd.DataFrame]:
    """Each revision's `metrics/loss.csv`, labelled with its name and `train.epochs`."""
    runs = {}
    for rev in revs:
        commit = resolve(rev)
        epochs = yaml.safe_load(show(commit, "params.yaml"))["train"]["epochs"]
        runs[f"{rev} ({epochs} epochs)"] = pd.read_csv(
            io.StringIO(show(commit, "metrics/loss.csv"))
        )
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("revs", nargs="+", help="git revisions or DVC experiment names")
    parser.add_argument("--out", default="plots/loss_comparison.png")
    args = parser.parse_args(argv)
    loss_comparison(loss_histories(args.revs), args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
