"""The JSON Schema (draft 2020-12) of a config class, for editors and ``skate schema``."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING
from typing import Any, Literal, Union

from skate.config.fields import Bounds, variants_of
from skate.config.loader import _hints


def json_schema(cls: type, *, title: str | None = None) -> dict[str, Any]:
    """The schema of the config class ``cls``, with every nested config under ``$defs``."""
    defs: dict[str, Any] = {}
    root = _type_schema(cls, defs)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title or cls.__name__}
    schema.update(defs.get(cls.__name__, root))
    schema["$defs"] = defs
    return schema


def _type_schema(tp: Any, defs: dict[str, Any], bounds: Bounds | None = None) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        choices = [_type_schema(a, defs, bounds) for a in args]
        return {"anyOf": choices + ([{"type": "null"}] if len(args) < len(typing.get_args(tp)) else [])}
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin in (list, tuple):
        return {"type": "array", "items": _type_schema(typing.get_args(tp)[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(typing.get_args(tp)[1], defs)}
    if dataclasses.is_dataclass(tp):
        return _config_ref(typing.cast(type, tp), defs)
    if tp is Any:
        return {}
    schema: dict[str, Any] = {"type": {bool: "boolean", int: "integer", float: "number", str: "string"}[tp]}
    if bounds is not None:
        for key, value in (("exclusiveMinimum", bounds.gt), ("minimum", bounds.ge),
                           ("exclusiveMaximum", bounds.lt), ("maximum", bounds.le)):
            if value is not None:
                schema[key] = value
        if bounds.pattern is not None:
            schema["pattern"] = f"^(?:{bounds.pattern})$"
    return schema


def _config_ref(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    name = cls.__name__
    if name not in defs:
        defs[name] = {}  # placeholder: stops recursion through self-referencing configs
        variants = variants_of(cls)
        if variants is not None:
            defs[name] = {"oneOf": [_config_ref(variants.get(n), defs) for n in variants.names()]}
        else:
            defs[name] = _object_schema(cls, defs)
    return {"$ref": f"#/$defs/{name}"}


def _object_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        prop = _type_schema(hints[f.name], defs, f.metadata.get("bounds"))
        if "doc" in f.metadata:
            prop = {**prop, "description": f.metadata["doc"]}
        if f.default is not MISSING and _jsonable(f.default):
            prop = {**prop, "default": f.default}
        if f.default is MISSING and f.default_factory is MISSING:
            required.append(f.name)
        properties[f.name] = prop
    for base in cls.__mro__[1:]:
        variants = variants_of(base)
        if variants is not None and variants.key in properties:
            name = properties[variants.key].get("default")
            properties[variants.key] = {**properties[variants.key], "const": name}
            if name != variants.default:  # only the family's default variant may leave its name out
                required.append(variants.key)
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if cls.__doc__:
        schema["description"] = cls.__doc__.strip().splitlines()[0]
    if required:
        schema["required"] = required
    return schema


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))
