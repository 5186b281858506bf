"""Time every stage of the pipeline, and `dvc repro -f` of the whole pipeline, at one revision
or at two side by side.

    python benchmarks/pipeline_speed.py [--after HEAD] [--before REV] [--rounds 3] [--out FILE]

Each revision is checked out into its own temporary git worktree, with this workspace's
data/MNIST/raw copied in (so nothing is downloaded and the workspace is not touched). Then, for
each of `--rounds` rounds (with `--before`, the two trees take turns, and which goes first
alternates by round):

- each stage of that tree's dvc.yaml, its command run as DVC would run it (through the shell,
  the outputs of the previous stages in place): wall seconds and the process's peak RSS;
- each stage's start-up alone: a python that runs only the script's top-level imports;
- `dvc repro -f`: every stage of that tree's dvc.yaml, through DVC.

It prints medians and writes every measurement as JSON (`--out`), with the commit measured
(`--after`), the stages of its dvc.yaml and this machine (benchmarks/provenance.py).
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from provenance import provenance  # this folder, as `python benchmarks/...` runs it

from mnist_vae.atomic import write_json
from mnist_vae.machine import label

REPO = Path(__file__).resolve().parents[1]


def measured(command: str, cwd: Path) -> dict:
    """Run `command` in a child python that reports its children's peak RSS."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1], shell=True, capture_output=True, text=True)\n"
        "s = time.perf_counter() - t\n"
        "if p.returncode: sys.exit(p.stderr)\n"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(round(s, 2), round(r / 1024))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, command], cwd=cwd, env=ENV, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"{command} failed in {cwd}:\n{result.stderr[-3000:]}")
    seconds, rss = result.stdout.split()
    return {"seconds": float(seconds), "peak_rss_mb": int(rss)}


def import_block(script: Path) -> str:
    """The script's top-level imports, as code."""
    tree = ast.parse(script.read_text())
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    return "\n".join(ast.unparse(node) for node in imports)


def stage_commands(tree: Path) -> dict[str, str]:
    stages = yaml.safe_load((tree / "dvc.yaml").read_text())["stages"]
    return {name: stage["cmd"] for name, stage in stages.items()}


def startup_command(tree: Path, command: str) -> str:
    script = tree / command.split()[-1]
    prefix = command[: command.index("python")]  # an old tree's `PYTHONPATH=src ` stays
    code = import_block(script).replace('"', '\\"')
    return f'{prefix}python -c "import sys; sys.path.insert(0, \\"stages\\")\n{code}"'


def worktree(rev: str, root: Path) -> Path:
    path = root / rev.replace("/", "_")
    subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=REPO, check=True,
                   capture_output=True)  # fmt: skip
    (path / "data/MNIST/raw").mkdir(parents=True, exist_ok=True)
    for file in (REPO / "data/MNIST/raw").iterdir():
        shutil.copy2(file, path / "data/MNIST/raw" / file.name)
    return path


# The venv running this script runs the stages too, as `make repro` arranges.
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
ENV.pop("PYTHONPATH", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--after", default="HEAD", help="the revision measured")
    parser.add_argument("--before", help="an earlier revision, timed in turns with --after")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    # Named by commit, so the JSON still says what was measured after HEAD moves on.
    given = {"before": args.before, "after": args.after}
    revisions = {
        side: subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout.strip()
        for side, rev in given.items() if rev is not None
    }  # fmt: skip
    measured_here = provenance("cpu", revisions["after"], whole_pipeline=True)
    runs: dict[str, dict[str, list[dict]]] = {side: {} for side in revisions}
    with tempfile.TemporaryDirectory(prefix="pipeline-speed-") as tmp:
        trees = {side: worktree(revision, Path(tmp)) for side, revision in revisions.items()}
        try:
            for round_ in range(args.rounds):
                order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]
                names = list(stage_commands(trees["after"]))
                for name in names:
                    for side in order:
                        tree = trees[side]
                        if name not in stage_commands(tree):
                            continue  # a stage the earlier revision did not have yet
                        command = stage_commands(tree)[name]
                        row = measured(command, tree)
                        row["startup_seconds"] = measured(startup_command(tree, command), tree)[
                            "seconds"
                        ]
                        runs[side].setdefault(name, []).append(row)
                        print(side, name, row, flush=True)
                for side in order:
                    row = measured("dvc repro -f", trees[side])
                    runs[side].setdefault("dvc repro -f", []).append(row)
                    print(side, "dvc repro -f", row, flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                               capture_output=True)  # fmt: skip

    def median(side: str, name: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[side][name]), 2)

    table = []
    compared = " → ".join(revisions[side] for side in ("before", "after") if side in revisions)
    print(f"{label(measured_here['machine'])}: medians of {args.rounds} rounds, {compared}")
    # (dvc repro -f has no start-up of its own: its row has the times and the RSS)
    for name in runs["after"]:
        row = {"step": name}
        for side in (side for side in trees if name in runs[side]):
            row[f"{side}_seconds"] = median(side, name, "seconds")
            if name != "dvc repro -f":
                row[f"{side}_startup_seconds"] = median(side, name, "startup_seconds")
        row["after_peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs["after"][name])
        table.append(row)
        print(" | ".join(f"{key} {value}" for key, value in row.items()))
    if args.out:
        write_json(args.out, {**measured_here, **revisions, "rounds": args.rounds,
                              "medians": table, "runs": runs})  # fmt: skip


if __name__ == "__main__":
    main()
