"""Reading, checking and writing job specs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from skate.errors import SpecError
from skate.spec.job import JobSpec

if TYPE_CHECKING:  # skate.rl.spec imports skate.spec.job: imported where used, not here
    from skate.rl.spec import RLJobSpec

AnySpec = Union[JobSpec, "RLJobSpec"]
from skate.config.jsonschema import json_schema
from skate.config.loader import Locator, load_config
from skate.config.yamlio import apply_overrides, dump_yaml, read_yaml


def load_spec(path: str | Path, overrides: list[str] | None = None, *, here: bool = True, gate: bool = True,
              search: bool = True) -> AnySpec:
    """Load and validate a job spec file, with optional ``dotted.key=value`` overrides, through the
    gate (:mod:`skate.spec.gate`) when it is to run: ``here`` on this machine (``False`` for a
    submission); ``gate=False`` for a spec read to look at (a run directory's). ``search=False``
    drops the ``search:`` section first (``skate run --no-search``).

    Raises:
        SpecError: naming the file, line and dotted key of every problem found.
    """
    data, locator = read_yaml(path)
    return load_spec_data(data, locator=locator, overrides=overrides, here=here, gate=gate, search=search)


def load_spec_data(data: Any, *, locator: Locator | None = None, overrides: list[str] | None = None,
                   here: bool = True, gate: bool = True, search: bool = True) -> AnySpec:
    """Validate already-parsed spec data (a mapping) into a :class:`JobSpec`, or an
    :class:`RLJobSpec` when it has an ``rl`` section (without its ``search:`` section unless
    ``search``); then, unless ``gate`` is ``False``, through the gate (:func:`skate.spec.gate.admit`).

    Raises:
        SpecError: for every problem found.
    """
    from skate.plugins import load_entry_points

    load_entry_points()
    locator = locator or Locator()
    if not isinstance(data, dict):
        raise SpecError([f"{locator.source}: expected a mapping of sections (name, data, model, train, ...)"])
    if overrides:
        data = apply_overrides(data, overrides, locator)
    from skate.rl.spec import RLJobSpec
    from skate.search.paths import check_space
    from skate.spec.gate import admit

    spec = load_config(RLJobSpec if "rl" in data else JobSpec, data, locator)
    if not search:
        spec = dataclasses.replace(spec, search=None)
    if spec.search is not None:
        check_space(spec, locator)
    if gate:
        admit(spec, locator, here=here)
    return spec


def spec_to_data(spec: AnySpec) -> dict[str, Any]:
    """The spec as plain data, every default filled in; loading it gives back an equal spec."""
    return _plain(dataclasses.asdict(spec))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dump_spec(spec: AnySpec) -> str:
    """The resolved spec as YAML."""
    return dump_yaml(spec_to_data(spec))


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of job specs: an RL job when it has ``rl`` (``then``), else a supervised
    job (``else``); a validator reports the chosen branch's errors as they are."""
    from skate.rl.spec import RLJobSpec

    branches = [json_schema(RLJobSpec, title="reinforcement-learning job"), json_schema(JobSpec, title="supervised job")]
    definitions: dict[str, Any] = {}
    for branch in branches:  # references point at the root's $defs
        for name, definition in branch.pop("$defs", {}).items():
            assert definitions.setdefault(name, definition) == definition, f"two configs named {name}"
        branch.pop("$schema", None)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "skate job spec",
            "if": {"type": "object", "required": ["rl"]}, "then": branches[0], "else": branches[1],
            "$defs": definitions}
