import torch
from PIL import Image

from mnist_vae.figures import digit_grid, digit_panels


def test_digits_are_drawn_at_twice_their_size_under_a_title_band(tmp_path):
    # An 8×8 grid: 8 × (28 + 2) + 2 = 242 px, drawn 2× = 484; two panels, 10 px margins,
    # a 36 px title band: (10 + 484 + 10 + 484 + 10) × (36 + 484 + 10).
    grid = digit_grid(torch.rand(64, 784), 8)
    assert grid.shape == (242, 242)
    digit_panels([("originals", grid), ("reconstructions", grid)], tmp_path / "two.png")
    assert Image.open(tmp_path / "two.png").size == (998, 530)


def test_a_single_row_panel(tmp_path):
    digit_panels([("row", digit_grid(torch.rand(20, 784), 20))], tmp_path / "row.png")
    assert Image.open(tmp_path / "row.png").size == (10 + 2 * 602 + 10, 36 + 2 * 32 + 10)


def test_a_lone_digit_keeps_the_same_frame_as_a_grid():
    assert digit_grid(torch.rand(1, 784), 1).shape == (32, 32)
    assert digit_grid(torch.rand(2, 784), 1).shape == (62, 32)


def test_digit_grid_is_make_grids_layout_pixel_for_pixel():
    from torchvision.utils import make_grid

    pixels = torch.rand(23, 784)
    for columns in (1, 5, 8, 30):
        ours = digit_grid(pixels, columns)
        theirs = make_grid(pixels.reshape(-1, 1, 28, 28), nrow=columns, padding=2, pad_value=0.5)
        assert ours.tobytes() == theirs[0].numpy().tobytes(), columns
