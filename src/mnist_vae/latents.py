"""Working in the latent space: posterior means, decoding, lines and lattices of z."""

from __future__ import annotations

import torch

from mnist_vae.loops import EVAL_BATCH_SIZE
from mnist_vae.model import VAE


@torch.no_grad()
def posterior_means(model: VAE, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model.encode(chunk)[0] for chunk in x.split(EVAL_BATCH_SIZE)])


@torch.no_grad()
def decode(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """Pixel probabilities (N, 784) for latents z (N, latent_dim)."""
    return torch.cat([model.decode(chunk) for chunk in z.split(EVAL_BATCH_SIZE)])


def line_between(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` evenly spaced points from `start` to `end`, both included exactly."""
    weights = torch.linspace(0, 1, steps, device=start.device).unsqueeze(1)
    # torch.lerp returns `start` at weight 0 and `end` at weight 1 bit for bit.
    return torch.lerp(start.unsqueeze(0), end.unsqueeze(0), weights)


def lattice_axis(size: int, low_quantile: float, high_quantile: float) -> torch.Tensor:
    """`size` standard-normal quantiles evenly spaced in probability from low to high."""
    probabilities = torch.linspace(low_quantile, high_quantile, size, dtype=torch.float64)
    return torch.distributions.Normal(0.0, 1.0).icdf(probabilities).float()


def lattice(latent_dim: int, axis: torch.Tensor) -> torch.Tensor:
    """Latents for a picture of the latent plane, in reading order.

    Rows go from the highest z2 (top) to the lowest, columns from the lowest z1 (left).
    Dimensions beyond the first two sit at the prior mean 0; a 1-D latent gives one row.
    """
    if latent_dim == 1:
        return axis.unsqueeze(1)
    z2, z1 = torch.meshgrid(axis.flip(0), axis, indexing="ij")
    z = torch.zeros(z1.numel(), latent_dim)
    z[:, 0], z[:, 1] = z1.reshape(-1), z2.reshape(-1)
    return z


def pick_image(labels: torch.Tensor, digit: int, index: int | None) -> int:
    """The test image to use for `digit`: `index` if given (it must show that digit), else the
    first image of that digit. LookupError says why there is none."""
    if index is None:
        matches = (labels == digit).nonzero()
        if len(matches) == 0:
            raise LookupError(f"the test set has no image of digit {digit}")
        return int(matches[0])
    if index >= len(labels):
        raise LookupError(f"expected a test-set index below {len(labels)}, got {index}")
    if int(labels[index]) != digit:
        raise LookupError(
            f"test image {index} shows a {int(labels[index])}, not the requested digit {digit}"
        )
    return index
