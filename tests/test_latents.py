import pytest
import torch

from mnist_vae.latents import (
    decode,
    lattice,
    lattice_axis,
    line_between,
    pick_image,
    posterior_means,
)
from mnist_vae.model import VAE


def test_interpolation_endpoints_decode_the_two_encoded_means_exactly():
    torch.manual_seed(0)
    model = VAE(hidden_dims=[16], latent_dim=3).eval()
    images = torch.rand(2, 784)
    means = posterior_means(model, images)
    line = line_between(means[0], means[1], 20)
    assert line.shape == (20, 3)
    assert torch.equal(line[0], means[0]) and torch.equal(line[-1], means[1])
    # The endpoints are the means bit for bit, so their images are the means' images; BLAS may
    # round a 20-row batch differently from a 1-row one, hence allclose on the pixels.
    decoded = decode(model, line)
    assert torch.allclose(decoded[0], model.decode(means[:1])[0], rtol=0, atol=1e-6)
    assert torch.allclose(decoded[-1], model.decode(means[1:])[0], rtol=0, atol=1e-6)
    steps = line[1:] - line[:-1]
    assert torch.allclose(steps, steps[0].expand_as(steps), atol=1e-6)  # evenly spaced


def test_lattice_axis_spans_the_requested_normal_quantiles():
    axis = lattice_axis(20, 0.05, 0.95)
    assert len(axis) == 20
    assert axis[0].item() == pytest.approx(-1.6449, abs=1e-4)
    assert axis[-1].item() == pytest.approx(1.6449, abs=1e-4)
    assert torch.all(axis[1:] > axis[:-1])


def test_lattice_is_in_reading_order_and_pads_extra_dimensions_with_zero():
    axis = torch.tensor([-1.0, 0.0, 1.0])
    z = lattice(4, axis)
    assert z.shape == (9, 4)
    assert z[0, :2].tolist() == [-1.0, 1.0]  # top left: lowest z1, highest z2
    assert z[2, :2].tolist() == [1.0, 1.0]  # top right
    assert z[-1, :2].tolist() == [1.0, -1.0]  # bottom right
    assert torch.equal(z[:, 2:], torch.zeros(9, 2))
    assert lattice(1, axis).shape == (3, 1)


def test_pick_image_uses_the_first_of_a_class_or_checks_the_given_index():
    labels = torch.tensor([3, 0, 9, 0, 9])
    assert pick_image(labels, 0, None) == 1
    assert pick_image(labels, 9, 4) == 4
    with pytest.raises(LookupError, match=r"test image 0 shows a 3, not the requested digit 9"):
        pick_image(labels, 9, 0)
    with pytest.raises(LookupError, match="expected a test-set index below 5, got 7"):
        pick_image(labels, 9, 7)
    with pytest.raises(LookupError, match="no image of digit 5"):
        pick_image(labels, 5, None)
