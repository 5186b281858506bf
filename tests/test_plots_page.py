"""The offline plots page: DVC's charts must render without a CDN."""

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "vendor/vega/dvc-plots-offline.html"
sys.path.insert(0, str(REPO / "benchmarks"))
from chromium import HEADLESS  # noqa: E402  (Chromium's switches, the network off among them)


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


CHROMIUM = shutil.which("chromium")


# Chromium's own switches (HEADLESS) keep it off the network: a page that needed a CDN stays
# blank. This test dumps the DOM, so it needs no DevTools pipe and runs on Windows too.
SPEC = '{"data": {"values": [{"x": 1, "y": 2}, {"x": 2, "y": 3}]}, "mark": "line", "encoding": {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}}}'
CHART = f'<div id="chart"></div><script>vegaEmbed("#chart", {SPEC});</script>'


def _rendered_offline(page: Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, *HEADLESS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
             "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=60,
        ).stdout  # fmt: skip


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (`apt-get install chromium`)")
def test_a_chart_renders_with_the_network_off(tmp_path):
    page = tmp_path / "index.html"
    page.write_text(
        TEMPLATE.read_text(encoding="utf-8")
        .replace("{plot_divs}", CHART)
        .replace("{refresh_tag}", "")
    )
    assert 'class="marks"' in _rendered_offline(page)
    # The same chart from the CDN that DVC's own template uses stays blank: the network is off.
    cdn = tmp_path / "cdn.html"
    cdn.write_text(
        "<html><body>"
        + "".join(
            f'<script src="https://cdn.jsdelivr.net/npm/{name}"></script>'
            for name in ("vega@5", "vega-lite@5", "vega-embed@6")
        )
        + CHART
        + "</body></html>"
    )
    assert 'class="marks"' not in _rendered_offline(cdn)
