"""The importance-weighted bound on log p(x) (Burda et al. 2015), for `evaluate_likelihood`.

log p(x) ≥ E[log (1/k) Σ_i p(x, z_i) / q(z_i | x)],  z_i ~ q(z | x).

k = 1 is the ELBO, estimated with one sample instead of the analytic KL that training's ELBO
(`mnist_vae.training`) uses; the bound tightens as k grows. Samples are processed in chunks
and combined with a running logsumexp, so k = 5000 needs no more memory than k = 1000.
"""

from __future__ import annotations

import math

import torch

from mnist_vae.model import VAE, reconstruction_nll

LOG_2PI = math.log(2 * math.pi)


def _standard_normal_log_density(eps: torch.Tensor) -> torch.Tensor:
    return -0.5 * (eps.pow(2) + LOG_2PI).sum(dim=-1)


def _bernoulli_log_likelihoods(model: VAE, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x_b | z_sb) in nats, shape (S, B), for latents z (S, B, d) of images x (B, 784).

    The same sum as the decoder's 784 logits l give pixel by pixel, from two identities:

    1. A decoder with one hidden layer is piecewise linear in its input u = `model.decoder_input(z)`:
       l = W₄ h + b₄ with h = relu(W₃ u + b₃). One image's samples lie in a small box of u; a
       hidden unit whose input is positive over the whole box (its ends along each axis decide)
       is linear there, and one negative over it is zero. So l = (W₄ D W₃) u + W₄ D b₃ + b₄ +
       W₄ relu(W₃ u + b₃) over the few units K that switch inside the box, with D the linear
       ones: a product with d + |K| inputs (2 + about 25 on average for the report's model)
       instead of 400. Only float32 rounding differs from the layer-by-layer product.
    2. Per pixel, log p = x·l − softplus(l) and softplus(l) = (l + |l|)/2 − log σ(|l|), so
       log p(x|z) = (x − ½)·l − ½ Σ|l| + Σ log σ(|l|). The logits then take three passes: |l| in
       place, its sum, and σ(|l|) ∈ [0.5, 1] in place, whose logarithm is taken of products of 49
       values (each ≥ 2⁻⁴⁹, far from float32's limits): 16 logarithms per image, not 784.
    """
    u = model.decoder_input(z)
    hidden, out = model.decoder[0], model.fc_out
    w3, b3, w4, b4 = hidden.weight, hidden.bias, out.weight, out.bias
    low, high = torch.aminmax(u, dim=0)  # each image's box, (B, d)
    ends = torch.stack([low.unsqueeze(1) * w3, high.unsqueeze(1) * w3])  # (2, B, hidden, d)
    lowest, highest = ends.amin(dim=0).sum(dim=-1) + b3, ends.amax(dim=0).sum(dim=-1) + b3
    linear, kinked = lowest > 0, (highest > 0) & (lowest <= 0)  # (B, hidden)
    # W₄ D [W₃ | b₃] for every image of the batch in one product: (784, B, d + 1).
    masked = torch.cat([w3, b3.unsqueeze(1)], dim=1) * linear.unsqueeze(-1)
    collapsed = (w4 @ masked.transpose(0, 1).reshape(len(w3), -1)).view(len(w4), len(x), -1)
    centred = x - 0.5
    columns = []
    for image in range(len(x)):
        units = kinked[image].nonzero().squeeze(1)
        weight = torch.cat([collapsed[:, image, :-1], w4.index_select(1, units)], dim=1)
        bias = collapsed[:, image, -1] + b4
        inputs = u[:, image]
        hidden = torch.addmm(b3.index_select(0, units), inputs, w3.index_select(0, units).t())
        inputs = torch.cat([inputs, hidden.clamp_(min=0)], dim=1)  # (S, d + |K|)
        abs_logits = torch.addmm(bias, inputs, weight.t()).abs_()  # (S, 784)
        centred_dot_logits = inputs @ (centred[image] @ weight) + bias @ centred[image]
        abs_sum = abs_logits.sum(dim=-1)
        groups = abs_logits.sigmoid_().view(len(abs_logits), -1, 49)
        log_sigmoid_sum = groups.prod(dim=-1).log_().sum(dim=-1)
        columns.append(centred_dot_logits - 0.5 * abs_sum + log_sigmoid_sum)
    return torch.stack(columns, dim=1)


def _log_likelihoods(model: VAE, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x_b | z_sb) in nats, shape (S, B), for latents z (S, B, d) of images x (B, 784)."""
    if model.likelihood == "bernoulli" and len(model.hidden_dims) == 1:
        return _bernoulli_log_likelihoods(model, z, x)
    # One image at a time, so the logits (S × 784 floats) stay small.
    columns = []
    for image in range(len(x)):
        logits = model.decode_logits(z[:, image])
        columns.append(-reconstruction_nll(logits, x[image].expand_as(logits), model.likelihood))
    return torch.stack(columns, dim=1)


@torch.no_grad()
def importance_weighted_bound(
    model: VAE,
    x: torch.Tensor,
    k: int,
    *,
    generator: torch.Generator,
    batch_size: int = 100,
    samples_per_draw: int = 1000,
    on_batch=lambda images: None,
) -> torch.Tensor:
    """The k-sample bound on log p(x) in nats, one value per image of x (N, 784).

    Noise comes from `generator` (a CPU generator, so the same seed gives the same estimate on
    any device), drawn `samples_per_draw` samples at a time for `batch_size` images; each draw
    is weighed and reduced to a logsumexp per image, and the draws are combined as they come.
    Each draw's per-image work has a fixed cost, so larger draws are cheaper per sample, until an
    image's logits (samples_per_draw × 784 floats) no longer fit the CPU's cache.
    """
    model.eval()
    bounds = []
    for images in x.split(batch_size):
        mu, logvar = model.encode(images)
        std = torch.exp(0.5 * logvar)
        log_det = 0.5 * logvar.sum(dim=-1)  # log of the product of the stds, once per image
        running = None
        for start in range(0, k, samples_per_draw):
            count = min(samples_per_draw, k - start)
            eps = torch.randn(count, *mu.shape, generator=generator).to(x.device)
            z = mu + std * eps
            log_weights = _log_likelihoods(model, z, images)
            # + log p(z) − log q(z|x); q's density at z = mu + std·eps is eps's, less the log-det.
            log_weights += _standard_normal_log_density(z) - _standard_normal_log_density(eps)
            log_weights += log_det
            chunk = torch.logsumexp(log_weights, dim=0)
            running = chunk if running is None else torch.logaddexp(running, chunk)
        bounds.append(running - math.log(k))
        on_batch(len(images))
    return torch.cat(bounds)


def bits_per_dimension(log_likelihood_nats: float, dimensions: int = 784) -> float:
    return -log_likelihood_nats / (dimensions * math.log(2))
