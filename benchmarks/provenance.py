"""What a result measured: the commit, the pipeline's stages in that commit's dvc.yaml, and the
machine (`mnist_vae.machine.describe`).

Every benchmark script puts this record at the top level of the JSON it writes, so that a
result still says what it measured after the code, the pipeline or the machine has moved on:
tests/test_docs.py fails when a doc quotes a whole-pipeline result whose stages are not the
current dvc.yaml's. Results that are not a benchmark's (an experiment's metrics committed under
docs/results/<name>/) carry the same record in a file of their own:

    python benchmarks/provenance.py --revision BASELINE --out docs/results/NAME/provenance.json

where BASELINE is the commit the experiment ran from (`dvc exp show` names it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import yaml

from mnist_vae.atomic import write_json
from mnist_vae.machine import describe

REPO = Path(__file__).resolve().parents[1]


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(
            f"git {' '.join(args)} failed in {REPO} (a result records the commit it measured, "
            f"so run it in a git checkout): {result.stderr.strip()}"
        )
    return result.stdout


def stages_at(commit: str) -> list[str]:
    """The stage names of `commit`'s dvc.yaml, in its order."""
    return list(yaml.safe_load(git("show", f"{commit}:dvc.yaml"))["stages"])


def provenance(
    device: str = "cpu", revision: str | None = None, whole_pipeline: bool = False
) -> dict:
    """The record for a measurement made here, on `device` (as `runtime.describe_device` names
    it), of the workspace (`revision` None: HEAD, and the tracked files that differ from it) or
    of a clean checkout of `revision`. `whole_pipeline`: the result holds only while dvc.yaml
    has the stages it ran."""
    commit = git("rev-parse", "--short", revision or "HEAD").strip()
    record: dict = {
        "commit": commit,
        "pipeline_stages": stages_at(commit),
        "machine": describe(device),
    }
    if revision is None:
        changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
        if changed:
            record["uncommitted_changes"] = sorted(line[3:] for line in changed)
    if whole_pipeline:
        record["whole_pipeline"] = True
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--revision", help="the commit measured (default: the workspace)")
    parser.add_argument("--device", default="cpu", help="the device the work ran on")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    record = provenance(args.device, args.revision)
    print(json.dumps(record, indent=2, sort_keys=True))
    if args.out:
        write_json(args.out, record)


if __name__ == "__main__":
    main()
