"""`params.yaml`, typed once: one pydantic model per section, and errors a person can act on.

Every stage checks the whole file before it does any work, so a mistake in any section stops
the first stage that runs, whichever section that stage reads; each stage still declares only
the sections it reads under `params:` in dvc.yaml, so DVC reruns a stage when (and only when)
those change. A mistake is refused in one line: file, key path, what was expected, what was
given, and the key you probably meant.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from mnist_vae.errors import UserError

# The choices the package implements (tests check them against idx.DATASETS and
# model.LIKELIHOODS); spelled here so reading params needs neither torch nor numpy.
DatasetName = Literal["MNIST", "FashionMNIST"]
Likelihood = Literal["bernoulli", "continuous_bernoulli"]


def _device(spec: str) -> str:
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", spec):
        raise ValueError("expected 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'")
    return spec


Device = Annotated[str, AfterValidator(_device)]

Count = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0)]
Index = Annotated[int, Field(ge=0)]
Rate = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Quantile = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]  # NaN is not "< 1"


class ParamsError(UserError, ValueError):
    """A params.yaml problem, phrased as: file, key path, what was expected, what was given."""


class Section(BaseModel):
    # strict: "10" is not 10, and true is not 1; extra keys are typos.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Data(Section):
    dataset: DatasetName  # torchvision's names, which are also the folders under data/
    binarize: Literal["none", "dynamic"]
    validation_images: Index  # the last N training images, held out from the VAE's training


class Model(Section):
    hidden_dims: Annotated[list[Count], Field(min_length=1)]
    latent_dim: Count
    sigmoid_latent: bool
    likelihood: Likelihood


class Optimisation(Section):
    epochs: Count
    batch_size: Count
    lr: Rate
    seed: Seed


class Training(Optimisation):
    kl_warmup_epochs: Index
    patience: Index


class ClassifierTraining(Optimisation):
    hidden_dim: Count


class Evaluate(Section):
    digits_per_side: Count
    seed: Seed


class Generate(Section):
    small_count: Count
    large_count: Count
    classified_count: Count
    seed: Seed


class EvaluateLikelihood(Section):
    ks: Annotated[list[Count], Field(min_length=1)]
    test_images: Count
    seed: Seed


class Interpolate(Section):
    start_digit: Annotated[int, Field(ge=0, le=9)]
    end_digit: Annotated[int, Field(ge=0, le=9)]
    start_index: Index | None
    end_index: Index | None
    steps: Annotated[int, Field(ge=2)]
    grid_size: Annotated[int, Field(ge=2)]
    grid_low_quantile: Quantile
    grid_high_quantile: Quantile

    @model_validator(mode="after")
    def _ordered_quantiles(self) -> Interpolate:
        if self.grid_low_quantile >= self.grid_high_quantile:
            raise ValueError("grid_low_quantile must be below grid_high_quantile")
        return self


class Params(BaseModel):
    """The whole file: every section, each checked."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    device: Device
    data: Data
    model: Model
    train: Training
    classifier: ClassifierTraining
    evaluate: Evaluate
    generate: Generate
    evaluate_likelihood: EvaluateLikelihood
    interpolate: Interpolate

    @model_validator(mode="after")
    def _early_stopping_can_stop(self) -> Params:
        train = self.train
        if train.patience and not self.data.validation_images:
            raise ValueError(
                f"train.patience is {train.patience}, but early stopping needs a validation "
                "split: set data.validation_images above 0, or train.patience to 0"
            )
        if train.patience and train.epochs <= train.kl_warmup_epochs:
            raise ValueError(
                f"train.patience is {train.patience}, but early stopping starts after the KL "
                f"warm-up: train.epochs ({train.epochs}) must exceed train.kl_warmup_epochs "
                f"({train.kl_warmup_epochs})"
            )
        return self


SECTIONS = list(Params.model_fields)
SECTION_MODELS: dict[str, type[Section]] = {
    name: field.annotation for name, field in Params.model_fields.items() if name != "device"
}


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1, where `1e-3` (no dot) is a string; DVC reads YAML 1.2, where it
    is a number. Read floats as YAML 1.2 (and DVC) does."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


# pydantic's "Input should be greater than or equal to 1" becomes "expected >= 1".
_PHRASES = [
    (r"^Input should be ", "expected "),
    (r"^Value error, ", ""),
    (r"greater than or equal to ", ">= "),
    (r"less than or equal to ", "<= "),
    (r"greater than ", "> "),
    (r"less than ", "< "),
    (r"^List should have at least 1 item.*", "expected a non-empty list"),
]


def _expected(error: dict) -> str:
    message = error["msg"]
    for pattern, replacement in _PHRASES:
        message = re.sub(pattern, replacement, message)
    return message[0].lower() + message[1:]


def _key_path(location: tuple) -> str:
    """('evaluate_likelihood', 'ks', 1) → 'evaluate_likelihood.ks[1]'."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".")


def _message(error: dict, source: str) -> str:
    location = [str(part) for part in error["loc"]]
    where = _key_path(error["loc"])
    if error["type"] == "extra_forbidden":
        parent, key = location[:-1], location[-1]
        known = list(SECTION_MODELS[parent[0]].model_fields) if parent else SECTIONS
        message = f"{source}: {'.'.join(parent) or 'top level'}: unknown key '{key}'"
        close = difflib.get_close_matches(key, known, n=1)
        if close:
            message += f"; did you mean '{close[0]}'?"
        return message + f" (known keys: {', '.join(sorted(known))})"
    if error["type"] == "missing":
        return f"{source}: {where} is missing"
    if error["type"] == "value_error" and isinstance(error["input"], dict):  # across keys
        return f"{source}: {where + ': ' if where else ''}{_expected(error)}"
    return f"{source}: {where}: {_expected(error)}, got {_describe(error['input'])}"


def validate(raw: Any, source: str = "params.yaml") -> Params:
    """Check every section of an already-parsed params mapping; the first mistake is raised."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {_describe(raw)}")
    for name in raw:
        if name not in SECTIONS:
            error = {"type": "extra_forbidden", "loc": (name,)}
            raise ParamsError(_message(error, source))
    for name in SECTIONS:
        if name not in raw:
            raise ParamsError(f"{source}: missing section '{name}'")
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        errors = error.errors(include_url=False)
        # A typo (`epoch:`) is both an unknown key and a missing one: name the typo.
        first = min(errors, key=lambda e: e["type"] != "extra_forbidden")
        raise ParamsError(_message(first, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found (run from the repository root)") from None
    try:
        raw = yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader: plain data only
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {error}") from None
    return validate(raw, source=str(path))
