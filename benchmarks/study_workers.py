"""Two study workers on one machine, one core each, against one worker on both cores.

    python benchmarks/study_workers.py [--epochs 1] [--seeds 1 2] [--rounds 2] [--out FILE]

The same small study (both architectures, `--epochs`, `--seeds`), run the way several machines
run it (`python -m mnist_vae.study run --worker K/N`, each experiment pushed to a bare git
repository and a local-folder DVC remote as it finishes), in two configurations:

- one worker: `--worker 1/1` on both cores, so each stage trains on two threads;
- two workers: `--worker 1/2` pinned to core 0 and `--worker 2/2` pinned to core 1 (taskset),
  at the same time, so each stage trains on one thread (the stages use the cores they may).

Setup, untimed: a clone of this repository's HEAD through a bare repository, with this
workspace's MNIST, where `dvc repro classifier` has run, so that every experiment reuses one
classifier. Each round copies that clone afresh for every worker, with an empty git remote and
DVC remote, and times both configurations, starting with a different one each round. The
speed-up is the median of the rounds' ratios (one worker's wall time / two workers'), so a
drift in the machine's speed, large on shared machines, moves both sides of each ratio. Bytes:
every output of every experiment, as its dvc.lock records it (MD5 of each file), compared
between the configurations and between rounds. Needs Linux (taskset) and `make repro` first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from provenance import provenance  # this folder, as `python benchmarks/...` runs it

from mnist_vae.atomic import write_json
from mnist_vae.machine import label

REPO = Path(__file__).resolve().parents[1]
# The venv running this script runs the stages too, as `make repro` arranges.
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
ENV.pop("PYTHONPATH", None)
CONFIGURATIONS = {"one worker, 2 threads": [("0,1", "1/1")],
                  "two workers, 1 thread each": [("0", "1/2"), ("1", "2/2")]}  # fmt: skip


def sh(*command: str, cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {cwd}:\n{result.stderr[-3000:]}")
    return result.stdout


def prepare(root: Path) -> Path:
    """A clone of HEAD with MNIST and a trained classifier, its DVC cache in `root`."""
    sh("git", "clone", "-q", "--bare", str(REPO), str(root / "origin.git"), cwd=root)
    base = root / "base"
    sh("git", "clone", "-q", str(root / "origin.git"), str(base), cwd=root)
    sh("dvc", "cache", "dir", "--local", str(root / "cache"), cwd=base)
    shutil.copytree(REPO / "data" / "MNIST" / "raw", base / "data" / "MNIST" / "raw")
    sh("dvc", "repro", "classifier", cwd=base)  # the download stage verifies and keeps the files
    return base


def outputs(worker: Path) -> dict[str, dict[str, str]]:
    """Experiment name -> {output path: MD5} from each experiment's dvc.lock."""
    refs = sh("git", "for-each-ref", "--format=%(refname)", "refs/exps", cwd=worker).split()
    found = {}
    for ref in refs:
        lock = yaml.safe_load(sh("git", "show", f"{ref}:dvc.lock", cwd=worker))
        found[ref.rsplit("/", 1)[-1]] = {out["path"]: out["md5"]
                                          for stage in lock["stages"].values()
                                          for out in stage.get("outs", [])}  # fmt: skip
    return found


def run_configuration(name: str, base: Path, root: Path, study: list[str]) -> tuple[float, dict]:
    """Wall seconds from the first worker's start to the last one's end, and every output."""
    remote, storage = root / "remote.git", root / "storage"
    sh("git", "clone", "-q", "--bare", str(base.parent / "origin.git"), str(remote), cwd=root)
    workers = []
    for k, (cores, share) in enumerate(CONFIGURATIONS[name], 1):
        tree = root / f"worker-{k}"
        shutil.copytree(base, tree, symlinks=True)
        sh("git", "remote", "set-url", "origin", str(remote), cwd=tree)
        sh("dvc", "remote", "add", "--local", "-d", "storage", str(storage), cwd=tree)
        workers.append((tree, ["taskset", "-c", cores, sys.executable, "-m", "mnist_vae.study",
                               "run", *study, "--worker", share]))  # fmt: skip
    start = time.perf_counter()
    running = [subprocess.Popen(command, cwd=tree, env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True) for tree, command in workers]  # fmt: skip
    for process in running:
        _, stderr = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"{name}: a worker failed:\n{stderr[-3000:]}")
    seconds = time.perf_counter() - start
    found = {}
    for tree, _ in workers:
        found.update(outputs(tree))
    return round(seconds, 2), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    study = ["--epochs", *map(str, args.epochs), "--seeds", *map(str, args.seeds)]
    # Every experiment runs the whole pipeline of a clone of HEAD (not of the workspace).
    measured_here = provenance("cpu", "HEAD", whole_pipeline=True)
    names = list(CONFIGURATIONS)
    rounds, bytes_seen = [], {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="study-workers-") as tmp:
        base = prepare(Path(tmp))
        for index in range(args.rounds):
            order = names if index % 2 == 0 else names[::-1]
            seconds = {}
            for name in order:
                root = Path(tmp) / f"round-{index}" / name.split(",")[0].replace(" ", "-")
                root.mkdir(parents=True)
                seconds[name], found = run_configuration(name, base, root, study)
                bytes_seen[name].append(found)
                print(f"round {index + 1}: {name}: {seconds[name]} s", flush=True)
                shutil.rmtree(root)
            rounds.append({"order": order, "seconds": seconds,
                           "ratio": round(seconds[names[0]] / seconds[names[1]], 3)})  # fmt: skip
    reference = bytes_seen[names[0]][0]
    differing = sorted({f"{experiment}: {path}" for name in names for found in bytes_seen[name]
                        for experiment, files in found.items() for path, md5 in files.items()
                        if reference[experiment][path] != md5})  # fmt: skip
    repeatable = {name: all(found == bytes_seen[name][0] for found in bytes_seen[name])
                  for name in names}  # fmt: skip
    speedup = round(statistics.median(r["ratio"] for r in rounds), 3)
    summary = {
        **measured_here,
        "study": {"epochs": args.epochs, "seeds": args.seeds, "experiments": len(reference)},
        "rounds": rounds,
        "speedup_two_workers_median": speedup,
        "each_configuration_repeats_its_bytes": repeatable,
        "identical_bytes_across_configurations": not differing,
        "outputs_that_differ": differing,
    }
    print(f"{label(summary['machine'])}: two workers finish the study {speedup:.2f}x as fast as one (median of "
          f"{args.rounds} paired rounds); identical bytes: {not differing} "
          f"({len(differing)} outputs differ)")  # fmt: skip
    if args.out:
        write_json(args.out, summary)


if __name__ == "__main__":
    main()
