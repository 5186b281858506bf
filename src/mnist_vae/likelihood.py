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


def _linear(h: torch.Tensor, layer: torch.nn.Linear) -> torch.Tensor:
    """layer(h), through oneDNN's matmul on the CPU: for these shapes it was faster than MKL's
    sgemm (which nn.Linear uses) on the 2-core machine, and this product is most of the
    bound's time. The same product up to float32 rounding; elsewhere, the layer itself."""
    if h.device.type == "cpu" and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return torch.ops.mkldnn._linear_pointwise(h, layer.weight, layer.bias, "none", [], "")
    return layer(h)


def _bernoulli_log_likelihoods(
    model: VAE, z: torch.Tensor, centred_weight: torch.Tensor, centred_bias: torch.Tensor
) -> torch.Tensor:
    """log p(x_i | z_si) in nats, shape (S, B), for latents z (S, B, d) of images x (B, 784),
    given (x − ½) W and (x − ½) · b for the decoder's last layer (once per image batch).

    Per pixel, log p = x·l − softplus(l) for the logit l = W h + b, and softplus(l) =
    relu(l) − log σ(|l|) = (l + |l|)/2 − log σ(|l|). Summed over the 784 pixels:

        log p(x|z) = (x − ½)·l − ½ Σ|l| + Σ log σ(|l|),

    where (x − ½)·l = h · (Wᵀ(x − ½)) + b · (x − ½) is a dot product over the hidden units, not
    the pixels. The logits then need three passes: |l| in place, its sum, and σ(|l|) ∈ [0.5, 1]
    in place, whose logarithm is taken of products of 49 values (each ≥ 2⁻⁴⁹, far from float32's
    limits): 16 logarithms per image instead of 784.
    """
    h = model.decoder_hidden(z)  # (S, B, hidden)
    centred_dot_logits = torch.linalg.vecdot(h, centred_weight) + centred_bias
    abs_logits = _linear(h.reshape(-1, h.shape[-1]), model.fc4).abs_()  # (S·B, 784)
    abs_sum = abs_logits.sum(dim=-1)
    groups = abs_logits.sigmoid_().view(len(abs_logits), -1, 49)
    log_sigmoid_sum = groups.prod(dim=-1).log_().sum(dim=-1)
    return centred_dot_logits - (0.5 * abs_sum - log_sigmoid_sum).view(z.shape[:2])


@torch.no_grad()
def importance_weighted_bound(
    model: VAE,
    x: torch.Tensor,
    k: int,
    *,
    generator: torch.Generator,
    batch_size: int = 100,
    samples_per_draw: int = 500,
    samples_per_pass: int = 5,
    on_batch=lambda images: None,
) -> torch.Tensor:
    """The k-sample bound on log p(x) in nats, one value per image of x (N, 784).

    Noise comes from `generator` (a CPU generator, so the same seed gives the same estimate on
    any device), drawn `samples_per_draw` samples at a time; the decoder then works on
    `samples_per_pass` of them at a time, few enough that its logits (5 × 100 × 784 floats)
    stay in the CPU's cache for the passes over them.
    """
    model.eval()
    bounds = []
    for images in x.split(batch_size):
        mu, logvar = model.encode(images)
        std = torch.exp(0.5 * logvar)
        log_det = 0.5 * logvar.sum(dim=-1)  # log of the product of the stds, once per image
        running = None
        if model.likelihood == "bernoulli":
            centred = images - 0.5
            centred_weight, centred_bias = centred @ model.fc4.weight, centred @ model.fc4.bias
        for start in range(0, k, samples_per_draw):
            count = min(samples_per_draw, k - start)
            draw = torch.randn(count, *mu.shape, generator=generator).to(x.device)
            for eps in draw.split(samples_per_pass):
                z = mu + std * eps
                if model.likelihood == "bernoulli":
                    log_p_x_given_z = _bernoulli_log_likelihoods(
                        model, z, centred_weight, centred_bias
                    )
                else:
                    logits = model.decode_logits(z)
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
