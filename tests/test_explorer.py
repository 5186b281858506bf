"""The latent explorer page in real headless Chromium: the digits it draws are the model's.

Small VAEs built here with a fixed seed stand in for trained ones: every architecture the
params allow (sigmoid on z or not, Bernoulli or continuous Bernoulli, MNIST or Fashion-MNIST).
The browser is driven as a user drives it (pointer, touch, arrow keys, clicks) and what it
drew is read back from its canvases and compared with `VAE.decode` in Python.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from browser import MISSING, find_chromium, offline_chromium, offline_page
from conftest import run_benchmark, synthetic_digits
from playwright.sync_api import Browser

from mnist_vae.explorer import NEAREST, explorer_page
from mnist_vae.idx import DATASETS
from mnist_vae.latents import line_between, posterior_means
from mnist_vae.model import VAE

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=MISSING)

ONE_GREY_LEVEL = 1 / 255  # the most a drawn pixel may differ from the model's

# name: (sigmoid_latent, likelihood, dataset)
MODELS = {
    "report": (True, "bernoulli", "MNIST"),
    "standard": (False, "bernoulli", "MNIST"),
    "standard-continuous-bernoulli": (False, "continuous_bernoulli", "MNIST"),
    "fashion-mnist-continuous-bernoulli": (True, "continuous_bernoulli", "FashionMNIST"),
}


def small_vae(sigmoid_latent: bool, likelihood: str, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    vae = VAE(hidden_dims=[64], latent_dim=2, sigmoid_latent=sigmoid_latent, likelihood=likelihood)
    with torch.no_grad():
        vae.fc_out.weight.mul_(8)  # logits over several units, so pixels span (0, 1), not ~0.5
        vae.fc_mu.weight.mul_(4)  # posterior means spread over the plane
        # One pixel's logit is 0.004 wherever z is: the continuous Bernoulli's series branch.
        vae.fc_out.weight[0] = 0
        vae.fc_out.bias[0] = 0.004
    return vae.eval()


def synthetic_test_set(count: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = synthetic_digits(count, seed=2)
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def model_pixels(vae: VAE, z) -> np.ndarray:
    with torch.no_grad():
        return vae.decode(torch.tensor(z, dtype=torch.float32).reshape(-1, 2)).double().numpy()


def to_input(vae: VAE, z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z)) if vae.sigmoid_latent else z


def assert_limits_follow_the_rule(limits, means: np.ndarray, sigmoid_latent: bool) -> None:
    """The plane's rule (docs/explorer.md), checked as properties rather than recomputed: with
    the sigmoid, the decoder's whole input, the unit square; otherwise, on each axis, the
    tightest tenths that hold every posterior mean and a margin of 5 % of their spread."""
    if sigmoid_latent:
        assert limits == [[0, 1], [0, 1]]
        return
    for (low, high), axis in zip(limits, means.T, strict=True):
        margin = 0.05 * (axis.max() - axis.min())
        for limit in (low, high):
            assert abs(limit * 10 - round(limit * 10)) < 1e-9, limit  # in tenths
        assert low <= axis.min() - margin < low + 0.1
        assert high - 0.1 < axis.max() + margin <= high


class Page:
    """The explorer for one model, open in the browser, read and driven like a user would."""

    def __init__(self, browser: Browser, vae: VAE, dataset: str, folder, steps: int = 20):
        self.vae, self.steps = vae, steps
        self.images, self.labels = synthetic_test_set()
        self.means = posterior_means(vae, self.images.reshape(len(self.images), -1) / 255)
        path = folder / "latent_explorer.html"
        path.write_text(explorer_page(vae, self.images, self.labels, DATASETS[dataset], steps))
        # The weights of a 64-unit decoder and 300 test images, nothing bulkier.
        assert path.stat().st_size < 2_000_000
        self.tab = offline_page(browser, touch=True)
        self.requested: list[str] = []
        self.tab.on("request", lambda request: self.requested.append(request.url))
        self.tab.goto(path.as_uri())
        self.tab.wait_for_function("window.explorer && document.readyState === 'complete'")
        self.limits = self.evaluate("explorer.data.limits")
        self.rect = self.evaluate(
            "(({left, top, width}) => ({left, top, width}))"
            "(document.getElementById('plane').getBoundingClientRect())"
        )
        self.geometry = self.evaluate("explorer.geometry")

    def evaluate(self, expression: str):
        return self.tab.evaluate(expression)

    def close(self) -> None:
        self.tab.context.close()

    def screen_point(self, u: tuple[float, float]) -> tuple[int, int]:
        """The whole CSS pixel nearest to decoder input u on the plane."""
        (x0, x1), (y0, y1) = self.limits
        g, scale = self.geometry, self.rect["width"] / 520
        x = g["left"] + (u[0] - x0) / (x1 - x0) * g["side"]
        y = g["top"] + (y1 - u[1]) / (y1 - y0) * g["side"]
        return round(self.rect["left"] + x * scale), round(self.rect["top"] + y * scale)

    def input_at(self, point: tuple[int, int]) -> np.ndarray:
        """The decoder input that screen `point` stands for, computed here, not by the page."""
        (x0, x1), (y0, y1) = self.limits
        g, scale = self.geometry, self.rect["width"] / 520
        x = (point[0] - self.rect["left"]) / scale
        y = (point[1] - self.rect["top"]) / scale
        return np.array(
            [
                x0 + (x - g["left"]) / g["side"] * (x1 - x0),
                y1 - (y - g["top"]) / g["side"] * (y1 - y0),
            ]
        )

    def state(self, name: str):
        return self.evaluate(f"Array.from(explorer.state.{name})")

    def drag_a_finger(self, start: tuple[int, int], end: tuple[int, int]) -> None:
        """A touch drag, as the touchscreen sends it. Playwright's own touchscreen only taps (a
        tap clicks, which would add an end), so the drag goes through Playwright's session
        with Chromium's DevTools: the same input command that its tap sends."""
        devtools = self.tab.context.new_cdp_session(self.tab)
        for kind, points in (("touchStart", [start]), ("touchMove", [end]), ("touchEnd", [])):
            touch_points = [{"x": x, "y": y} for x, y in points]
            devtools.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": touch_points})
        devtools.detach()

    def canvas(self, element: str) -> np.ndarray:
        """A canvas's grey levels (its red channel), as the page drew them."""
        red = self.evaluate(
            f"(c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
            f".filter((_, i) => i % 4 === 0)))(document.getElementById('{element}'))"
        )
        return np.array(red, dtype=np.float64)

    def shown_digit_matches(self, expected_input: np.ndarray) -> None:
        """The page is at `expected_input`, and the digit it shows is the model's there."""
        shown_input = np.array(self.state("input"))
        assert shown_input == pytest.approx(expected_input, abs=1e-9)
        z = np.array(self.state("z"))
        if self.vae.sigmoid_latent:  # the page names the latent whose sigmoid it decodes
            assert to_input(self.vae, z) == pytest.approx(shown_input, abs=1e-9)
        else:
            assert z == pytest.approx(shown_input, abs=1e-12)
        expected = model_pixels(self.vae, z)[0]
        assert np.abs(np.array(self.state("pixels")) - expected).max() < 1e-4
        assert np.abs(self.canvas("digit") / 255 - expected).max() <= ONE_GREY_LEVEL


