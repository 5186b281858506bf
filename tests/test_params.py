import copy
import math
import re
import typing

import pytest
import yaml
from conftest import committed

from mnist_vae.idx import DATASETS
from mnist_vae.model import LIKELIHOODS
from mnist_vae.params import (
    SECTIONS,
    DatasetName,
    Likelihood,
    Params,
    ParamsError,
    load_params,
    validate,
)


# The committed params.yaml, not the workspace's: the user may be editing that one. Read in
# fixtures, so that outside a git checkout these tests skip instead of failing at collection.
@pytest.fixture(scope="module")
def committed_text() -> str:
    return committed("params.yaml").decode()


@pytest.fixture(scope="module")
def good(committed_text) -> dict:
    return yaml.safe_load(committed_text)


def _with(good: dict, section: str, key: str | None, value) -> dict:
    params = copy.deepcopy(good)
    if key is None:
        params[section] = value
    else:
        params[section][key] = value
    return params


def _message(params: dict) -> str:
    with pytest.raises(ParamsError) as raised:
        validate(params)
    return str(raised.value)


# Every leaf of Params, read from the JSON schema pydantic derives from the model (its types,
# bounds and choices), so a key added to params.py is tried here without being listed.
SCHEMA = Params.model_json_schema()


def _leaves(node: dict, path: tuple[str, ...] = ()):
    """(key path, the leaf's schema, whether null is allowed) for every leaf under `node`."""
    if "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    if node.get("type") == "object":
        for name, child in node["properties"].items():
            yield from _leaves(child, (*path, name))
        return
    kinds = node.get("anyOf", [node])
    not_null = [kind for kind in kinds if kind.get("type") != "null"]
    assert len(not_null) == 1, f"{'.'.join(path)}: a union this test does not know: {node}"
    yield path, not_null[0], len(not_null) < len(kinds)


LEAVES = list(_leaves(SCHEMA))

# What a value of each JSON type is called in the message, and values of other types.
TYPE_NAMES = {"integer": "a valid integer", "number": "a valid number",
              "boolean": "a valid boolean", "string": "a valid string", "array": "a valid list"}  # fmt: skip
WRONG_TYPES = {"integer": ["1", 1.5, True], "number": ["0.5", True], "boolean": [1, "true"],
               "string": [1, True], "array": [1, "1"]}  # fmt: skip


def _choices(values: list) -> str:
    quoted = [repr(value) for value in values]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _mistakes(schema: dict, nullable: bool, key: str) -> list[tuple]:
    """(key in the message, "type" or "range", a value the leaf must refuse, the value the
    message shows, what it says is expected, or None where only a validator knows) for one
    leaf."""
    kind = schema["type"]
    if "enum" in schema:
        expected = _choices(schema["enum"])
        return [(key, "type", 1, 1, expected), (key, "range", "nope", "nope", expected)]
    wrong = [*WRONG_TYPES[kind], *([] if nullable else [None])]
    cases = [(key, "type", value, value, TYPE_NAMES[kind]) for value in wrong]
    bounds = {"minimum": (-1, ">="), "exclusiveMinimum": (0, ">"),
              "maximum": (1, "<="), "exclusiveMaximum": (0, "<")}  # fmt: skip
    for name, (step, sign) in bounds.items():
        if name in schema:
            value = schema[name] + step
            cases.append((key, "range", value, value, f"{sign} {schema[name]}"))
    if kind == "number":
        cases.append((key, "range", math.nan, math.nan, "a finite number"))
    elif kind == "string":  # every string here is a choice a validator checks
        cases.append((key, "range", "", "", None))
    elif kind == "array":
        if schema.get("minItems") == 1:
            cases.append((key, "range", [], [], "a non-empty list"))
        for item in _mistakes(schema["items"], False, f"{key}[0]"):  # a list of one bad item
            item_key, category, value, shown, expected = item
            cases.append((item_key, category, [value], shown, expected))
    return cases


CASES = [(path, *case) for path, schema, nullable in LEAVES
         for case in _mistakes(schema, nullable, ".".join(path))]  # fmt: skip


def test_every_leaf_gets_a_wrong_type_and_an_out_of_range_value():
    assert {path[0] for path, _, _ in LEAVES} == set(SECTIONS)
    for path, schema, _ in LEAVES:
        categories = {case[2] for case in CASES if case[0] == path}
        # a boolean has no out-of-range value: any non-bool is its wrong type
        assert categories == ({"type"} if schema["type"] == "boolean" else {"type", "range"}), path


