"""The offline plots page: DVC's charts must render without a CDN."""

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from browser import MISSING, find_chromium, offline_chromium, offline_page
from conftest import png_pixels

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "vendor/vega/dvc-plots-offline.html"


def _build_script_pins() -> dict[str, str]:
    source = (REPO / "vendor/vega/build_template.py").read_text()
    return dict(re.findall(r'"(vega[\w-]*)": \(\s*"[\d.]+",\s*"[^"]+",\s*"([0-9a-f]{64})"', source))


def test_the_template_carries_the_pinned_libraries_and_no_cdn():
    page = TEMPLATE.read_text(encoding="utf-8")
    assert "{plot_divs}" in page and "{scripts}" not in page
    assert "<script src" not in page
    scripts = re.findall(r"<!-- (vega[\w-]*)@[\d.]+ .*? -->\s*<script>(.*?)</script>", page, re.S)
    pins = _build_script_pins()
    assert (
        sorted(name for name, _ in scripts) == sorted(pins) == ["vega", "vega-embed", "vega-lite"]
    )
    for name, code in scripts:
        assert hashlib.sha256(code.encode()).hexdigest() == pins[name], name
        assert (REPO / f"vendor/vega/LICENSE-{name}").is_file()


def test_dvc_is_configured_to_use_it():
    config = (REPO / ".dvc/config").read_text()
    assert "html_template = ../vendor/vega/dvc-plots-offline.html" in config


CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=MISSING)

# A line chart of two points, drawn by vega-embed, from the page's own copy or from a CDN.
SPEC = '{"data": {"values": [{"x": 1, "y": 2}, {"x": 2, "y": 3}]}, "mark": "line", "encoding": {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}}}'
CHART = f'<div id="chart"></div><script>vegaEmbed("#chart", {SPEC});</script>'
# The scripts of DVC's own template, from its CDN.
CDN_SCRIPTS = [
    f"https://cdn.jsdelivr.net/npm/{name}" for name in ("vega@5", "vega-lite@5", "vega-embed@6")
]


@pytest.fixture(scope="module")
def browser():
    with offline_chromium(CHROMIUM) as chromium:
        yield chromium


@needs_chromium
def test_a_chart_renders_with_the_network_off(browser, tmp_path):
    path = tmp_path / "index.html"
    path.write_text(
        TEMPLATE.read_text(encoding="utf-8")
        .replace("{plot_divs}", CHART)
        .replace("{refresh_tag}", "")
    )
    page = offline_page(browser, 800, 600)
    page.goto(path.as_uri())
    page.wait_for_selector("#chart .marks")
    chart = png_pixels(page.locator("#chart").screenshot())
    # Dark axis labels and ticks, and the line, the one coloured mark (vega's blue): from
    # (1, 2) up to (2, 3), so higher on screen (a smaller row) at its right end.
    assert (chart.max(axis=2) < 128).sum() > 100
    rows, columns = np.nonzero(chart.max(axis=2) - chart.min(axis=2) > 50)
    assert len(rows) > 200
    assert rows[columns == columns.max()].mean() < rows[columns == columns.min()].mean()
    page.context.close()


@needs_chromium
@pytest.mark.parametrize("setting", ["offline page", "Chromium's switches alone"])
def test_a_page_that_needs_a_cdn_stays_blank(browser, tmp_path, setting):
    """The same chart from a CDN: each script is asked for and never arrives. The offline
    page (what every browser test uses) and, under it, Chromium's own switches each keep it so."""
    path = tmp_path / "cdn.html"
    scripts = "".join(f'<script src="{url}"></script>' for url in CDN_SCRIPTS)
    path.write_text(f"<html><body>{scripts}{CHART}</body></html>")
    page = offline_page(browser, 800, 600) if setting == "offline page" else browser.new_page()
    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(path.as_uri())  # returns at the load event, after every script has failed
    assert sorted(failed) == sorted(CDN_SCRIPTS)
    assert page.evaluate("typeof vegaEmbed") == "undefined"
    assert page.locator("#chart .marks").count() == 0
    assert (png_pixels(page.screenshot()) == 255).all()
    page.context.close()
