"""Dotted paths of a job spec: filling a trial's values in, and checking a search space against the job."""

from __future__ import annotations

import dataclasses
from typing import Any

from skate.config.fields import variants_of
from skate.config.loader import Locator, suggest
from skate.config.yamlio import copy_data
from skate.errors import SpecError


def with_values(data: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of the spec data ``data`` with each dotted path of ``values`` set to its value."""
    out = copy_data(data)
    for path, value in values.items():
        node = out
        *parents, last = path.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[last] = value
    return out


def explicit_data(config: Any) -> dict[str, Any]:
    """``config`` as spec data with only the values that differ from their defaults (and each variant's
    key), so a trial that switches a variant (``train.strategy.kind``) does not carry the other variant's
    defaulted fields along."""
    out: dict[str, Any] = {}
    key = _variant_key(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            inner = explicit_data(value)
            if inner:
                out[f.name] = inner
            continue
        if f.name == key or value != _default(f):
            out[f.name] = _plain(value)
    return out


def _variant_key(cls: type) -> str | None:
    for base in cls.__mro__:
        registry = variants_of(base)
        if registry is not None:
            return registry.key
    return None


def _default(f: dataclasses.Field) -> Any:  # type: ignore[type-arg]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def field_problem(spec: Any, path: str) -> str | None:
    """Why ``path`` is not a value of ``spec`` that a search may set, or ``None`` when it is."""
    parts = path.split(".")
    if parts[0] in ("search", "name"):
        return f"'{parts[0]}' cannot be searched"
    node, walked = spec, []
    for part in parts:
        if not dataclasses.is_dataclass(node):
            return f"'{'.'.join(walked)}' is a value, not a section: it has no field '{part}'"
        fields = [f.name for f in dataclasses.fields(node)]
        if part not in fields:
            where = f"'{'.'.join(walked)}'" if walked else "the job spec"
            return f"not a field of the job spec: {where} has no '{part}'{suggest(part, fields)}; " \
                   f"its fields: {', '.join(fields)}"
        node = getattr(node, part)
        walked.append(part)
    if dataclasses.is_dataclass(node):
        return f"'{path}' is a section; search one of its values, e.g. {path}.{dataclasses.fields(node)[-1].name}"
    return None


def check_space(spec: Any, locator: Locator) -> None:
    """Check every dotted path of ``spec.search`` (its space and PBT mutations): each must be a value of
    the job spec, and each distribution's examples (its ends, its choices) must load into the job.

    Raises:
        SpecError: one line per problem, with the file and line of the path.
    """
    from skate.spec.io import load_spec_data

    search = spec.search
    base = explicit_data(dataclasses.replace(spec, search=None))
    mutations = getattr(search.scheduler, "mutations", None) or {}
    problems: list[str] = []
    for section, paths in (("space", search.space), ("scheduler.mutations", mutations)):
        for path, distribution in paths.items():
            where = f"{locator.where(('search', *section.split('.'), path))}: search.{section}.{path}"
            problem = field_problem(spec, path)
            if problem is not None:
                problems.append(f"{where}: {problem}")
                continue
            for value in distribution.examples():
                try:
                    load_spec_data(with_values(base, {path: value}), gate=False)
                except SpecError as error:
                    detail = error.problems[0].split(": ", 1)[-1]
                    problems.append(f"{where}: the value {value!r} does not fit the job: {detail}")
                    break
    if problems:
        raise SpecError(problems)
