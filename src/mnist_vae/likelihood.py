"""Lower bounds on log p(x): the ELBO, and the importance-weighted bound (Burda et al. 2015).

log p(x) ≥ E[log (1/k) Σ_i p(x, z_i) / q(z_i | x)],  z_i ~ q(z | x).

k = 1 is the ELBO (estimated with one sample instead of the analytic KL); the bound tightens
as k grows. Samples are processed in chunks and combined with a running logsumexp, so k = 5000
needs no more memory than k = 50.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mnist_vae.loops import EVAL_BATCH_SIZE
from mnist_vae.model import VAE, loss_terms, reconstruction_nll

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class ElboTerms:
    """Negative ELBO per image, in nats."""

    recon: float
    kl: float

    @property
    def loss(self) -> float:
        return self.recon + self.kl


def elbo_per_image(recon_sum: torch.Tensor, kl_sum: torch.Tensor, count: int) -> ElboTerms:
    totals = torch.stack([recon_sum, kl_sum]).tolist()  # the one host sync
    return ElboTerms(recon=totals[0] / count, kl=totals[1] / count)


@torch.no_grad()
def evaluate_elbo(model: VAE, x: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> ElboTerms:
    """One-sample estimate of the negative ELBO per image (z is sampled, as in training)."""
    model.eval()
    recon_sum = torch.zeros((), device=x.device)
    kl_sum = torch.zeros((), device=x.device)
    for batch in x.split(batch_size):
        logits, mu, logvar = model(batch)
        recon, kl = loss_terms(logits, batch, mu, logvar, model.likelihood)
        recon_sum += recon.sum()
        kl_sum += kl.sum()
    return elbo_per_image(recon_sum, kl_sum, len(x))


def _standard_normal_log_density(eps: torch.Tensor) -> torch.Tensor:
    return -0.5 * (eps.pow(2) + LOG_2PI).sum(dim=-1)


@torch.no_grad()
def importance_weighted_bound(
    model: VAE,
    x: torch.Tensor,
    k: int,
    *,
    generator: torch.Generator,
    batch_size: int = 100,
    samples_per_pass: int = 500,
    on_batch=lambda images: None,
) -> torch.Tensor:
    """The k-sample bound on log p(x) in nats, one value per image of x (N, 784).

    Noise comes from `generator` (a CPU generator, so the same seed gives the same estimate on
    any device).
    """
    model.eval()
    bounds = []
    for images in x.split(batch_size):
        mu, logvar = model.encode(images)
        std = torch.exp(0.5 * logvar)
        log_det = 0.5 * logvar.sum(dim=-1)  # log of the product of the stds, once per image
        running = None
        for start in range(0, k, samples_per_pass):
            count = min(samples_per_pass, k - start)
            eps = torch.randn(count, *mu.shape, generator=generator).to(x.device)
            z = mu + std * eps
            logits = model.decode_logits(z.reshape(-1, z.shape[-1])).reshape(count, len(images), -1)
            log_p_x_given_z = -reconstruction_nll(
                logits, images.expand_as(logits), model.likelihood
            )
            log_p_z = _standard_normal_log_density(z)
            # q(z|x) at z = mu + std * eps: the density of eps, less the log-determinant.
            log_q_z = _standard_normal_log_density(eps) - log_det
            chunk = torch.logsumexp(log_p_x_given_z + log_p_z - log_q_z, dim=0)
            running = chunk if running is None else torch.logaddexp(running, chunk)
        bounds.append(running - math.log(k))
        on_batch(len(images))
    return torch.cat(bounds)


def bits_per_dimension(log_likelihood_nats: float, dimensions: int = 784) -> float:
    return -log_likelihood_nats / (dimensions * math.log(2))
