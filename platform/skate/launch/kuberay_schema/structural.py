"""A value checked against a Kubernetes structural schema (a CRD's ``openAPIV3Schema``) as the API
server checks a resource on create with strict field validation (``kubectl apply``'s default).

What that means, beyond JSON Schema:

* an object schema with ``properties`` and no ``additionalProperties`` refuses other keys, unless
  it has ``x-kubernetes-preserve-unknown-fields: true``;
* ``x-kubernetes-int-or-string: true`` takes an integer or a string (its ``pattern`` applies to
  strings only);
* a ``null`` where the schema is not ``nullable`` is dropped, as if the key were absent, and a
  required field that has a ``default`` is filled in before it is found missing;
* ``x-kubernetes-list-type: map`` lists take one item per key, ``set`` lists one of each value;
* ``x-kubernetes-validations`` rules (CEL) hold (:mod:`skate.launch.kuberay_schema.cel`);
* ``format: int32``/``int64`` integers fit those types. Other formats (``date-time``, in status
  fields) are not checked.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, Iterable

from skate.config.loader import Path, suggest
from skate.launch.clusterfile import Problems, show, yaml_scalar
from skate.launch.kuberay_schema import KubeRaySchema, Schema
from skate.launch.kuberay_schema.cel import UnsupportedRule, compile_rule

UnknownKey = Callable[[Path, Iterable[str]], str]
"""Says what is wrong with an unknown key at a path, given the keys its schema knows."""

KEYWORDS = frozenset({
    "type", "properties", "additionalProperties", "items", "required", "enum", "default", "nullable", "format",
    "pattern", "maxLength", "minLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minItems", "maxItems", "minProperties", "maxProperties", "anyOf", "$ref",
    "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-validations",
})
"""The schema keywords this module acts on or knows it may ignore (``default`` outside required
fields and map keys, ``x-kubernetes-map-type``, which only changes how updates merge). ``anyOf``
appears only as the two branches of ``x-kubernetes-int-or-string``."""

QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?"
                    r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
"""The pattern of a Kubernetes resource quantity (``cpu: 500m``, ``memory: 16Gi``)."""

_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false"}
_INT_RANGES = {"int32": 2**31, "int64": 2**63}


def unknown_key(path: Path, known: Iterable[str]) -> str:
    """The plain message for an unknown key: a did-you-mean from the keys the schema knows."""
    return "unknown key" + suggest(path[-1], known)


class StructuralChecker:
    """Adds to ``problems`` what the API server would refuse in a value.

    Args:
        schema: the release whose definitions ``$ref`` nodes point at.
        problems: where the problems go, each at its path.
        unknown: what to say of an unknown key (default: :func:`unknown_key`).
    """

    def __init__(self, schema: KubeRaySchema, problems: Problems, *, unknown: UnknownKey = unknown_key) -> None:
        self.schema = schema
        self.problems = problems
        self.unknown = unknown

    def check(self, node: Schema, value: Any, path: Path) -> None:
        """Check ``value``, found at ``path``, against the schema ``node``."""
        node = self.schema.resolve(node)
        if value is None:
            if not node.get("nullable"):
                self.problems.add(path, f"expected {_expected(node)}, got null")
            return
        if not _has_type(node, value):
            quote = f" (quote it: \"{yaml_scalar(value)}\")" if _takes_string(node) and _is_scalar(value) else ""
            self.problems.add(path, f"expected {_expected(node)}{quote}, got {show(value)}")
            return
        if isinstance(value, dict):
            self._object(node, value, path)
        elif isinstance(value, list):
            self._list(node, value, path)
        else:
            self._scalar(node, value, path)
        for rule in node.get("x-kubernetes-validations", ()):
            passes = _compiled(rule["rule"])
            if passes is not None and not passes(value):
                self.problems.add(path, rule.get("message") or f"fails the rule {rule['rule']}")

    def _object(self, node: Schema, value: dict[Any, Any], path: Path) -> None:
        properties: dict[str, Schema] = node.get("properties", {})
        extra = node.get("additionalProperties")
        for key, item in value.items():
            key_path = path + (str(key),)
            child = properties.get(str(key), extra if isinstance(extra, dict) else None)
            if child is None:
                if not (extra is True or node.get("x-kubernetes-preserve-unknown-fields")):
                    self.problems.add(key_path, self.unknown(key_path, properties))
            elif not (item is None and not self.schema.resolve(child).get("nullable")):  # else dropped
                self.check(child, item, key_path)
        for key in node.get("required", ()):
            if value.get(key) is None and "default" not in self.schema.resolve(properties.get(key, {})):
                self.problems.add(path + (key,), "missing (required)")
        _count(self.problems, path, len(value), node, "minProperties", "maxProperties", "keys")

    def _list(self, node: Schema, value: list[Any], path: Path) -> None:
        for index, item in enumerate(value):
            if "items" in node:
                self.check(node["items"], item, path + (str(index),))
        _count(self.problems, path, len(value), node, "minItems", "maxItems", "items")
        kind = node.get("x-kubernetes-list-type")
        if kind not in ("map", "set"):
            return
        items = self.schema.resolve(node.get("items", {}))
        names = node.get("x-kubernetes-list-map-keys", ())
        seen: dict[Any, int] = {}
        for index, item in enumerate(value):
            if kind == "set":
                key: Any = (type(item), yaml_scalar(item)) if _is_scalar(item) else None
                what = show(item)
            elif isinstance(item, dict):
                fields = [(name, item.get(name, self.schema.resolve(items.get("properties", {}).get(name, {}))
                                         .get("default"))) for name in names]
                key = tuple((name, repr(field)) for name, field in fields)
                what = ", ".join(f"{name} {show(field)}" for name, field in fields)
            else:
                key = None
            if key is None:
                continue
            if key in seen:  # placed at the item's first key: a list item has no line of its own
                first = tuple(name for name in names[:1] if isinstance(item, dict) and name in item)
                self.problems.add(path + (str(index),) + first, f"duplicate entry: {what} is item {seen[key]} too")
            else:
                seen[key] = index

    def _scalar(self, node: Schema, value: Any, path: Path) -> None:
        enum = node.get("enum")
        if enum is not None and value not in enum:
            self.problems.add(path, f"expected one of {', '.join(repr(v) for v in enum)}, got {show(value)}"
                              + suggest(str(value), [str(v) for v in enum]))
            return
        if isinstance(value, str):
            self._string(node, value, path)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self._number(node, value, path)

    def _string(self, node: Schema, value: str, path: Path) -> None:
        if "maxLength" in node and len(value) > node["maxLength"]:
            self.problems.add(path, f"{len(value)} characters, more than the {node['maxLength']} allowed")
        if "minLength" in node and len(value) < node["minLength"]:
            self.problems.add(path, f"expected at least {node['minLength']} characters, got {show(value)}")
        pattern = node.get("pattern")
        if pattern is not None and re.search(pattern, value) is None:
            if pattern == QUANTITY_PATTERN:
                self.problems.add(path, f"expected a quantity such as 2, 500m or 16Gi, got {show(value)}")
            else:
                self.problems.add(path, f"{show(value)} does not match the pattern {pattern}")

    def _number(self, node: Schema, value: int | float, path: Path) -> None:
        bound = _INT_RANGES.get(node.get("format", ""))
        if bound is not None and not -bound <= value < bound:
            self.problems.add(path, f"{value} does not fit in an {node['format']}")
        low, high = node.get("minimum"), node.get("maximum")
        if low is not None and (value < low or (node.get("exclusiveMinimum") and value == low)):
            self.problems.add(path, f"expected {'more than' if node.get('exclusiveMinimum') else 'at least'} "
                              f"{low}, got {show(value)}")
        if high is not None and (value > high or (node.get("exclusiveMaximum") and value == high)):
            self.problems.add(path, f"expected {'less than' if node.get('exclusiveMaximum') else 'at most'} "
                              f"{high}, got {show(value)}")


@functools.lru_cache(maxsize=None)
def _compiled(rule: str) -> Callable[[Any], bool] | None:
    try:
        return compile_rule(rule)
    except UnsupportedRule:  # tests/launch/test_kuberay.py keeps the shipped rules within what is understood
        return None


def _has_type(node: Schema, value: Any) -> bool:
    if node.get("x-kubernetes-int-or-string"):
        return isinstance(value, str) or _is_integer(value)
    kind = node.get("type")
    if kind is None:
        return bool(node.get("x-kubernetes-preserve-unknown-fields"))
    return {"object": isinstance(value, dict), "array": isinstance(value, list), "string": isinstance(value, str),
            "integer": _is_integer(value), "boolean": isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool)}.get(kind, False)


def _expected(node: Schema) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "an integer or a string"
    return _TYPE_NAMES.get(node.get("type", ""), "any value")


def _takes_string(node: Schema) -> bool:
    return bool(node.get("x-kubernetes-int-or-string")) or node.get("type") == "string"


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float, str))


def _count(problems: Problems, path: Path, size: int, node: Schema, low_key: str, high_key: str, what: str) -> None:
    low, high = node.get(low_key), node.get(high_key)
    if low is not None and size < low:
        problems.add(path, f"expected at least {low} {what}, got {size}")
    if high is not None and size > high:
        problems.add(path, f"expected at most {high} {what}, got {size}")
