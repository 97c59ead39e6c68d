"""YAML in and out: safe parsing that remembers the line of every key, and ``--set`` overrides.

Differences from plain ``yaml.safe_load``, each one a trap users fall into:
a duplicated key is an error instead of silently keeping the last one, and ``1e-3`` is a number
(YAML 1.2) instead of the string YAML 1.1 makes of it.
"""

from __future__ import annotations

import re
from pathlib import Path as FilePath
from typing import Any

import yaml

from skate.errors import SpecError
from skate.config.loader import Locator, Path, dotted


class _Loader(yaml.SafeLoader):
    pass


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _first in "-+0123456789.":
    _Loader.yaml_implicit_resolvers[_first] = [
        (tag, regexp) for tag, regexp in _Loader.yaml_implicit_resolvers.get(_first, [])
        if tag != "tag:yaml.org,2002:float"
    ]
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _mark(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    return f":{mark.line + 1}" if mark is not None else ""


def parse_yaml(text: str, *, source: str) -> tuple[Any, Locator]:
    """Parse one YAML document into plain data and the line of each key.

    Raises:
        SpecError: for malformed YAML or a duplicated key, with the line.
    """
    locator = Locator(source=source)
    loader = None
    try:
        loader = _Loader(text)  # its reader refuses control characters such as NUL
        node = loader.get_single_node()
        data = _Builder(loader, locator).build(node, ()) if node is not None else None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error)
        raise SpecError([f"{source}{_mark(error)}: malformed YAML: {problem}"]) from error
    except RecursionError as error:  # the YAML composer recurses once per level of nesting
        raise SpecError([f"{source}: malformed YAML: nested more than {MAX_DEPTH} levels deep"]) from error
    finally:
        if loader is not None:
            loader.dispose()
    return data, locator


MAX_NODES = 100_000  # a spec is small; more nodes means aliases multiplying (a "billion laughs")
MAX_DEPTH = 64  # a spec is a few levels deep; far more is an attack on the recursion limit


class _Builder:
    """Turns a composed YAML node tree into plain data, noting the line of every key."""

    def __init__(self, loader: _Loader, locator: Locator) -> None:
        self.loader = loader
        self.locator = locator
        self.budget = MAX_NODES

    def fail(self, node: yaml.Node, path: Path, message: str) -> SpecError:
        return SpecError([f"{self.locator.source}:{node.start_mark.line + 1}: {dotted(path)}: {message}"])

    def build(self, node: yaml.Node, path: Path, parents: tuple[int, ...] = ()) -> Any:
        if id(node) in parents:
            raise self.fail(node, path, "an alias refers to itself")
        self.budget -= 1
        if len(path) > MAX_DEPTH:
            raise self.fail(node, path[:MAX_DEPTH], f"nested more than {MAX_DEPTH} levels deep")
        if self.budget < 0:
            raise self.fail(node, path, f"the document expands to more than {MAX_NODES} values (aliases?)")
        parents += (id(node),)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, parents)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (str(i),), parents) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: Path) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception as error:  # whatever a constructor raises on a malformed scalar ("!!int", "!!int x")
            raise self.fail(node, path, f"{node.tag.rsplit(':', 1)[-1]} value {node.value!r} cannot be read: "
                                        f"{error}") from error

    def _mapping(self, node: yaml.MappingNode, path: Path, parents: tuple[int, ...]) -> dict[Any, Any]:
        explicit = len(node.value) - sum(1 for k, _ in node.value if k.tag == "tag:yaml.org,2002:merge")
        self.loader.flatten_mapping(node)  # merged pairs come first; the keys written here override them
        merged = len(node.value) - explicit
        out: dict[Any, Any] = {}
        written: set[Any] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self._scalar(key_node, path)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise self.fail(key_node, path, "a key must be a name")
            key_path = path + (str(key),)
            if index >= merged:
                if key in written:
                    raise self.fail(key_node, key_path, "duplicated key")
                written.add(key)
            self.locator.lines[key_path] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, key_path, parents)
        return out


def read_yaml(path: str | FilePath) -> tuple[Any, Locator]:
    """Read and parse a YAML file; a missing or unreadable file is a SpecError naming it."""
    return parse_yaml(read_text(path), source=str(path))


def read_text(path: str | FilePath) -> str:
    """A text file's content; a missing or unreadable file is a SpecError naming it."""
    try:
        return FilePath(path).read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise SpecError([f"{path}: no such file"]) from error
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError([f"{path}: cannot read: {error}"]) from error


def apply_overrides(data: dict[str, Any], overrides: list[str], locator: Locator) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``dotted.key=value`` set (the value parsed as YAML).

    Raises:
        SpecError: for an override that is not ``KEY=VALUE`` or that descends into a non-mapping.
    """
    out = copy_data(data)
    problems = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        path = split_key(key)
        if not sep or not path or not all(path):
            problems.append(f"--set {item}: expected KEY=VALUE with a dotted key, e.g. train.epochs=3 (a part with "
                            f'dots in double quotes: search.space."train.optimizer.lr".max=0.1)')
            continue
        try:
            value = yaml.load(raw, Loader=_Loader) if raw.strip() else ""
        except yaml.YAMLError as error:
            problems.append(f"--set {key}: cannot parse value {raw!r}: {getattr(error, 'problem', error)}")
            continue
        node = out
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(f"--set {key}: {dotted(path[:depth + 1])} is not a mapping")
                break
            node = child
        else:
            if path[-1] in node and path not in locator.replaced:
                locator.replaced[path] = node[path[-1]]
            node[path[-1]] = value
            locator.overrides.add(path)
    if problems:
        raise SpecError(problems)
    return out


def split_key(key: str) -> Path:
    """The parts of a dotted ``--set`` key; a part in double quotes may hold dots
    (``search.space."train.optimizer.lr".high``). Empty when the quotes do not close."""
    parts = re.findall(r'"([^"]*)"|([^."]+)|(\.)', key.strip())
    path: list[str] = []
    expect_part = True
    for quoted, plain, dot in parts:
        if dot:
            if expect_part:
                return ()
            expect_part = True
            continue
        if not expect_part:
            return ()
        path.append(quoted if quoted else plain.strip())
        expect_part = False
    return () if expect_part or key.count('"') % 2 else tuple(path)


def copy_data(data: Any) -> Any:
    """A deep copy of plain spec data (mappings, lists, scalars)."""
    if isinstance(data, dict):
        return {k: copy_data(v) for k, v in data.items()}
    if isinstance(data, list):
        return [copy_data(v) for v in data]
    return data


class _Dumper(yaml.SafeDumper):
    pass


# The dumper quotes a string exactly when the loader would read it as something else.
_Dumper.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


def dump_yaml(data: Any) -> str:
    """Plain data as block-style YAML, keys in their given order; reading it back gives ``data``."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
