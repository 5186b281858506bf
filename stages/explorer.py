"""Stage `explorer`: the latent plane as one offline page that decodes under the pointer."""

import _bootstrap  # noqa: F401  (first: this tree's package, and the right python)

# isort: split
from mnist_vae.atomic import atomic_open
from mnist_vae.checkpoints import load_model
from mnist_vae.cli import run_stage
from mnist_vae.explorer import explorer_page
from mnist_vae.idx import DATASETS
from mnist_vae.mnist import load_split
from mnist_vae.model import VAE
from mnist_vae.params import load_params
from mnist_vae.runtime import configure_threads


def main() -> None:
    # On the CPU, whatever `device` says: the page decodes in a browser, and a GPU would only
    # make its posterior means differ in the last bits from machine to machine.
    params = load_params()
    configure_threads()
    vae = load_model("models/vae.pt", VAE, expected=params.model.model_dump())
    dataset = DATASETS[params.data.dataset]
    test = load_split("data", "test", dataset.name)
    page = explorer_page(vae, test.images, test.labels, dataset, params.interpolate.steps)
    with atomic_open("plots/latent_explorer.html", "w") as handle:
        handle.write(page)


if __name__ == "__main__":
    run_stage("explorer", main)
