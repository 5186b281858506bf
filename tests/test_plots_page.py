"""The offline plots page: DVC's charts must render without a CDN."""

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

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


CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(
    CHROMIUM is None or shutil.which("unshare") is None, reason="needs chromium and unshare"
)
def test_a_chart_renders_with_the_network_off(tmp_path):
    spec = '{"data": {"values": [{"x": 1, "y": 2}, {"x": 2, "y": 3}]}, "mark": "line", "encoding": {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}}}'
    div = f'<div id="chart"></div><script>vegaEmbed("#chart", {spec});</script>'
    page = tmp_path / "index.html"
    page.write_text(
        TEMPLATE.read_text(encoding="utf-8")
        .replace("{plot_divs}", div)
        .replace("{refresh_tag}", "")
    )
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here")
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            ["unshare", "-n", CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", f"--user-data-dir={profile}",
             "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=60,
        ).stdout  # fmt: skip
    assert 'class="marks"' in dom
