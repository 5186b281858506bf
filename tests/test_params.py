import pytest
import yaml

from mnist_vae.params import ParamsError, load_params, validate

GOOD = {
    "model": {"hidden_dim": 400, "latent_dim": 2, "sigmoid_latent": True},
    "train": {"epochs": 10, "batch_size": 128, "lr": 0.001, "seed": 1, "device": "auto"},
}


def _with(section: str, key: str, value) -> dict:
    params = {name: dict(values) for name, values in GOOD.items()}
    params[section][key] = value
    return params


def test_the_committed_params_file_is_valid():
    checked = load_params(["model", "train"])
    assert checked["train"]["epochs"] >= 1


def test_only_the_asked_sections_are_returned():
    assert list(validate(GOOD, ["model"])) == ["model"]


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("train", "epochs", 0, "train.epochs: expected an integer >= 1, got 0 (int)"),
        ("train", "epochs", "10", "train.epochs: expected an integer >= 1, got '10' (str)"),
        ("train", "epochs", True, "got True (bool)"),
        ("train", "batch_size", 2.5, "train.batch_size: expected an integer >= 1"),
        ("train", "lr", 0, "train.lr: expected a number > 0, got 0"),
        ("train", "lr", -0.1, "train.lr: expected a number > 0"),
        (
            "train",
            "device",
            "gpu",
            "train.device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'",
        ),
        ("train", "device", "cuda:x", "got 'cuda:x'"),
        ("model", "latent_dim", 0, "model.latent_dim: expected an integer >= 1"),
        ("model", "sigmoid_latent", "yes", "model.sigmoid_latent: expected true or false"),
    ],
)
def test_bad_values_name_file_key_expectation_and_value(section, key, value, expected):
    with pytest.raises(ParamsError) as raised:
        validate(_with(section, key, value), ["model", "train"], source="params.yaml")
    assert str(raised.value).startswith("params.yaml: ")
    assert expected in str(raised.value)


def test_a_typo_suggests_the_known_key():
    params = _with("train", "epoch", 10)
    del params["train"]["epochs"]
    with pytest.raises(ParamsError, match="unknown key 'epoch'; did you mean 'epochs'"):
        validate(params, ["train"])


def test_a_missing_key_and_a_missing_section_are_named():
    params = _with("train", "seed", 0)
    del params["train"]["seed"]
    with pytest.raises(ParamsError, match=r"train.seed is missing; expected an integer >= 0"):
        validate(params, ["train"])
    with pytest.raises(ParamsError, match="missing section 'model'"):
        validate({"train": GOOD["train"]}, ["model"])


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
