"""Each stage imports only the heavy libraries it uses: every one costs start-up on every run
(torch about 1.5 s, matplotlib and pandas a few tenths each; docs/speed.md)."""

import json
import subprocess
import sys

import yaml
from conftest import REPO_ROOT

HEAVY = ("torch", "torchvision", "pandas", "matplotlib")
USES = {
    "download": set(),  # the IDX files are NumPy's (mnist_vae.idx)
    "train": {"torch", "pandas", "matplotlib"},  # the loss table, the loss curves
    "classifier": {"torch"},
    "evaluate": {"torch", "pandas", "matplotlib"},  # confusion tables, figures
    "generate": {"torch", "pandas", "matplotlib"},  # the class-share table, figures
    "interpolate": {"torch", "matplotlib"},  # figures only
    "evaluate_likelihood": {"torch"},
    "explorer": {"torch"},  # the page's images are a PNG written with Pillow, not matplotlib
}


def test_each_stage_imports_only_the_heavy_libraries_it_uses(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    from pipeline_speed import import_block  # what the start-up benchmark times, too

    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    assert set(stages) == set(USES)
    running = {}
    for name, stage in stages.items():
        code = (
            "import json, sys\nsys.path.insert(0, 'stages')\n"
            + import_block(REPO_ROOT / stage["cmd"].split()[-1])
            + f"\nprint(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))"
        )
        running[name] = subprocess.Popen(
            [sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
        )
    for name, process in running.items():
        output, _ = process.communicate()
        assert process.returncode == 0, name
        assert set(json.loads(output)) == USES[name], name
