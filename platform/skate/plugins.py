"""Plugins: a user's models, data sources, RL environments and objectives (losses), under names a spec
can use. A spec only ever names what is registered; it never names a module to import.

Register in code::

    skate.register_model(MyNetConfig)          # a ModelConfig subclass; its ``kind`` is its name

or from an installed package, through entry points in its ``pyproject.toml``::

    [project.entry-points."skate.models"]
    my_net = "my_package:MyNetConfig"

Groups: ``skate.models`` (ModelConfig subclasses), ``skate.data`` (DataConfig subclasses),
``skate.envs`` (a factory ``env_config -> gymnasium.Env``), ``skate.objectives`` (a
:class:`PluginObjective`). Entry points load the first time a spec is loaded or the registry is listed.
"""

from __future__ import annotations

import dataclasses
import warnings
from importlib import metadata
from typing import TYPE_CHECKING, Any, Callable

from skate.data.base import DATA_SOURCES, DataConfig
from skate.errors import SkateError
from skate.models.base import MODELS, ModelConfig
from skate.reported import BEST_METRIC, REPORTED

if TYPE_CHECKING:
    from skate.objectives import Objective

GROUPS = {"skate.models": "model", "skate.data": "data source", "skate.envs": "environment",
          "skate.objectives": "objective"}
"""Entry-point groups and what each registers."""

BUILT_IN = "skate"


@dataclasses.dataclass(frozen=True)
class PluginObjective:
    """An objective a plugin adds: the function computing per-example metrics (``loss`` among them) from
    ``(outputs, inputs, targets)``, and the validation metric that picks a run's best checkpoint."""

    function: Objective
    best_metric: str = "val/loss"
    best_mode: str = "min"
    metrics: tuple[str, ...] | None = None
    """The names of the metrics it reports (``loss`` among them), so that ``skate validate`` can
    check a spec's metric names; ``None``: not declared, and not checked."""


@dataclasses.dataclass(frozen=True)
class Registered:
    """One registered name: what it is, its name and where it came from."""

    family: str
    name: str
    origin: str


_ORIGINS: dict[tuple[str, str], str] = {}
_loaded = False


def register_model(config: type[ModelConfig], *, origin: str | None = None) -> type[ModelConfig]:
    """Make ``config`` (a frozen, keyword-only dataclass subclassing :class:`ModelConfig`, whose ``kind``
    field defaults to its name) usable as ``model: {kind: <name>, ...}``; the spec's other keys are checked
    against its fields. Usable as a class decorator.

    Raises:
        SkateError: when it is not such a class, its objective is unknown, or its name is taken.
    """
    _check_config(config, ModelConfig, "model")
    if config.objective not in REPORTED:  # every objective's names, known without importing torch
        raise SkateError(f"model config {config.__name__}: unknown objective '{config.objective}'; "
                         f"known: {', '.join(sorted(REPORTED))} (add one with register_objective)")
    return _register(MODELS, config, origin)


def register_data_source(config: type[DataConfig], *, origin: str | None = None) -> type[DataConfig]:
    """Make ``config`` (a :class:`DataConfig` subclass whose ``source`` defaults to its name, with a
    ``load()`` returning :func:`skate.data.make_table`'s table) usable as ``data: {source: <name>}``."""
    _check_config(config, DataConfig, "data source")
    return _register(DATA_SOURCES, config, origin)


def register_env(name: str, factory: Callable[[dict[str, Any]], Any], *, origin: str | None = None) -> None:
    """Make ``rl: {env: <name>}`` build ``factory(env_config)`` (a gymnasium environment)."""
    from skate.rl.envs import SKATE_ENVS

    if not callable(factory):
        raise SkateError(f"environment '{name}': expected a factory env_config -> env, got {factory!r}")
    _claim("environment", name, origin or _origin_of(factory), taken=name in SKATE_ENVS)
    SKATE_ENVS[name] = factory


