"""Reading, checking and writing job specs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from skate.errors import SpecError
from skate.spec.job import JobSpec
from skate.config.jsonschema import json_schema
from skate.config.loader import Locator, load_config
from skate.config.yamlio import apply_overrides, dump_yaml, read_yaml


def load_spec(path: str | Path, overrides: list[str] | None = None) -> JobSpec:
    """Load and validate a job spec file, with optional ``dotted.key=value`` overrides.

    Raises:
        SpecError: naming the file, line and dotted key of every problem found.
    """
    data, locator = read_yaml(path)
    return load_spec_data(data, locator=locator, overrides=overrides)


def load_spec_data(data: Any, *, locator: Locator | None = None, overrides: list[str] | None = None) -> JobSpec:
    """Validate already-parsed spec data (a mapping) into a :class:`JobSpec`.

    Raises:
        SpecError: for every problem found.
    """
    locator = locator or Locator()
    if not isinstance(data, dict):
        raise SpecError([f"{locator.source}: expected a mapping of sections (name, data, model, train, ...)"])
    if overrides:
        data = apply_overrides(data, overrides, locator)
    return load_config(JobSpec, data, locator)


def spec_to_data(spec: JobSpec) -> dict[str, Any]:
    """The spec as plain data, every default filled in; loading it gives back an equal spec."""
    return _plain(dataclasses.asdict(spec))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dump_spec(spec: JobSpec) -> str:
    """The resolved spec as YAML."""
    return dump_yaml(spec_to_data(spec))


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of job specs."""
    return json_schema(JobSpec, title="skate job spec")
