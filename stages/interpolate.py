"""Stage `interpolate`: decode a straight line between two digits' latents, and a lattice."""

import _bootstrap  # noqa: F401  (first: this tree's package, and the right python)

# isort: split
from mnist_vae.checkpoints import load_model
from mnist_vae.cli import run_stage
from mnist_vae.figures import digit_grid, digit_panels
from mnist_vae.latents import (
    decode,
    lattice,
    lattice_axis,
    line_between,
    pick_image,
    posterior_means,
)
from mnist_vae.mnist import load_split
from mnist_vae.model import VAE
from mnist_vae.params import ParamsError
from mnist_vae.runtime import stage_setup


def main() -> None:
    params, device = stage_setup()
    settings = params.interpolate
    vae = load_model("models/vae.pt", VAE, expected=params.model.model_dump(), device=device)
    test = load_split("data", "test", params.data.dataset)

    def endpoint(end: str) -> int:
        digit, index = getattr(settings, f"{end}_digit"), getattr(settings, f"{end}_index")
        try:
            return pick_image(test.labels, digit, index)
        except LookupError as error:
            raise ParamsError(f"params.yaml: interpolate.{end}_index: {error}") from None

    start, end = endpoint("start"), endpoint("end")
    endpoints = test.flat_float(device)[[start, end]]
    means = posterior_means(vae, endpoints)
    steps = settings.steps
    digit_panels(
        [
            (f"test #{start}", digit_grid(endpoints[:1], 1)),
            (
                f"{steps} latents on the line between their posterior means, decoded",
                digit_grid(decode(vae, line_between(means[0], means[1], steps)), steps),
            ),
            (f"test #{end}", digit_grid(endpoints[1:], 1)),
        ],
        "plots/interpolation.png",
    )

    size = settings.grid_size
    low, high = settings.grid_low_quantile, settings.grid_high_quantile
    axis = lattice_axis(size, low, high)
    z = lattice(vae.latent_dim, axis).to(device)
    if vae.latent_dim == 1:
        title = f"{size} points over the 1-D latent (normal quantiles {low}–{high})"
    else:
        title = f"{size}×{size} lattice over z1, z2 (normal quantiles {low}–{high}: {axis[0]:.2f} … {axis[-1]:.2f})"
        if vae.latent_dim > 2:
            title += f"; the other {vae.latent_dim - 2} dimensions at 0"
    digit_panels([(title, digit_grid(decode(vae, z), size))], "plots/latent_grid.png")


if __name__ == "__main__":
    run_stage("interpolate", main)
