import copy
from pathlib import Path

import pytest
import yaml

from mnist_vae.params import SCHEMA, ParamsError, load_params, validate

GOOD = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
ALL = list(SCHEMA)


def _with(section: str, key: str | None, value) -> dict:
    params = copy.deepcopy(GOOD)
    if key is None:
        params[section] = value
    else:
        params[section][key] = value
    return params


def test_the_committed_params_file_is_valid():
    checked = load_params(ALL)
    assert checked["train"]["epochs"] >= 1


def test_only_the_asked_sections_are_returned():
    assert list(validate(GOOD, ["model", "device"])) == ["model", "device"]


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("train", "epochs", 0, "train.epochs: expected an integer >= 1, got 0 (int)"),
        ("train", "epochs", "10", "train.epochs: expected an integer >= 1, got '10' (str)"),
        ("train", "epochs", True, "got True (bool)"),
        ("train", "batch_size", 2.5, "train.batch_size: expected an integer >= 1"),
        ("train", "lr", 0, "train.lr: expected a number > 0, got 0"),
        ("train", "lr", -0.1, "train.lr: expected a number > 0"),
        ("device", None, "gpu", "device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
        ("device", None, "cuda:x", "got 'cuda:x'"),
        ("classifier", "hidden_dim", -1, "classifier.hidden_dim: expected an integer >= 1"),
        ("evaluate", "digits_per_side", 0, "evaluate.digits_per_side: expected an integer >= 1"),
        ("generate", "large_count", 0, "generate.large_count: expected an integer >= 1"),
        (
            "interpolate",
            "end_digit",
            10,
            "interpolate.end_digit: expected an integer from 0 to 9, got 10",
        ),
        (
            "interpolate",
            "start_index",
            -3,
            "interpolate.start_index: expected null or an integer >= 0",
        ),
        ("interpolate", "grid_size", 1, "interpolate.grid_size: expected an integer >= 2"),
        ("interpolate", "grid_high_quantile", 1.0, "expected a number strictly between 0 and 1"),
        (
            "interpolate",
            "grid_low_quantile",
            0.99,
            "grid_low_quantile must be below grid_high_quantile",
        ),
        ("model", "latent_dim", 0, "model.latent_dim: expected an integer >= 1"),
        (
            "model",
            "likelihood",
            "gaussian",
            "model.likelihood: expected one of 'bernoulli', 'continuous_bernoulli', got 'gaussian'",
        ),
        (
            "data",
            "binarize",
            "static",
            "data.binarize: expected one of 'none', 'dynamic', got 'static'",
        ),
        (
            "evaluate_likelihood",
            "ks",
            [],
            "evaluate_likelihood.ks: expected a non-empty list of integers >= 1, got []",
        ),
        (
            "evaluate_likelihood",
            "ks",
            [1, 0],
            "evaluate_likelihood.ks: expected a non-empty list of integers >= 1",
        ),
        ("model", "sigmoid_latent", "yes", "model.sigmoid_latent: expected true or false"),
    ],
)
def test_bad_values_name_file_key_expectation_and_value(section, key, value, expected):
    with pytest.raises(ParamsError) as raised:
        validate(_with(section, key, value), ALL, source="params.yaml")
    assert str(raised.value).startswith("params.yaml: ")
    assert expected in str(raised.value)


def test_a_typo_suggests_the_known_key():
    params = _with("train", "epoch", 10)
    del params["train"]["epochs"]
    with pytest.raises(ParamsError, match="unknown key 'epoch'; did you mean 'epochs'"):
        validate(params, ["train"])


def test_a_misspelt_section_is_refused_by_any_stage():
    params = copy.deepcopy(GOOD)
    params["interpolation"] = params.pop("interpolate")
    with pytest.raises(
        ParamsError, match="unknown key 'interpolation'; did you mean 'interpolate'"
    ):
        validate(params, ["train"])


def test_a_missing_key_and_a_missing_section_are_named():
    params = _with("train", "seed", 0)
    del params["train"]["seed"]
    with pytest.raises(ParamsError, match=r"train.seed is missing; expected an integer >= 0"):
        validate(params, ["train"])
    with pytest.raises(ParamsError, match="missing section 'model'"):
        validate({"train": GOOD["train"]}, ["model"])
    with pytest.raises(ParamsError, match="missing section 'device'"):
        validate({"train": GOOD["train"]}, ["device"])


def test_unreadable_files_are_clear_errors(tmp_path):
    with pytest.raises(ParamsError, match="file not found"):
        load_params(["train"], tmp_path / "absent.yaml")
    broken = tmp_path / "params.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(["train"], broken)
    broken.write_text(yaml.safe_dump(["a", "list"]))
    with pytest.raises(ParamsError, match="expected a mapping of sections"):
        load_params(["train"], broken)
