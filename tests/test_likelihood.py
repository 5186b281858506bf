import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal

from mnist_vae.likelihood import (
    _bernoulli_log_likelihoods,
    bits_per_dimension,
    evaluate_elbo,
    importance_weighted_bound,
)
from mnist_vae.model import (
    VAE,
    continuous_bernoulli_log_norm,
    continuous_bernoulli_mean,
    reconstruction_nll,
)
from mnist_vae.training import fit


def _bound(model, x, k, seed=0, **kwargs):
    return importance_weighted_bound(
        model, x, k, generator=torch.Generator().manual_seed(seed), **kwargs
    )


def test_the_bound_is_log_p_x_exactly_when_the_posterior_is_exact():
    # A decoder that ignores z makes p(x|z) = p(x), so the true posterior is the prior; an encoder
    # that outputs mu = 0, logvar = 0 is then exact and every importance weight equals p(x).
    torch.manual_seed(0)
    model = VAE(hidden_dim=8, latent_dim=2)
    with torch.no_grad():
        for layer in (model.fc_mu, model.fc_logvar, model.fc3):
            layer.weight.zero_()
            layer.bias.zero_()
        model.fc4.weight.zero_()
        model.fc4.bias.copy_(torch.randn(784))
    x = torch.rand(6, 784)
    log_p_x = -reconstruction_nll(model.fc4.bias.expand(6, -1), x)
    for k in (1, 7, 600):
        bound = _bound(model, x, k, samples_per_draw=250)
        assert torch.allclose(bound, log_p_x, rtol=0, atol=1e-3), k


@pytest.mark.parametrize("spread", [0.02, 0.3, 3.0])  # nearly all units linear … many kinked
@pytest.mark.parametrize("sigmoid_latent", [True, False])
def test_the_fast_bernoulli_log_likelihood_is_the_per_pixel_sum(sigmoid_latent, spread):
    torch.manual_seed(0)
    model = VAE(hidden_dim=32, latent_dim=3, sigmoid_latent=sigmoid_latent).eval()
    with torch.no_grad():
        model.fc4.weight.mul_(20)  # logits far into both tails, where softplus is delicate
    x = torch.rand(7, 784) * (torch.rand(7, 784) > 0.5)  # grey levels and exact zeros
    z = torch.randn(7, 3) + spread * torch.randn(50, 7, 3)  # 50 samples around each image's mean
    with torch.no_grad():
        fast = _bernoulli_log_likelihoods(model, z, x)
        logits = copy.deepcopy(model).double().decode_logits(z.double())
        reference = -F.binary_cross_entropy_with_logits(
            logits, x.expand_as(logits).double(), reduction="none"
        ).sum(-1)
    assert fast.shape == (50, 7)
    assert torch.allclose(fast.double(), reference, rtol=1e-5, atol=1e-2)


def _reference_bound(model, x, k, seed, batch_size, samples_per_draw):
    """The bound layer by layer in float64, from the same noise (drawn in the same order)."""
    generator = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(model).double()
    bounds = []
    for images in x.double().split(batch_size):
        mu, logvar = model.encode(images)
        std = torch.exp(0.5 * logvar)
        log_weights = []
        for start in range(0, k, samples_per_draw):
            count = min(samples_per_draw, k - start)
            eps = torch.randn(count, *mu.shape, generator=generator).double()
            z = mu + std * eps
            log_p_x_given_z = -reconstruction_nll(
                model.decode_logits(z), images.expand(count, -1, -1), model.likelihood
            )
            log_p_z = Normal(0, 1).log_prob(z).sum(-1)
            log_q_z = Normal(mu, std).log_prob(z).sum(-1)
            log_weights.append(log_p_x_given_z + log_p_z - log_q_z)
        bounds.append(torch.logsumexp(torch.cat(log_weights), dim=0) - math.log(k))
    return torch.cat(bounds)


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli"])
def test_the_bound_is_the_float64_layer_by_layer_bound(likelihood):
    # 23 images in batches of 10, k = 60 in draws of 25, 25 and 10: every way of chunking.
    torch.manual_seed(0)
    model = VAE(hidden_dim=16, likelihood=likelihood).eval()
    x = torch.rand(23, 784)
    with torch.no_grad():
        fast = _bound(model, x, 60, seed=3, batch_size=10, samples_per_draw=25)
        reference = _reference_bound(model, x, 60, seed=3, batch_size=10, samples_per_draw=25)
    assert torch.allclose(fast.double(), reference, rtol=0, atol=1e-3)