@pytest.fixture(scope="module")
def browser():
    with offline_chromium(CHROMIUM) as chromium:
        yield chromium


@pytest.fixture
def open_page(browser, tmp_path):
    """Opens the explorer of a model in a fresh offline context, closed after the test."""
    pages = []

    def open_(vae: VAE, dataset: str) -> Page:
        pages.append(Page(browser, vae, dataset, tmp_path))
        return pages[-1]

    yield open_
    for page in pages:
        page.close()


@needs_chromium
@pytest.mark.parametrize("name", MODELS)
def test_the_page_draws_the_models_digits_under_pointer_touch_keys_and_clicks(open_page, name):
    sigmoid_latent, likelihood, dataset = MODELS[name]
    vae = small_vae(sigmoid_latent, likelihood)
    page = open_page(vae, dataset)
    assert_limits_follow_the_rule(page.limits, page.means.double().numpy(), sigmoid_latent)
    # Self-contained: the page itself, and the images it carries inline, nothing else.
    assert page.requested and all(url.startswith(("file:", "data:")) for url in page.requested)

    # The decoder alone, at latents across and beyond the plane (z = ±8: saturated pixels).
    z = [[0, 0], [0.3, -1.2], [-2.5, 1.7], [8, -8], [-8, 8], [1e-3, 5]]
    drawn = np.array(page.evaluate(f"{z}.map(z => Array.from(explorer.decode(z)))"))
    assert np.abs(drawn - model_pixels(vae, z)).max() < 1e-4
    # The series branch was taken: pixel 0's logit is 0.004 everywhere.
    if likelihood == "continuous_bernoulli":
        assert drawn[:, 0] == pytest.approx(0.5 + 0.004 / 12, abs=1e-6)

    # Pointer moves: the digit under the pointer is the model's digit there.
    (x0, x1), (y0, y1) = page.limits
    for fx, fy in [(0.2, 0.3), (0.5, 0.5), (0.83, 0.61), (0.02, 0.97)]:
        point = page.screen_point((x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)))
        page.tab.mouse.move(*point)
        page.shown_digit_matches(page.input_at(point))

    # The nearest test images are the nearest posterior means in the plane's units, and their
    # thumbnails are those test images.
    here = np.array(page.state("input"))
    distances = ((to_input(vae, page.means.double().numpy()) - here) ** 2).sum(axis=1)
    nearest = page.state("nearest")
    assert nearest == np.argsort(distances, kind="stable")[:NEAREST].tolist()
    first = page.evaluate(
        "(c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data"
        ".filter((_, i) => i % 4 === 0)))(document.querySelector('#nearest canvas'))"
    )
    assert first == page.images[nearest[0]].flatten().tolist()
    names = page.tab.inner_text("#nearest")
    assert DATASETS[dataset].class_names[int(page.labels[nearest[0]])] in names

    # Arrow keys: 1/100 of the plane a press, 1/10 with Shift.
    for key, step in [
        ("ArrowRight", (0.01, 0)),
        ("Shift+ArrowDown", (0, -0.1)),
        ("ArrowLeft", (-0.01, 0)),
        ("ArrowUp", (0, 0.01)),
    ]:
        before = np.array(page.state("input"))
        page.tab.keyboard.press(key)
        page.shown_digit_matches(before + np.array(step) * [x1 - x0, y1 - y0])

    # Touch: the digit follows the finger.
    start = page.screen_point((x0 + 0.4 * (x1 - x0), y0 + 0.4 * (y1 - y0)))
    end = page.screen_point((x0 + 0.7 * (x1 - x0), y0 + 0.25 * (y1 - y0)))
    page.drag_a_finger(start, end)
    page.shown_digit_matches(page.input_at(end))

    # A click pair: the interpolation between the two points, as plots/interpolation.png
    # draws it (straight in z, both ends included), decoded by the model.
    ends = [
        page.screen_point((x0 + 0.15 * (x1 - x0), y0 + 0.8 * (y1 - y0))),
        page.screen_point((x0 + 0.9 * (x1 - x0), y0 + 0.1 * (y1 - y0))),
    ]
    for point in ends:
        page.tab.mouse.click(*point)
    z_ends = np.array(page.state("ends"))
    assert to_input(vae, z_ends) == pytest.approx(np.array([page.input_at(p) for p in ends]))
    line = line_between(*torch.tensor(z_ends, dtype=torch.float32), page.steps).numpy()
    assert np.array(page.state("line")) == pytest.approx(line, abs=1e-5)
    strip = (
        page.canvas("line").reshape(28, page.steps, 28).transpose(1, 0, 2).reshape(page.steps, -1)
    )
    expected = model_pixels(vae, line)
    assert np.abs(strip / 255 - expected).max() <= ONE_GREY_LEVEL

    # A nearest test image, clicked, is an end at its posterior mean; a third end starts anew.
    shown = page.state("nearest")[0]
    page.tab.locator("#nearest canvas").first.click()
    assert page.state("ends") == [pytest.approx(page.means[shown].tolist(), abs=1e-12)]

    # The comparison is sharp enough to catch a wrong page: the same readings against weights
    # 2 % off, or against the other input transform, fail it.
    perturbed = small_vae(sigmoid_latent, likelihood)
    with torch.no_grad():
        perturbed.fc_out.weight.mul_(1.02)
    other_transform = small_vae(not sigmoid_latent, likelihood)
    for wrong in (perturbed, other_transform):
        assert np.abs(strip / 255 - model_pixels(wrong, line)).max() > ONE_GREY_LEVEL


