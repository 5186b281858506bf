"""The report's VAE: 784 → hidden → (mu, logvar) of a small latent; z → [sigmoid] → hidden → 784.

`hidden_dims` lists the encoder's hidden layers, each a Linear and a ReLU; the decoder mirrors
them: [400] is the report's, [256, 128] gives 784-256-128 and 128-256-784 (Davidson et al. 2018).
The decoder outputs 784 logits, the parameters of a Bernoulli (the report) or a continuous
Bernoulli (Loaiza-Ganem & Cunningham 2019, a proper density for pixels in [0, 1]) per pixel.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from mnist_vae.idx import IMAGE_PIXELS

LIKELIHOODS = ("bernoulli", "continuous_bernoulli")


def relu_layers(widths: list[int]) -> nn.Sequential:
    """Linear then ReLU from each width to the next."""
    pairs = itertools.pairwise(widths)
    return nn.Sequential(*(m for n_in, n_out in pairs for m in (nn.Linear(n_in, n_out), nn.ReLU())))


class VAE(nn.Module):
    def __init__(
        self,
        hidden_dims: list[int] = (400,),
        latent_dim: int = 2,
        sigmoid_latent: bool = True,
        likelihood: str = "bernoulli",
    ):
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.hidden_dims = list(hidden_dims)
        self.latent_dim = latent_dim
        self.sigmoid_latent = sigmoid_latent
        self.likelihood = likelihood
        # Built in this order, so a seed gives the same initial weights for any depth's shared
        # shapes: encoder, mean, log-variance, decoder, output.
        self.encoder = relu_layers([IMAGE_PIXELS, *self.hidden_dims])
        self.fc_mu = nn.Linear(self.hidden_dims[-1], latent_dim)
        self.fc_logvar = nn.Linear(self.hidden_dims[-1], latent_dim)
        self.decoder = relu_layers([latent_dim, *reversed(self.hidden_dims)])
        self.fc_out = nn.Linear(self.hidden_dims[0], IMAGE_PIXELS)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decoder_input(self, z: torch.Tensor) -> torch.Tensor:
        # The report squashes z through a sigmoid before decoding; `sigmoid_latent: false`
        # gives the standard VAE decoder.
        return torch.sigmoid(z) if self.sigmoid_latent else z

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.decoder(self.decoder_input(z)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoded image: each pixel's expected value in [0, 1], shape (N, 784)."""
        logits = self.decode_logits(z)
        if self.likelihood == "continuous_bernoulli":
            return continuous_bernoulli_mean(logits)
        return torch.sigmoid(logits)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode_logits(z), mu, logvar

    def hyperparameters(self) -> dict:
        return {
            "hidden_dims": self.hidden_dims,
            "latent_dim": self.latent_dim,
            "sigmoid_latent": self.sigmoid_latent,
            "likelihood": self.likelihood,
        }


def continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(λ) for λ = sigmoid(logits), where C(λ) = 2 atanh(1 - 2λ) / (1 - 2λ).

    In logits this is log(l / tanh(l / 2)), which is 0/0 at λ = 0.5 (l = 0); there the series
    log 2 + log(1 + u²/3 - u⁴/45), u = l/2, is exact to float precision.
    """
    half = logits / 2
    near_half = half.abs() < 1e-2
    safe = torch.where(near_half, torch.ones_like(half), half)
    exact = torch.log(safe / torch.tanh(safe))
    series = torch.log1p(half.pow(2) / 3 - half.pow(4) / 45)
    return math.log(2) + torch.where(near_half, series, exact)


def continuous_bernoulli_mean(logits: torch.Tensor) -> torch.Tensor:
    """E[x] under the continuous Bernoulli: λ / (2λ - 1) + 1 / (2 atanh(1 - 2λ)).

    In logits, sigmoid(l) / tanh(l/2) - 1/l; near l = 0 the series 1/2 + l/12 - l³/720.
    """
    near_half = logits.abs() < 1e-2
    safe = torch.where(near_half, torch.ones_like(logits), logits)
    exact = torch.sigmoid(safe) / torch.tanh(safe / 2) - 1 / safe
    series = 0.5 + logits / 12 - logits.pow(3) / 720
    return torch.where(near_half, series, exact)


class BernoulliNLL(torch.autograd.Function):
    """-log Bernoulli(x | sigmoid(l)) per pixel, softplus(l) - x·l, from the logits l.

    The value and gradient of F.binary_cross_entropy_with_logits, but built from ops that are
    vectorised on CPU: its log-sigmoid (like log1p and softplus) is a scalar loop there. Written as
    softplus(l) = relu(l) - log(sigmoid(|l|)), sigmoid is only taken on [0.5, 1], so nothing
    overflows or rounds to log(0); the gradient is the familiar sigmoid(l) - x, written out
    rather than traced through four ops.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(logits, x)
        return torch.relu(logits) - x * logits - torch.log(torch.sigmoid(logits.abs()))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        logits, x = ctx.saved_tensors
        grad_logits = grad * (torch.sigmoid(logits) - x) if ctx.needs_input_grad[0] else None
        grad_x = -grad * logits if ctx.needs_input_grad[1] else None
        return grad_logits, grad_x


def reconstruction_nll(
    logits: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli"
) -> torch.Tensor:
    """-log p(x | z) summed over the last (pixel) dimension, in nats.

    From logits, so a saturated decoder cannot produce log(0).
    """
    nll = BernoulliNLL.apply(logits, x)
    if likelihood == "continuous_bernoulli":
        nll = nll - continuous_bernoulli_log_norm(logits)
    return nll.sum(dim=-1)


def loss_terms(
    logits: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    likelihood: str = "bernoulli",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image negative ELBO terms in nats: (reconstruction -log p(x|z), analytic KL)."""
    recon = reconstruction_nll(logits, x, likelihood)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
    return recon, kl