def test_more_importance_samples_give_a_tighter_bound():
    torch.manual_seed(0)
    model = VAE(hidden_dim=16)
    x = torch.rand(300, 784)
    assert _bound(model, x, 10).mean() > _bound(model, x, 1).mean()


def test_k_equal_1_is_the_elbo_within_noise(synthetic_root):
    from mnist_vae.mnist import load_split

    torch.manual_seed(0)
    model = VAE(hidden_dim=16)
    train = load_split(synthetic_root, "train").flat_float()
    fit(model, train, train[:10], epochs=2, batch_size=64, lr=1e-2, seed=0)
    x = train.repeat(4, 1)  # 2048 rows: sampling noise averages out
    bound = _bound(model, x, 1)
    torch.manual_seed(1)
    elbo = -evaluate_elbo(model, x).loss  # analytic KL, one sample for the reconstruction
    standard_error = bound.std().item() / math.sqrt(len(bound))
    assert abs(bound.mean().item() - elbo) < 4 * standard_error + 0.05


def _numerical_log_norm(p: float) -> float:
    grid = np.linspace(0, 1, 200_001)
    density = p**grid * (1 - p) ** (1 - grid)
    return -math.log(np.trapezoid(density, grid))


@pytest.mark.parametrize("p", [0.01, 0.2, 0.5 - 1e-4, 0.5, 0.5 + 1e-4, 0.8, 0.999])
def test_continuous_bernoulli_normaliser_matches_numerical_integration(p):
    logit = torch.logit(torch.tensor(p, dtype=torch.float64))
    assert continuous_bernoulli_log_norm(logit).item() == pytest.approx(
        _numerical_log_norm(p), abs=1e-6
    )
    # float32, as in training: still finite and accurate at and around 0.5
    logit32 = logit.float()
    assert continuous_bernoulli_log_norm(logit32).item() == pytest.approx(
        _numerical_log_norm(p), abs=1e-5
    )


@pytest.mark.parametrize("p", [0.05, 0.5 - 1e-4, 0.5, 0.7])
def test_continuous_bernoulli_mean_matches_numerical_integration(p):
    grid = np.linspace(0, 1, 200_001)
    density = p**grid * (1 - p) ** (1 - grid)
    expected = np.trapezoid(grid * density, grid) / np.trapezoid(density, grid)
    logit = torch.logit(torch.tensor(p, dtype=torch.float64))
    assert continuous_bernoulli_mean(logit).item() == pytest.approx(expected, abs=1e-6)


def test_bits_per_dimension():
    assert bits_per_dimension(-784 * math.log(2)) == pytest.approx(1.0)


class _RecordingVAE(VAE):
    def forward(self, x):
        if self.training:  # the training batches, not the per-epoch test evaluation
            self.seen.append(x.detach().clone())
        return super().forward(x)


def _batches_seen(seed):
    torch.manual_seed(0)
    model = _RecordingVAE(hidden_dim=4)
    model.seen = []
    grey = torch.full((32, 784), 0.5)
    fit(model, grey, grey[:4], epochs=2, batch_size=32, lr=1e-3, seed=seed, binarize="dynamic")
    return model.seen


def test_dynamic_binarization_draws_new_pixels_each_epoch_reproducibly():
    first_run, second_run = _batches_seen(3), _batches_seen(3)
    epoch_1, epoch_2 = first_run
    assert set(epoch_1.unique().tolist()) == {0.0, 1.0}
    # every image is uniform grey, so the shuffle cannot explain a difference: the draw does
    assert not torch.equal(epoch_1.sort(dim=0).values, epoch_2.sort(dim=0).values)
    assert all(torch.equal(a, b) for a, b in zip(first_run, second_run, strict=True))
    assert not torch.equal(_batches_seen(4)[0], epoch_1)