@pytest.mark.parametrize("latent_dim", [1, 3])
def test_a_latent_of_other_than_two_dimensions_gets_a_page_that_says_why(latent_dim):
    images, labels = synthetic_test_set()
    vae = VAE(hidden_dims=[16], latent_dim=latent_dim)
    page = explorer_page(vae, images, labels, DATASETS["MNIST"], 20)
    assert f"<strong>{latent_dim}</strong> dimensions" in page
    assert "model.latent_dim: 2" in page and "<canvas" not in page


@needs_chromium
@pytest.mark.e2e  # a benchmark script, whole, in its own process
def test_the_speed_benchmark_reports_what_it_timed(tmp_path):
    """Not how fast (that is benchmarks/results/), but that its figures are its timings."""
    images, labels = synthetic_test_set()
    page = tmp_path / "latent_explorer.html"
    page.write_text(
        explorer_page(small_vae(True, "bernoulli"), images, labels, DATASETS["MNIST"], 20)
    )
    out, shot = tmp_path / "speed.json", tmp_path / "shot.png"
    run_benchmark("explorer_speed", "--page", str(page), "--opens", "3", "--batches", "5",
                  "--out", str(out), "--screenshot", str(shot), timeout=300)  # fmt: skip
    result = json.loads(out.read_text())
    assert result["page_bytes"] == page.stat().st_size and result["decoder_hidden_units"] == 64
    assert len(result["first_digit_ms"]) == 3 and result["decode_batches"] == 5
    assert result["first_digit_ms_median"] == sorted(result["first_digit_ms"])[1] > 0
    assert result["decode_ms_median"] > 0 and result["pointer_update_ms_median"] > 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
