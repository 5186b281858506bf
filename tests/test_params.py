import copy
import typing

import pytest
import yaml
from conftest import committed

from mnist_vae.idx import DATASETS
from mnist_vae.model import LIKELIHOODS
from mnist_vae.params import SECTIONS, DatasetName, Likelihood, ParamsError, load_params, validate

# The committed params.yaml, not the workspace's: the user may be editing that one.
COMMITTED = committed("params.yaml").decode()
GOOD = yaml.safe_load(COMMITTED)


def _with(section: str, key: str | None, value) -> dict:
    params = copy.deepcopy(GOOD)
    if key is None:
        params[section] = value
    else:
        params[section][key] = value
    return params


def _message(params: dict) -> str:
    with pytest.raises(ParamsError) as raised:
        validate(params)
    return str(raised.value)


def test_the_committed_params_file_is_valid_and_typed(tmp_path):
    (tmp_path / "params.yaml").write_text(COMMITTED)
    params = load_params(tmp_path / "params.yaml")
    assert params.train.epochs == 10 and isinstance(params.train.lr, float)
    assert params.interpolate.start_index is None and params.evaluate_likelihood.ks[0] == 1


def test_every_section_is_checked_whichever_stage_reads_the_file():
    # A stage that reads only `train` still refuses a mistake under `evaluate_likelihood`, so
    # the first stage that runs stops before any work (tests/test_failures.py, through DVC).
    params = _with("evaluate_likelihood", "test_images", 0)
    assert _message(params) == (
        "params.yaml: evaluate_likelihood.test_images: expected >= 1, got 0 (int)"
    )
    assert set(validate(GOOD).model_dump()) == set(SECTIONS)


def test_the_choices_match_what_the_package_implements():
    assert typing.get_args(DatasetName) == tuple(DATASETS)
    assert typing.get_args(Likelihood) == LIKELIHOODS


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("train", "epochs", 0, "params.yaml: train.epochs: expected >= 1, got 0 (int)"),
        (
            "train",
            "epochs",
            "10",
            "params.yaml: train.epochs: expected a valid integer, got '10' (str)",
        ),
        ("train", "epochs", True, "params.yaml: train.epochs: expected a valid integer, got True (bool)"),
        ("train", "batch_size", 2.5, "params.yaml: train.batch_size: expected a valid integer, got 2.5 (float)"),
        ("train", "lr", 0, "params.yaml: train.lr: expected > 0, got 0 (int)"),
        ("train", "lr", float("inf"), "params.yaml: train.lr: expected a finite number, got inf (float)"),
        ("train", "lr", "fast", "params.yaml: train.lr: expected a valid number, got 'fast' (str)"),
        (
            "device",
            None,
            "gpu",
            "params.yaml: device: expected 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N', got 'gpu' (str)",
        ),
        ("classifier", "hidden_dim", -1, "params.yaml: classifier.hidden_dim: expected >= 1, got -1 (int)"),
        ("interpolate", "end_digit", 10, "params.yaml: interpolate.end_digit: expected <= 9, got 10 (int)"),
        ("interpolate", "start_index", -3, "params.yaml: interpolate.start_index: expected >= 0, got -3 (int)"),
        ("interpolate", "grid_high_quantile", 1.0, "params.yaml: interpolate.grid_high_quantile: expected < 1, got 1.0 (float)"),
        (
            "interpolate",
            "grid_low_quantile",
            0.99,
            "params.yaml: interpolate: grid_low_quantile must be below grid_high_quantile",
        ),
        (
            "model",
            "likelihood",
            "gaussian",
            "params.yaml: model.likelihood: expected 'bernoulli' or 'continuous_bernoulli', got 'gaussian' (str)",
        ),
        ("data", "binarize", "static", "params.yaml: data.binarize: expected 'none' or 'dynamic', got 'static' (str)"),
        ("evaluate_likelihood", "ks", [], "params.yaml: evaluate_likelihood.ks: expected a non-empty list, got [] (list)"),
        ("evaluate_likelihood", "ks", [1, 0], "params.yaml: evaluate_likelihood.ks[1]: expected >= 1, got 0 (int)"),
        ("model", None, [1, 2], "params.yaml: model: expected a valid dictionary or instance of Model, got [1, 2] (list)"),
    ],
)  # fmt: skip
def test_each_mistake_is_one_line_naming_file_key_expectation_and_value(
    section, key, value, message
):
    assert _message(_with(section, key, value)) == message


def test_a_typo_suggests_the_known_key():
    params = _with("train", "epoch", 10)
    del params["train"]["epochs"]
    assert _message(params) == (
        "params.yaml: train: unknown key 'epoch'; did you mean 'epochs'? "
        "(known keys: batch_size, epochs, kl_warmup_epochs, lr, patience, seed)"
    )
    params = _with("data", "validation_image", 10)
    del params["data"]["validation_images"]
    assert _message(params).startswith(
        "params.yaml: data: unknown key 'validation_image'; did you mean 'validation_images'?"
    )


def test_early_stopping_needs_a_validation_split_and_epochs_after_the_warm_up():
    params = _with("train", "patience", 5)
    assert _message(params) == (
        "params.yaml: train.patience is 5, but early stopping needs a validation split: "
        "set data.validation_images above 0, or train.patience to 0"
    )
    params["data"]["validation_images"] = 100
    params["train"] |= {"epochs": 20, "kl_warmup_epochs": 20}
    assert _message(params) == (
        "params.yaml: train.patience is 5, but early stopping starts after the KL warm-up: "
        "train.epochs (20) must exceed train.kl_warmup_epochs (20)"
    )
    params["train"]["epochs"] = 21
    assert validate(params).train.patience == 5


def test_a_misspelt_section_is_refused_by_any_stage():
    params = copy.deepcopy(GOOD)
    params["interpolation"] = params.pop("interpolate")
    assert _message(params).startswith(
        "params.yaml: top level: unknown key 'interpolation'; did you mean 'interpolate'?"
    )


def test_a_missing_key_and_a_missing_section_are_named():
    params = _with("train", "seed", 0)
    del params["train"]["seed"]
    assert _message(params) == "params.yaml: train.seed is missing"
    params = copy.deepcopy(GOOD)
    del params["model"]
    assert _message(params) == "params.yaml: missing section 'model'"


def test_exponent_numbers_are_numbers_as_dvc_reads_them(tmp_path):
    path = tmp_path / "params.yaml"
    text = COMMITTED
    path.write_text(text.replace("lr: 0.001", "lr: 1e-3", 1))
    assert "lr: 1e-3" in path.read_text()
    assert load_params(path).train.lr == 0.001
    path.write_text(text.replace("epochs: 10", "epochs: 1e1", 1))  # a float now, not an integer
    with pytest.raises(ParamsError, match=r"train.epochs: expected a valid integer, got 10.0"):
        load_params(path)


def test_unreadable_files_are_clear_errors(tmp_path):
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "absent.yaml")
    broken = tmp_path / "params.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(broken)
    broken.write_text(yaml.safe_dump(["a", "list"]))
    with pytest.raises(ParamsError, match="expected a mapping of sections"):
        load_params(broken)