def register_objective(name: str, objective: PluginObjective | Objective, *, origin: str | None = None) -> None:
    """Make ``name`` an objective a model config can declare (``objective: ClassVar[str] = name``)."""
    from skate.objectives import OBJECTIVES

    plugin = objective if isinstance(objective, PluginObjective) else PluginObjective(objective)
    if not callable(plugin.function):
        raise SkateError(f"objective '{name}': expected a function (outputs, inputs, targets) -> metrics")
    if plugin.best_mode not in ("max", "min"):
        raise SkateError(f"objective '{name}': best_mode must be max or min, got {plugin.best_mode!r}")
    _claim("objective", name, origin or _origin_of(plugin.function), taken=name in OBJECTIVES)
    OBJECTIVES[name] = plugin.function
    BEST_METRIC[name] = (plugin.best_metric, plugin.best_mode)
    REPORTED[name] = None if plugin.metrics is None else tuple(plugin.metrics)


def load_entry_points() -> None:
    """Register what installed packages declare under skate's entry-point groups (once per process).
    A plugin that fails to load is skipped with a warning naming it."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    register = {"skate.models": _model_entry, "skate.data": _data_entry, "skate.envs": register_env,
                "skate.objectives": register_objective}
    for group in ("skate.objectives", "skate.models", "skate.data", "skate.envs"):  # objectives before models
        for entry in metadata.entry_points(group=group):
            dist = getattr(entry, "dist", None)
            origin = f"{dist.name} {dist.version}" if dist is not None else entry.value
            try:
                register[group](entry.name, entry.load(), origin=origin)
            except Exception as error:  # noqa: BLE001 - one broken plugin must not break skate
                warnings.warn(f"skate plugin {origin}: entry point {group}:{entry.name} = {entry.value} "
                              f"not registered: {error}", RuntimeWarning, stacklevel=2)


def registered() -> list[Registered]:
    """Everything a spec can name, built in or from plugins, with its origin."""
    from skate.rl.envs import SKATE_ENVS

    load_entry_points()
    found = [Registered("model", name, MODELS.origin(name)) for name in MODELS.names()]
    found += [Registered("data source", name, DATA_SOURCES.origin(name)) for name in DATA_SOURCES.names()]
    found += [Registered("environment", name, _ORIGINS.get(("environment", name), BUILT_IN)) for name in sorted(SKATE_ENVS)]
    found += [Registered("objective", name, _ORIGINS.get(("objective", name), BUILT_IN)) for name in sorted(REPORTED)]
    return found


def _model_entry(name: str, config: Any, *, origin: str) -> None:
    _check_name(name, config, "kind")
    register_model(config, origin=origin)


def _data_entry(name: str, config: Any, *, origin: str) -> None:
    _check_name(name, config, "source")
    register_data_source(config, origin=origin)


def _check_name(name: str, config: Any, key: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(config)} if dataclasses.is_dataclass(config) else {}
    declared = fields[key].default if key in fields else None
    if declared != name:
        raise SkateError(f"the entry point is named '{name}' but {getattr(config, '__name__', config)}.{key} "
                         f"defaults to {declared!r}; they must agree")


def _check_config(config: Any, base: type, family: str) -> None:
    own_dataclass = isinstance(config, type) and "__dataclass_fields__" in vars(config)  # not just inherited
    if not (own_dataclass and issubclass(config, base)):
        raise SkateError(f"a {family} plugin must be a dataclass subclassing {base.__name__} "
                         f"(@dataclasses.dataclass(frozen=True, kw_only=True)); got {config!r}")


def _register(variants: Any, config: Any, origin: str | None) -> Any:
    try:
        return variants.register(config, origin=origin or _origin_of(config))
    except (TypeError, ValueError) as error:
        raise SkateError(f"{variants.family} config {config.__name__}: {error}") from None


def _claim(family: str, name: str, origin: str, *, taken: bool) -> None:
    known = _ORIGINS.get((family, name))
    if taken and known != origin:
        raise SkateError(f"{family} '{name}' is already registered by {known or BUILT_IN}")
    _ORIGINS[(family, name)] = origin


def _origin_of(thing: Any) -> str:
    return f"{getattr(thing, '__module__', '?')} (registered in code)"
