"""CI's reproduction check (.ci/check_reproduced.py) judges metrics that exist."""

import importlib.util

from conftest import REPO_ROOT


def _check_module():
    spec = importlib.util.spec_from_file_location(
        "check_reproduced", REPO_ROOT / ".ci/check_reproduced.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_tolerance_names_a_committed_metric():
    # A misspelt key would never appear in `dvc metrics diff`, so it would pass as "identical"
    # on another CPU whatever the metric did.
    assert _check_module().missing_metrics() == []


def test_metric_keys_are_named_as_dvc_metrics_diff_names_them():
    keys = _check_module().flat_keys({"iwae": {"k1": -1.0, "k50": -0.5}, "accuracy": 0.9})
    assert keys == {"iwae.k1", "iwae.k50", "accuracy"}
