import math

import pytest
import torch

from mnist_vae.model import VAE, loss_terms


def test_shapes_follow_the_hyperparameters():
    model = VAE(hidden_dim=16, latent_dim=3)
    logits, mu, logvar = model(torch.rand(5, 784))
    assert logits.shape == (5, 784)
    assert mu.shape == logvar.shape == (5, 3)
    assert model.decode(torch.zeros(4, 3)).shape == (4, 784)


def test_decode_gives_probabilities():
    pixels = VAE(hidden_dim=8).decode(torch.randn(100, 2) * 50)
    assert pixels.min() >= 0 and pixels.max() <= 1


def test_sigmoid_on_z_is_the_switch_between_report_and_standard_decoder():
    torch.manual_seed(0)
    report = VAE(hidden_dim=8, sigmoid_latent=True)
    standard = VAE(hidden_dim=8, sigmoid_latent=False)
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
