"""Read and check `params.yaml`: every key a stage uses, with errors a person can act on.

Each stage asks for its own sections only, which are exactly the sections it declares
under `params:` in dvc.yaml, so DVC reruns a stage when (and only when) those change.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mnist_vae.mnist import DATASETS
from mnist_vae.model import LIKELIHOODS


class ParamsError(ValueError):
    """A params.yaml problem, phrased as: file, key path, what was expected, what was given."""


@dataclass(frozen=True)
class Field:
    expected: str
    is_valid: Callable[[Any], bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or isinstance(value, float)


def integer(minimum: int | None = None, maximum: int | None = None) -> Field:
    if minimum is not None and maximum is not None:
        expected = f"an integer from {minimum} to {maximum}"
    elif minimum is not None:
        expected = f"an integer >= {minimum}"
    else:
        expected = "an integer"
    return Field(
        expected,
        lambda v: (
            _is_int(v) and (minimum is None or v >= minimum) and (maximum is None or v <= maximum)
        ),
    )


def positive_number() -> Field:
    return Field(
        "a number > 0",
        lambda v: _is_number(v) and v > 0 and v != float("inf"),
    )


def boolean() -> Field:
    return Field("true or false", lambda v: isinstance(v, bool))


DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def device() -> Field:
    return Field(
        "'auto', 'cpu', 'cuda' or 'cuda:N'",
        lambda v: isinstance(v, str) and DEVICE_PATTERN.fullmatch(v) is not None,
    )


def probability() -> Field:
    return Field(
        "a number strictly between 0 and 1",
        lambda v: _is_number(v) and 0 < v < 1,
    )


def choice(*options: str) -> Field:
    return Field(
        "one of " + ", ".join(repr(o) for o in options),
        lambda v: isinstance(v, str) and v in options,
    )


def integer_list(minimum: int) -> Field:
    return Field(
        f"a non-empty list of integers >= {minimum}",
        lambda v: (
            isinstance(v, list) and len(v) > 0 and all(integer(minimum).is_valid(i) for i in v)
        ),
    )


def optional(field: Field) -> Field:
    return Field(f"null or {field.expected}", lambda v: v is None or field.is_valid(v))


def _training(**extra: Field) -> dict[str, Field]:
    return {
        **extra,
        "epochs": integer(1),
        "batch_size": integer(1),
        "lr": positive_number(),
        "seed": integer(0),
    }


# A section is a mapping of fields; a bare Field is a top-level scalar such as `device`.
SCHEMA: dict[str, dict[str, Field] | Field] = {
    "device": device(),
    "data": {
        "dataset": choice(*DATASETS),
        "binarize": choice("none", "dynamic"),
    },
    "model": {
        "hidden_dim": integer(1),
        "latent_dim": integer(1),
        "sigmoid_latent": boolean(),
        "likelihood": choice(*LIKELIHOODS),
    },
    "train": _training(),
    "classifier": _training(hidden_dim=integer(1)),
    "evaluate": {
        "digits_per_side": integer(1),
        "seed": integer(0),
    },
    "generate": {
        "small_count": integer(1),
        "large_count": integer(1),
        "classified_count": integer(1),
        "seed": integer(0),
    },
    "evaluate_likelihood": {
        "ks": integer_list(1),
        "test_images": integer(1),
        "seed": integer(0),
    },
    "interpolate": {
        "start_digit": integer(0, 9),
        "end_digit": integer(0, 9),
        "start_index": optional(integer(0)),
        "end_index": optional(integer(0)),
        "steps": integer(2),
        "grid_size": integer(2),
        "grid_low_quantile": probability(),
        "grid_high_quantile": probability(),
    },
}

# Rules that involve several keys of one section: (rule, message).
CROSS_CHECKS: dict[str, list[tuple[Callable[[dict], bool], str]]] = {
    "interpolate": [
        (
            lambda s: s["grid_low_quantile"] < s["grid_high_quantile"],
            "grid_low_quantile must be below grid_high_quantile",
        ),
    ],
}


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _unknown_key_message(where: str, key: str, known: list[str]) -> str:
    message = f"{where}: unknown key '{key}'"
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        message += f"; did you mean '{close[0]}'?"
    return message + f" (known keys: {', '.join(sorted(known))})"


def validate(raw: Any, sections: list[str], source: str = "params.yaml") -> dict[str, Any]:
    """Check `sections` of an already-parsed params mapping and return them.

    Unknown top-level names are refused too, whichever stage reads the file, so a typo in a
    section name is caught by the first stage that runs.
    """
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {_describe(raw)}")
    for name in raw:
        if name not in SCHEMA:
            raise ParamsError(_unknown_key_message(source, str(name), [*SCHEMA]))
    checked: dict[str, Any] = {}
    for section in sections:
        schema = SCHEMA[section]
        if section not in raw:
            raise ParamsError(f"{source}: missing section '{section}'")
        values = raw[section]
        if isinstance(schema, Field):
            if not schema.is_valid(values):
                raise ParamsError(
                    f"{source}: {section}: expected {schema.expected}, got {_describe(values)}"
                )
            checked[section] = values
            continue
        if not isinstance(values, dict):
            raise ParamsError(f"{source}: '{section}' must be a mapping, got {_describe(values)}")
        for key in values:
            if key not in schema:
                raise ParamsError(_unknown_key_message(f"{source}: {section}", str(key), [*schema]))
        for key, field in schema.items():
            where = f"{source}: {section}.{key}"
            if key not in values:
                raise ParamsError(f"{where} is missing; expected {field.expected}")
            if not field.is_valid(values[key]):
                raise ParamsError(
                    f"{where}: expected {field.expected}, got {_describe(values[key])}"
                )
        for rule, message in CROSS_CHECKS.get(section, []):
            if not rule(values):
                raise ParamsError(f"{source}: {section}: {message}")
        checked[section] = dict(values)
    return checked


def load_params(sections: list[str], path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found (run from the repository root)") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {error}") from None
    return validate(raw, sections, source=str(path))
