"""The report's claims over training seeds, for its architecture and for the standard VAE.

    python -m mnist_vae.study run      # queue the missing experiments, run them, then collect
    python -m mnist_vae.study collect  # experiments -> runs.csv, curves.csv, then tabulate
    python -m mnist_vae.study tables   # runs.csv, curves.csv -> summary tables and figure

Every run is a DVC experiment of the committed pipeline (`dvc exp run --queue`, then DVC's
own queue worker), named `study-<architecture>-e<epochs>-s<seed>`; everything not varied
keeps its value in params.yaml. `run` skips experiments that already exist for this commit,
so an interrupted study resumes. `collect` reads params and metrics from `dvc exp show
--json` and each run's loss curve from the experiment's commit (metrics are tracked by git),
and writes one row per run; the tables and the figure follow from those files alone.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
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


def experiment_name(architecture: str, epochs: int, seed: int) -> str:
    return f"study-{architecture}-e{epochs}-s{seed}"


def dvc(*args: str) -> str:
    return subprocess.run(["dvc", *args], capture_output=True, text=True, check=True).stdout


def experiments(baseline: str = "HEAD") -> list[dict]:
    """The finished experiments of a commit as `dvc exp show --json` gives them (name, rev,
    data)."""
    shown = json.loads(dvc("exp", "show", "--json", "--rev", baseline))
    commit = next(entry for entry in shown if entry["rev"] != "workspace")
    found = []
    for branch in commit.get("experiments") or []:
        for exp in branch["revs"]:
            if exp.get("data") and not exp.get("error") and exp["data"].get("metrics"):
                found.append(exp)
    return found


def run(epochs: tuple[int, ...], seeds: tuple[int, ...]) -> None:
    """Queue every study experiment this commit lacks and run the queue to its end."""
    done = {exp["name"] for exp in experiments()}
    queued = 0
    for architecture, sigmoid in ARCHITECTURES.items():
        for count in epochs:
            for seed in seeds:
                name = experiment_name(architecture, count, seed)
                if name in done:
                    continue
                dvc("exp", "run", "--queue", "--name", name,
                    "-S", f"model.sigmoid_latent={str(sigmoid).lower()}",
                    "-S", f"train.epochs={count}", "-S", f"train.seed={seed}")  # fmt: skip
                queued += 1
    print(f"queued {queued} experiments, {len(done)} already done", file=sys.stderr)
    if queued:
        # One worker: two cores gain nothing from a second, and `-j` above 1 can race.
        subprocess.run(["dvc", "exp", "run", "--run-all", "--jobs", "1"], check=True)


def collect(epochs: tuple[int, ...], seeds: tuple[int, ...], out: Path, baseline: str) -> None:
    """One row per study experiment (runs.csv) and every epoch of each run (curves.csv)."""
    rows, curves = [], []
    for exp in experiments(baseline):
        if not exp["name"].startswith("study-"):
            continue
        params = exp["data"]["params"]["params.yaml"]["data"]
        metrics = {path: found["data"] for path, found in exp["data"]["metrics"].items()}
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
    expected = {experiment_name(a, e, s) for a in ARCHITECTURES for e in epochs for s in seeds}
    found = {experiment_name(row["architecture"], row["epochs"], row["seed"]) for row in rows}
    if missing := sorted(expected - found):
        raise SystemExit(f"error: {len(missing)} study experiments missing, e.g. {missing[0]}; "
                         "run `make study` (it resumes)")  # fmt: skip
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
    args = parser.parse_args(argv)
    epochs, seeds = tuple(args.epochs), tuple(args.seeds)
    if args.step == "run":
        run(epochs, seeds)
    if args.step in ("run", "collect"):
        collect(epochs, seeds, args.out, args.baseline)
    tables(args.out)
    print(f"wrote {args.out}/", file=sys.stderr)


if __name__ == "__main__":
    main()
