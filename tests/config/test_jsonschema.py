"""The JSON Schema of job specs, checked with the ``jsonschema`` package against real and broken specs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

import jsonschema
import pytest

from skate.config.fields import param
from skate.config.jsonschema import json_schema
from skate.config.loader import Locator
from skate.config.yamlio import apply_overrides, read_yaml
from skate.errors import SpecError
from skate.spec import load_spec_data, spec_schema

REPO = Path(__file__).resolve().parents[2]
JOBS = sorted((REPO / "jobs").glob("*.yaml"))
SCHEMA = spec_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def digits_with(*overrides: str) -> dict[str, Any]:
    """The data of jobs/digits_rnn.yaml with ``dotted.key=value`` overrides applied."""
    data, locator = read_yaml(REPO / "jobs" / "digits_rnn.yaml")
    return apply_overrides(data, list(overrides), locator)


def schema_errors(data: Any) -> list[tuple[list[Any], str]]:
    return sorted((list(e.absolute_path), e.message) for e in VALIDATOR.iter_errors(data))


def prop(definition: str, field: str) -> dict[str, Any]:
    return SCHEMA["$defs"][definition]["properties"][field]


def test_schema_is_valid_draft_2020_12_and_plain_json() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["title"] == "skate job spec"
    assert json.loads(json.dumps(SCHEMA)) == SCHEMA


@pytest.mark.parametrize("job", JOBS, ids=lambda p: p.name)
def test_shipped_jobs_validate(job: Path) -> None:
    assert schema_errors(read_yaml(job)[0]) == []


def test_there_are_shipped_jobs() -> None:
    assert "digits_rnn.yaml" in [job.name for job in JOBS]


@pytest.mark.parametrize("override, expected", [
    ("epochs=3", ([], "Additional properties are not allowed ('epochs' was unexpected)")),
    ("train.epoch=3", (["train"], "Additional properties are not allowed ('epoch' was unexpected)")),
    ("train.optimizer.learning_rate=0.1",
     (["train", "optimizer"], "Additional properties are not allowed ('learning_rate' was unexpected)")),
])
def test_an_unknown_key_does_not_validate(override: str, expected: tuple[list[str], str]) -> None:
    assert schema_errors(digits_with(override)) == [expected]


def test_an_unknown_key_in_a_variant_matches_no_variant() -> None:
    errors = schema_errors(digits_with("model.units=3"))
    assert [path for path, _ in errors] == [["model"]]
    assert errors[0][1].endswith("is not valid under any of the given schemas")


def test_root_lists_sections_and_required_ones() -> None:
    supervised, rl = SCHEMA["else"], SCHEMA["then"]
    assert list(supervised["properties"]) == ["name", "description", "seed", "data", "model", "train", "checkpoint",
                                             "logging", "search"]
    assert list(rl["properties"])[-1] == "search"
    assert supervised["required"] == ["name", "data", "model"]
    assert supervised["additionalProperties"] is False
    assert rl["required"] == ["name", "rl"] and SCHEMA["if"] == {"type": "object", "required": ["rl"]}
    assert "required" not in SCHEMA["$defs"]["TrainConfig"]


@pytest.mark.parametrize("definition, field, expected", [
    ("TrainConfig", "epochs", {"type": "integer", "exclusiveMinimum": 0,
                               "description": "passes over the training data", "default": 10}),
    ("OptimizerConfig", "lr", {"type": "number", "exclusiveMinimum": 0, "description": "learning rate",
                               "default": 0.001}),
    ("DigitsConfig", "validation_fraction", {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                                             "description": "share of examples held out for validation",
                                             "default": 0.15}),
    ("SingleStrategyConfig", "num_gpus", {"type": "number", "minimum": 0, "default": 0.0,
                                          "description": "GPUs reserved for the worker; > 0 trains on cuda"}),
])
def test_bounds_become_minimum_and_exclusive_minimum(definition: str, field: str, expected: dict[str, Any]) -> None:
    assert prop(definition, field) == expected


def test_root_fields_carry_bounds_too() -> None:
    assert SCHEMA["else"]["properties"]["seed"]["minimum"] == 0


@pytest.mark.parametrize("override, valid", [
    ("train.epochs=0", False), ("train.epochs=1", True), ("train.batch_size=-5", False),
    ("seed=-1", False), ("seed=0", True), ("data.validation_fraction=1", False),
    ("data.validation_fraction=0", True), ("train.optimizer.lr=0", False), ("train.epochs=true", False),
])
def test_validator_enforces_bounds_and_types(override: str, valid: bool) -> None:
    assert (schema_errors(digits_with(override)) == []) is valid


@pytest.mark.parametrize("family, variant, key, name", [
    ("ModelConfig", "RnnClassifierConfig", "kind", "rnn_classifier"),
    ("DataConfig", "DigitsConfig", "source", "digits"),
    ("StrategyConfig", "SingleStrategyConfig", "kind", "single"),
    ("StrategyConfig", "ParameterServerConfig", "kind", "parameter_server"),
])
def test_variants_are_one_of_with_a_const_name(family: str, variant: str, key: str, name: str) -> None:
    assert {"$ref": f"#/$defs/{variant}"} in SCHEMA["$defs"][family]["oneOf"]
    assert prop(variant, key) == {"type": "string", "default": name, "const": name}


@pytest.mark.parametrize("override, path", [
    ("model.kind=rnn", ["model"]), ("data.source=mnist", ["data"]), ("train.strategy.kind=ddp", ["train", "strategy"]),
])
def test_an_unknown_variant_does_not_validate(override: str, path: list[str]) -> None:
    assert [where for where, _ in schema_errors(digits_with(override))] == [path]


def test_literals_are_enums_and_optionals_allow_null() -> None:
    assert prop("RnnClassifierConfig", "cell")["enum"] == ["basic", "lstm", "gru"]
    assert prop("CheckpointConfig", "best_mode")["anyOf"] == [{"enum": ["max", "min"]}, {"type": "null"}]
    assert prop("CheckpointConfig", "best_metric")["anyOf"] == [{"type": "string"}, {"type": "null"}]


def loader_accepts(data: dict[str, Any]) -> bool:
    try:
        load_spec_data(data, locator=Locator())
    except SpecError:
        return False
    return True


@pytest.mark.parametrize("override", [
    "seed=1", "train.batch_size=-5", "model.cell=lstn", "model.num_units=big", "train.strategy={}",
    "train.optimizer.lr=1", "checkpoint.best_mode=null", "checkpoint.best_mode=maximum", "description=3",
    "model={}",
    "name=bad name",
])
def test_schema_and_loader_agree(override: str) -> None:
    data = digits_with(override)
    assert (schema_errors(data) == []) is loader_accepts(data)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Node:
    """A config that nests itself, with containers."""

    weights: list[float] = param(doc="numbers", default_factory=list)
    names: dict[str, int] = param(doc="counts", default_factory=dict)
    extra: Any = param(None, doc="anything")
    mode: Literal["a", "b"] = param(doc="required literal")
    limit: int | None = param(None, doc="optional bound", gt=1)
    child: Node | None = param(None, doc="another node")


def test_containers_and_any() -> None:
    schema = json_schema(Node)
    assert schema["title"] == "Node"
    assert schema["description"] == "A config that nests itself, with containers."
    assert schema["required"] == ["mode"]
    shown = {name: {k: v for k, v in p.items() if k != "description"} for name, p in schema["properties"].items()}
    del shown["child"]  # see test_a_config_that_nests_itself_validates_nested_data
    assert shown == {
        "weights": {"type": "array", "items": {"type": "number"}},
        "names": {"type": "object", "additionalProperties": {"type": "integer"}},
        "extra": {"default": None},
        "mode": {"enum": ["a", "b"]},
        "limit": {"anyOf": [{"type": "integer", "exclusiveMinimum": 1}, {"type": "null"}], "default": None},
    }


def test_a_config_that_nests_itself_validates_nested_data() -> None:
    validator = jsonschema.Draft202012Validator(json_schema(Node))
    assert list(validator.iter_errors({"mode": "a", "child": {"mode": "b", "child": None}})) == []
    assert [e.json_path for e in validator.iter_errors({"mode": "a", "child": {"mode": "c"}})] == ["$.child"]
