import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mnist_vae.likelihood import (
    _bernoulli_log_likelihoods,
    bits_per_dimension,
    importance_weighted_bound,
)
from mnist_vae.model import (
    VAE,
    continuous_bernoulli_log_norm,
    continuous_bernoulli_mean,
    reconstruction_nll,
)
from mnist_vae.training import evaluate_elbo, fit


def _bound(model, x, k, seed=0, **kwargs):
    return importance_weighted_bound(
        model, x, k, generator=torch.Generator().manual_seed(seed), **kwargs
    )


def test_the_bound_is_log_p_x_exactly_when_the_posterior_is_exact():
    # A decoder that ignores z makes p(x|z) = p(x), so the true posterior is the prior; an encoder
    # that outputs mu = 0, logvar = 0 is then exact and every importance weight equals p(x).
    torch.manual_seed(0)
    model = VAE(hidden_dims=[8], latent_dim=2)
    with torch.no_grad():
        for layer in (model.fc_mu, model.fc_logvar, model.decoder[0]):
            layer.weight.zero_()
            layer.bias.zero_()
        model.fc_out.weight.zero_()
        model.fc_out.bias.copy_(torch.randn(784))
    x = torch.rand(6, 784)
    log_p_x = -reconstruction_nll(model.fc_out.bias.expand(6, -1), x)
    for k in (1, 7, 600):
        bound = _bound(model, x, k, samples_per_draw=250)
        assert torch.allclose(bound, log_p_x, rtol=0, atol=1e-3), k


@pytest.mark.parametrize("spread", [0.02, 0.3, 3.0])  # nearly all units linear … many kinked
@pytest.mark.parametrize("sigmoid_latent", [True, False])
def test_the_fast_bernoulli_log_likelihood_is_the_per_pixel_sum(sigmoid_latent, spread):
    torch.manual_seed(0)
    model = VAE(hidden_dims=[32], latent_dim=3, sigmoid_latent=sigmoid_latent).eval()
    with torch.no_grad():
        model.fc_out.weight.mul_(20)  # logits far into both tails, where softplus is delicate
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


def _reference_bound(model, x, k, seed):
    """The k-sample bound written from its formula in float64, with noise of its own:
    log (1/k) Σᵢ p(x | zᵢ) N(zᵢ; 0, I) / N(zᵢ; μ, σ²),  zᵢ = μ + σ εᵢ,  εᵢ ~ N(0, I)."""
    w = {name: tensor.detach().double() for name, tensor in model.state_dict().items()}

    def relu_layers(h, stack):  # `stack`'s Linear layers are its modules 0, 2, 4, ...
        for i in range(len(model.hidden_dims)):
            h = torch.relu(h @ w[f"{stack}.{2 * i}.weight"].T + w[f"{stack}.{2 * i}.bias"])
        return h

    x = x.double()
    h = relu_layers(x, "encoder")
    mu = h @ w["fc_mu.weight"].T + w["fc_mu.bias"]
    sigma = torch.exp(0.5 * (h @ w["fc_logvar.weight"].T + w["fc_logvar.bias"]))
    eps = torch.randn(k, *mu.shape, generator=torch.Generator().manual_seed(seed)).double()
    z = mu + sigma * eps  # (k, N, d)
    u = torch.sigmoid(z) if model.sigmoid_latent else z
    logits = relu_layers(u, "decoder") @ w["fc_out.weight"].T + w["fc_out.bias"]
    p = torch.sigmoid(logits)
    log_p_x_given_z = x * torch.log(p) + (1 - x) * torch.log1p(-p)  # Bernoulli, per pixel
    if model.likelihood == "continuous_bernoulli":  # + log C(p), C(p) = 2 atanh(1-2p) / (1-2p)
        log_p_x_given_z += torch.log(2 * torch.atanh(1 - 2 * p) / (1 - 2 * p))
    log_normal = lambda value, mean, std: (  # noqa: E731
        -0.5 * ((value - mean) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)
    ).sum(-1)
    one = torch.ones((), dtype=torch.float64)
    log_weights = log_p_x_given_z.sum(-1) + log_normal(z, 0 * one, one) - log_normal(z, mu, sigma)
    return torch.logsumexp(log_weights, dim=0) - math.log(k)


@pytest.mark.parametrize(
    ("likelihood", "hidden_dims"),
    [("bernoulli", [16]), ("continuous_bernoulli", [16]), ("bernoulli", [16, 8])],
)
def test_the_bound_is_the_bound_written_from_its_formula(likelihood, hidden_dims):
    # The same estimator with other noise: the two differ only by sampling noise, about 0.1 nats
    # per image here, 0.03 in the mean. An encoder that is off the prior (mean 0.3, log-variance
    # -0.4) makes each term of the weights count: a dropped log-determinant moves the mean by
    # 0.4, a draw left out of the running logsumexp by a nat. Ours runs in batches of 4 images
    # and draws of 700, 700 and 600 samples. Two hidden layers take the layer-by-layer path.
    torch.manual_seed(0)
    model = VAE(hidden_dims=hidden_dims, likelihood=likelihood).eval()
    with torch.no_grad():
        model.fc_mu.bias.add_(0.3)
        model.fc_logvar.bias.fill_(-0.4)
    x = torch.rand(8, 784)
    with torch.no_grad():
        fast = _bound(model, x, 2000, seed=3, batch_size=4, samples_per_draw=700).double()
        reference = _reference_bound(model, x, 2000, seed=4)
    assert (fast - reference).abs().max() < 0.3
    assert abs((fast - reference).mean()) < 0.08


def test_more_importance_samples_give_a_tighter_bound():
    torch.manual_seed(0)
    model = VAE(hidden_dims=[16])
    x = torch.rand(300, 784)
    assert _bound(model, x, 10).mean() > _bound(model, x, 1).mean()


def test_k_equal_1_is_the_elbo_within_noise(synthetic_root):
    from mnist_vae.mnist import load_split

    torch.manual_seed(0)
    model = VAE(hidden_dims=[16])
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
    model = _RecordingVAE(hidden_dims=[4])
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
