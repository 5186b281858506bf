import math

import pytest
import torch
import torch.nn.functional as F

from mnist_vae.model import VAE, BernoulliNLL, loss_terms


def test_shapes_follow_the_hyperparameters():
    model = VAE(hidden_dims=[16], latent_dim=3)
    logits, mu, logvar = model(torch.rand(5, 784))
    assert logits.shape == (5, 784)
    assert mu.shape == logvar.shape == (5, 3)
    assert model.decode(torch.zeros(4, 3)).shape == (4, 784)


def test_decode_gives_each_pixels_expected_value_under_the_likelihood():
    torch.manual_seed(0)
    z = torch.randn(100, 2) * 3
    bernoulli = VAE(hidden_dims=[8])
    # E[x] under PyTorch's own Bernoulli of the decoder's logits (its `probs`).
    expected = torch.distributions.Bernoulli(logits=bernoulli.decode_logits(z)).mean
    torch.testing.assert_close(bernoulli.decode(z), expected, rtol=0, atol=1e-7)
    continuous = VAE(hidden_dims=[8], likelihood="continuous_bernoulli")
    continuous.load_state_dict(bernoulli.state_dict())
    # E[x] under the continuous Bernoulli: λ / (2λ − 1) + 1 / (2 atanh(1 − 2λ)), in float64.
    lam = torch.sigmoid(continuous.decode_logits(z).double())
    expected = lam / (2 * lam - 1) + 1 / (2 * torch.atanh(1 - 2 * lam))
    assert torch.allclose(continuous.decode(z).double(), expected, rtol=0, atol=1e-4)


def test_sigmoid_on_z_is_the_switch_between_report_and_standard_decoder():
    torch.manual_seed(0)
    report = VAE(hidden_dims=[8], sigmoid_latent=True)
    standard = VAE(hidden_dims=[8], sigmoid_latent=False)
    standard.load_state_dict(report.state_dict())
    z = torch.tensor([[3.0, -2.0]])
    assert torch.allclose(report.decode(z), standard.decode(torch.sigmoid(z)))
    assert not torch.allclose(report.decode(z), standard.decode(z))


def test_loss_matches_a_hand_computed_case():
    # Two pixels: x = (1, 0), decoder logits (0, ln 3)
    # → probabilities (1/2, 3/4); BCE = -ln(1/2) - ln(1 - 3/4) = ln 2 + ln 4.
    logits = torch.tensor([[0.0, math.log(3.0)]])
    x = torch.tensor([[1.0, 0.0]])
    # KL(N(1, e^0) || N(0, 1)) = 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2) = 0.5
    mu, logvar = torch.tensor([[1.0]]), torch.tensor([[0.0]])
    recon, kl = loss_terms(logits, x, mu, logvar)
    assert recon.item() == pytest.approx(math.log(2) + math.log(4))
    assert kl.item() == pytest.approx(0.5)


def test_kl_is_zero_at_the_prior():
    _, kl = loss_terms(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, 2), torch.zeros(3, 2))
    assert torch.equal(kl, torch.zeros(3))


def test_loss_stays_finite_for_saturated_logits():
    recon, _ = loss_terms(
        torch.tensor([[200.0, -200.0]]),
        torch.tensor([[0.0, 1.0]]),
        torch.zeros(1, 2),
        torch.zeros(1, 2),
    )
    assert torch.isfinite(recon).all() and recon.item() > 300


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bernoulli_nll_equals_torch_binary_cross_entropy_value_and_gradient(dtype):
    logits = torch.tensor([-100.0, -30.0, -5.0, -1e-3, 0.0, 1e-3, 5.0, 30.0, 100.0], dtype=dtype)
    logits = logits.repeat(3, 1).requires_grad_()
    x = torch.tensor([0.0, 0.3, 1.0], dtype=dtype).unsqueeze(1).expand_as(logits)
    x = x.clone().requires_grad_()
    weights = torch.rand(logits.shape, dtype=dtype)

    ours = BernoulliNLL.apply(logits, x)
    ours_grads = torch.autograd.grad((ours * weights).sum(), (logits, x))
    torch_nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    torch_grads = torch.autograd.grad((torch_nll * weights).sum(), (logits, x))

    tolerance = {"rtol": 1e-6, "atol": 1e-6} if dtype == torch.float32 else {}
    torch.testing.assert_close(ours, torch_nll, **tolerance)
    for mine, theirs in zip(ours_grads, torch_grads, strict=True):
        torch.testing.assert_close(mine, theirs, **tolerance)


def test_bernoulli_nll_gradient_matches_finite_differences():
    logits = (torch.randn(4, 6, dtype=torch.float64) * 4).requires_grad_()
    x = torch.rand(4, 6, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(BernoulliNLL.apply, (logits, x))


def test_bernoulli_nll_broadcasts_like_the_logits():
    # The IWAE bound decodes k samples per image against one image: (k, N, 784) vs (N, 784).
    logits = torch.randn(5, 2, 7, requires_grad=True)
    x = torch.rand(2, 7)
    nll = BernoulliNLL.apply(logits, x)
    nll.sum().backward()
    assert nll.shape == logits.grad.shape == (5, 2, 7)
    torch.testing.assert_close(
        nll, F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
    )
