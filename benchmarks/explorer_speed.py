"""How fast the latent explorer answers in headless Chromium, the network off.

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
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from chromium import Chromium, find_chromium  # this folder, as `python benchmarks/...` runs it

from mnist_vae.atomic import write_bytes, write_json
from mnist_vae.machine import describe

REPO = Path(__file__).resolve().parents[1]
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


def timed(browser: Chromium, call: str, batches: int) -> list[float]:
    return browser.evaluate(TIMED.replace("BATCHES", str(batches)).replace("CALL", call))


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
        raise SystemExit("needs chromium on PATH (Debian: apt-get install chromium)")
    page = args.page.resolve()
    url = page.as_uri()

    first_digit = []
    for _ in range(args.opens):
        with Chromium(executable) as browser:
            browser.open(url, READY)
            first_digit.append(round(browser.evaluate("explorer.firstDigitMs"), 1))
            version = browser.call("Browser.getVersion")["product"]
    with Chromium(executable) as browser:
        browser.open(url, READY)
        timed(browser, "explorer.decodeInput", 20)  # warm-up: the JIT compiles the loops
        decode = timed(browser, "explorer.decodeInput", args.batches)
        update = timed(browser, "explorer.moveTo", args.batches)
        hidden = browser.evaluate("explorer.data.hidden_dim")
        if args.screenshot:
            show_two_clicks(browser)
            write_bytes(args.screenshot, browser.screenshot())

    result = {
        "machine": describe("cpu"),
        "browser": f"{version}, headless",
        "page": str(page.relative_to(REPO) if page.is_relative_to(REPO) else page),
        "page_bytes": page.stat().st_size,
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


def show_two_clicks(browser: Chromium) -> None:
    ends = browser.evaluate(
        "[0, 9].map(c => { const n = explorer.labels.indexOf(c);"
        " return explorer.toInput([explorer.means[2 * n], explorer.means[2 * n + 1]]); })"
    )
    for end in ends:
        browser.click(*browser.evaluate(f"explorer.clientPoint({end})"))
    middle = [(a + b) / 2 for a, b in zip(*ends, strict=True)]
    browser.mouse("mouseMoved", *browser.evaluate(f"explorer.clientPoint({middle})"))


if __name__ == "__main__":
    main()
