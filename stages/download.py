"""Stage `download`: the data set's four canonical IDX files, MD5-verified, in data/<dataset>/raw/."""

import _bootstrap  # noqa: F401  (first: this tree's package, and the right python)

# isort: split
from mnist_vae.cli import run_stage
from mnist_vae.download import fetch_dataset
from mnist_vae.params import load_params


def main() -> None:
    fetch_dataset("data", load_params().data.dataset)


if __name__ == "__main__":
    run_stage("download", main)
