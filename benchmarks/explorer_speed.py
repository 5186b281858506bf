"""How fast the latent explorer answers in the system's headless Chromium, the network off.

    python benchmarks/explorer_speed.py [--page plots/latent_explorer.html] [--opens 5]
        [--batches 100] [--out FILE] [--screenshot docs/figures/latent_explorer.png]

- **first digit**: the page opened `--opens` times, each in a fresh browser; the time from
  opening it (the navigation's start, `performance.timeOrigin`) until the digit at the plane's
  centre has been decoded and drawn into its canvas, as the page itself records it;
- **one decode**: `explorer.decodeInput` (784 pixels from a point of the plane) at points
  across the plane, timed in batches of 10 (the browser's clock is coarsened to 0.1 ms), the
  median over `--batches` batches; and the same for a whole pointer update
  (`explorer.moveTo`: decode, draw, the nearest test images, the plane's overlay).

With `--screenshot`, the page is then shown as a user leaves it: two clicks, at the posterior
means of the first test images of classes 0 and 9 (the ends of plots/interpolation.png at the
default params), and the pointer half-way between them.

The browser is the system's, driven by Playwright, set up as the browser tests set it up
(tests/browser.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from importlib.metadata import version
from pathlib import Path

from playwright.sync_api import Page

from mnist_vae.atomic import write_bytes, write_json

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from browser import MISSING, find_chromium, offline_chromium, offline_page  # noqa: E402
from provenance import provenance  # noqa: E402  (this folder, as `python benchmarks/...` runs it)

READY = "window.explorer && document.readyState === 'complete'"

# Batches of 10 calls at points spread over the plane; ms per call, one number a batch.
TIMED = """(() => {
  const [[x0, x1], [y0, y1]] = explorer.data.limits, perBatch = [];
  for (let b = 0; b < BATCHES; b++) {
    const start = performance.now();
    for (let k = 0; k < 10; k++) {
      const f = ((b * 10 + k) * 0.618034) % 1, g = ((b * 10 + k) * 0.414214) % 1;
      CALL([x0 + (0.05 + 0.9 * f) * (x1 - x0), y0 + (0.05 + 0.9 * g) * (y1 - y0)]);
    }
    perBatch.push((performance.now() - start) / 10);
  }
  return perBatch;
})()"""


def timed(page: Page, call: str, batches: int) -> list[float]:
    return page.evaluate(TIMED.replace("BATCHES", str(batches)).replace("CALL", call))


def opened(page: Page, url: str) -> Page:
    page.goto(url)
    page.wait_for_function(READY)
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, default=REPO / "plots/latent_explorer.html")
    parser.add_argument("--opens", type=int, default=5)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    executable = find_chromium()
    if executable is None:
        raise SystemExit(MISSING)
    page_file = args.page.resolve()
    url = page_file.as_uri()

    first_digit = []
    for _ in range(args.opens):
        with offline_chromium(executable) as browser:
            page = opened(offline_page(browser), url)
            first_digit.append(round(page.evaluate("explorer.firstDigitMs"), 1))
            browser_version = browser.version
    with offline_chromium(executable) as browser:
        page = opened(offline_page(browser), url)
        timed(page, "explorer.decodeInput", 20)  # warm-up: the JIT compiles the loops
        decode = timed(page, "explorer.decodeInput", args.batches)
        update = timed(page, "explorer.moveTo", args.batches)
        hidden = page.evaluate("explorer.data.hidden_dim")
        if args.screenshot:
            show_two_clicks(page)
            write_bytes(args.screenshot, page.screenshot())

    result = {
        **provenance("cpu"),
        "browser": f"{executable} {browser_version}, headless, Playwright {version('playwright')}",
        "page": str(page_file.relative_to(REPO) if page_file.is_relative_to(REPO) else page_file),
        "page_bytes": page_file.stat().st_size,
        "decoder_hidden_units": hidden,
        "first_digit_ms": first_digit,
        "first_digit_ms_median": statistics.median(first_digit),
        "decode_ms_median": round(statistics.median(decode), 3),
        "decode_batches": len(decode),
        "pointer_update_ms_median": round(statistics.median(update), 3),
    }
    print(
        f"first digit {result['first_digit_ms_median']} ms after opening (median of "
        f"{args.opens}); one decode {result['decode_ms_median']} ms, one pointer update "
        f"{result['pointer_update_ms_median']} ms (medians)"
    )
    if args.out:
        write_json(args.out, result)


def show_two_clicks(page: Page) -> None:
    ends = page.evaluate(
        "[0, 9].map(c => { const n = explorer.labels.indexOf(c);"
        " return explorer.toInput([explorer.means[2 * n], explorer.means[2 * n + 1]]); })"
    )
    for end in ends:
        page.mouse.click(*page.evaluate(f"explorer.clientPoint({end})"))
    middle = [(a + b) / 2 for a, b in zip(*ends, strict=True)]
    page.mouse.move(*page.evaluate(f"explorer.clientPoint({middle})"))


if __name__ == "__main__":
    main()
