"""The report's VAE: 784 → hidden → (mu, logvar) of a small latent; z → [sigmoid] → hidden → 784."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_PIXELS = 28 * 28


class VAE(nn.Module):
    def __init__(self, hidden_dim: int = 400, latent_dim: int = 2, sigmoid_latent: bool = True):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.sigmoid_latent = sigmoid_latent
        self.fc1 = nn.Linear(IMAGE_PIXELS, hidden_dim)
        self.fc_mu = nn.Linear(hidden_dim, latent_dim)
        self.fc_logvar = nn.Linear(hidden_dim, latent_dim)
        self.fc3 = nn.Linear(latent_dim, hidden_dim)
        self.fc4 = nn.Linear(hidden_dim, IMAGE_PIXELS)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc1(x))
        return self.fc_mu(h), self.fc_logvar(h)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        # The report squashes z through a sigmoid before decoding; `sigmoid_latent: false`
        # gives the standard VAE decoder.
        if self.sigmoid_latent:
            z = torch.sigmoid(z)
        return self.fc4(F.relu(self.fc3(z)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities in [0, 1], shape (N, 784)."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode_logits(z), mu, logvar

    def hyperparameters(self) -> dict:
        return {
            "hidden_dim": self.hidden_dim,
            "latent_dim": self.latent_dim,
            "sigmoid_latent": self.sigmoid_latent,
        }


def loss_terms(
    logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image negative ELBO terms in nats: (Bernoulli cross-entropy over 784 pixels, KL).

    The cross-entropy is taken from logits, so a saturated decoder cannot produce log(0).
    """
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
    return recon, kl