@pytest.mark.parametrize(
    ("path", "key", "value", "shown", "expected"),
    [(path, key, value, shown, expected) for path, key, _, value, shown, expected in CASES],
    ids=[f"{key}={value!r}" for _, key, _, value, _, _ in CASES],
)
def test_each_leaf_refuses_a_wrong_type_and_an_out_of_range_value_in_one_line(
    good, path, key, value, shown, expected
):
    params = copy.deepcopy(good)
    parent = params
    for name in path[:-1]:
        parent = parent[name]
    parent[path[-1]] = value
    message = _message(params)
    got = f", got {shown!r} ({type(shown).__name__})"
    if expected is None:
        assert message.startswith(f"params.yaml: {key}: expected ") and message.endswith(got)
    else:
        assert message == f"params.yaml: {key}: expected {expected}{got}"


def test_the_committed_params_file_is_valid_and_typed(tmp_path, committed_text):
    (tmp_path / "params.yaml").write_text(committed_text)
    loaded = load_params(tmp_path / "params.yaml").model_dump()
    python_types = {"integer": int, "number": float, "boolean": bool, "string": str, "array": list}
    for path, schema, nullable in LEAVES:
        value = loaded
        for key in path:
            value = value[key]
        if value is None and nullable:
            continue
        assert type(value) is python_types[schema["type"]], path  # 1 as lr is 1.0, True no int


def test_every_section_is_checked_whichever_stage_reads_the_file(good):
    # A stage that reads only `train` still refuses a mistake under `evaluate_likelihood`, so
    # the first stage that runs stops before any work (tests/test_failures.py, through DVC).
    params = _with(good, "evaluate_likelihood", "test_images", 0)
    assert _message(params) == (
        "params.yaml: evaluate_likelihood.test_images: expected >= 1, got 0 (int)"
    )
    assert set(validate(good).model_dump()) == set(SECTIONS)


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
    good, section, key, value, message
):
    assert _message(_with(good, section, key, value)) == message


def test_a_typo_suggests_the_known_key(good):
    params = _with(good, "train", "epoch", 10)
    del params["train"]["epochs"]
    assert _message(params) == (
        "params.yaml: train: unknown key 'epoch'; did you mean 'epochs'? "
        "(known keys: batch_size, epochs, kl_warmup_epochs, lr, patience, seed)"
    )
    params = _with(good, "data", "validation_image", 10)
    del params["data"]["validation_images"]
    assert _message(params).startswith(
        "params.yaml: data: unknown key 'validation_image'; did you mean 'validation_images'?"
    )


def test_early_stopping_needs_a_validation_split_and_epochs_after_the_warm_up(good):
    params = _with(good, "train", "patience", 5)
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


def test_a_misspelt_section_is_refused_by_any_stage(good):
    params = copy.deepcopy(good)
    params["interpolation"] = params.pop("interpolate")
    assert _message(params).startswith(
        "params.yaml: top level: unknown key 'interpolation'; did you mean 'interpolate'?"
    )


def test_a_missing_key_and_a_missing_section_are_named(good):
    params = _with(good, "train", "seed", 0)
    del params["train"]["seed"]
    assert _message(params) == "params.yaml: train.seed is missing"
    params = copy.deepcopy(good)
    del params["model"]
    assert _message(params) == "params.yaml: missing section 'model'"


def _train_key_written_as(text: str, key: str, written: str) -> str:
    """`text` with `key:` under `train:` (whatever its committed value) written as `written`."""
    edited, count = re.subn(
        rf"(?ms)(^train:\n(?:  .*\n)*?  {key}: )[^ \n]+", rf"\g<1>{written}", text
    )
    assert count == 1, f"no train.{key} line in the committed params.yaml"
    return edited


def test_exponent_numbers_are_numbers_as_dvc_reads_them(tmp_path, committed_text):
    path = tmp_path / "params.yaml"
    path.write_text(_train_key_written_as(committed_text, "lr", "1e-3"))
    assert load_params(path).train.lr == 0.001
    path.write_text(_train_key_written_as(committed_text, "epochs", "1e1"))  # a float, not an int
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
