"""Stage `download`: the four canonical MNIST IDX files, MD5-verified, in data/MNIST/raw/."""

from mnist_vae.cli import run_stage
from mnist_vae.download import fetch_mnist


def main() -> None:
    fetch_mnist("data")


if __name__ == "__main__":
    run_stage("download", main)
