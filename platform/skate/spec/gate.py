"""The gate: everything ``skate run``, ``tune`` and ``submit`` check of a spec before any work starts,
in one place, and what ``skate validate`` reports. A spec the gate admits does not fail later for a
reason the gate could have known.

Beyond the schema (:mod:`skate.config.loader`), it checks what needs the spec as a whole: the RL
environment and its actions against the algorithm; every metric name the spec picks (best checkpoint,
early stopping, the search's metric) against what the model or RL job reports; the search's
scheduler against the job's length and checkpoints; search dimensions over fields the job's other
choices leave unused; the data against the model, and the data's local files. None of it starts Ray,
and for skate's own models, data and environments none of it imports torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Iterator

from skate.config.loader import Locator, dotted, suggest
from skate.errors import SpecError

if TYPE_CHECKING:
    from skate.spec.io import AnySpec

Path = tuple[str, ...]
Problem = tuple[Path, str]
"""Where a problem is (a dotted path of the spec) and what it is."""

RL_ROLLOUT = ("episode_return_mean", "episode_return_min", "episode_return_max", "episode_len_mean", "num_episodes")
"""What an RL job reports as ``rollout/<name>`` (see :func:`skate.rl.runner.metrics_row`)."""
UNCHECKED_PREFIXES = ("perf/", "guard/", "data/", "faults/", "learner/")
"""Metrics an engine or RLlib reports whatever the model; their names are not checked."""
COUNTERS = {False: ("epoch", "step", "samples", "time_s"), True: ("iteration", "env_steps", "time_s")}
"""The counters every row of a supervised (``False``) or RL (``True``) job has."""


def admit(spec: AnySpec, locator: Locator | None = None, *, here: bool = True) -> None:
    """Refuse ``spec`` with every problem the gate finds. ``here``: the job runs on this machine
    (``False`` for ``skate submit``, whose job finds its absolute paths and GPUs on the cluster).

    Raises:
        SpecError: one ``file:line: path: message`` per problem.
    """
    found = problems(spec, here=here)
    if found:
        locator = locator or Locator()
        raise SpecError([f"{locator.where(path)}: {dotted(path)}: {message}" for path, message in found])


def problems(spec: AnySpec, *, here: bool = True) -> list[Problem]:
    """Every problem of ``spec`` the gate finds, in the order of :data:`CHECKS`."""
    return [problem for check in CHECKS for problem in check(spec, here)]


def _is_rl(spec: Any) -> bool:
    return hasattr(spec, "rl")


def _environment(spec: Any, here: bool) -> Iterator[Problem]:
    """The environment exists, its package is installed, and it offers actions the algorithm takes;
    a learner in this process has the GPU it asks for."""
    if not _is_rl(spec):
        return
    try:
        spec.rl.check_env()
    except (ValueError, ImportError) as error:
        yield ("rl", "env"), str(error)
    if here:
        try:
            spec.rl.check_devices()
        except ValueError as error:
            yield ("rl", "gpus_per_learner"), str(error).removeprefix("gpus_per_learner: ")


def reported(spec: Any) -> set[str] | None:
    """The metric names the job reports (``val/accuracy``, ``rollout/episode_return_mean`` ...), beside
    those of :data:`UNCHECKED_PREFIXES`; ``None`` when its model's objective does not declare them."""
    if _is_rl(spec):
        own = spec.rl.reported_metrics()  # a tabular algorithm's q/*; None: RLlib's rollout/*
        return {*COUNTERS[True], *(own if own is not None else (f"rollout/{name}" for name in RL_ROLLOUT))}
    names = spec.model.reported_metrics()
    if names is None:
        return None
    return {*COUNTERS[False], *(f"{split}/{name}" for split in ("train", "val") for name in names)}


def _metrics(spec: Any, here: bool) -> Iterator[Problem]:
    """Every metric the spec names is one the job reports."""
    known = reported(spec)
    if known is None:
        return
    validation = sorted(name for name in known if name.startswith("val/"))
    named: list[tuple[Path, str | None, list[str] | None]] = []
    if not _is_rl(spec):
        named.append((("checkpoint", "best_metric"), spec.checkpoint.best_metric, validation))
        stopping = spec.train.early_stopping
        named.append((("train", "early_stopping", "metric"), stopping and stopping.metric, validation))
    if spec.search is not None:
        named.append((("search", "metric"), spec.search.metric, None))
    for path, metric, choices in named:
        if metric is None or (choices is None and metric.startswith(UNCHECKED_PREFIXES)):
            continue
        allowed = choices if choices is not None else sorted(known)
        if metric not in allowed:
            what = "a validation metric" if choices is not None else "a metric"
            yield path, f"'{metric}' is not {what} this job reports{suggest(metric, allowed)}; it reports: {', '.join(allowed)}"


def schedule_problems(spec: Any) -> list[Problem]:
    """A scheduler that counts further than the job runs, or a PBT whose perturbations fall between
    the job's checkpoints (a trial exploits another through its checkpoint)."""
    search = spec.search
    if search is None:
        return []
    rl = _is_rl(spec)
    length = spec.rl.stop.iterations if rl else spec.train.epochs
    unit = "rl.stop.iterations" if rl else "train.epochs"
    found: list[Problem] = []
    max_t = getattr(search.scheduler, "max_t", None)
    if max_t is not None and max_t > length:
        found.append((("search", "scheduler", "max_t"), f"{max_t} is more than the job's {unit} ({length}): trials "
                                                        f"end at {length}; lower max_t or raise {unit}"))
    interval = getattr(search.scheduler, "perturbation_interval", None)
    every = spec.checkpoint.every_iterations if rl else spec.checkpoint.every_epochs
    if interval is not None and interval % every:
        field = "checkpoint.every_iterations" if rl else "checkpoint.every_epochs"
        found.append((("search", "scheduler", "perturbation_interval"),
                      f"{interval} is not a multiple of {field} ({every}): PBT exploits a trial through the "
                      f"checkpoint of its last perturbation; set {field} to {interval} or a divisor of it"))
    return found


def _schedule(spec: Any, here: bool) -> Iterator[Problem]:
    yield from schedule_problems(spec)


def _unused_dimensions(spec: Any, here: bool) -> Iterator[Problem]:
    """A search dimension over a field the job's other choices leave unused (``momentum`` with
    ``adam``): every trial would train alike. A dimension that also searches the deciding field
    (``model.dropout`` beside ``model.num_layers``) is fine."""
    search = spec.search
    if search is None:
        return
    mutations = getattr(search.scheduler, "mutations", None) or {}
    searched = {*search.space, *mutations}
    for section, paths in (("space", search.space), ("scheduler.mutations", mutations)):
        for path in paths:
            reason = _unused_reason(spec, path.split("."), searched)
            if reason is not None:
                yield ("search", *section.split("."), path), f"every trial would train alike: {reason}"


def _unused_reason(spec: Any, parts: list[str], searched: set[str]) -> str | None:
    node: Any = spec
    for depth, part in enumerate(parts):
        unused = getattr(node, "unused_fields", None)
        if callable(unused) and part in unused():
            reason, deciders = unused()[part]
            prefix = ".".join(parts[:depth])
            if not any(f"{prefix}.{decider}" in searched for decider in deciders):
                return f"{'.'.join(parts)} is unused ({reason})"
        node = getattr(node, part, None)
        if node is None:
            return None
    return None


def _data(spec: Any, here: bool) -> Iterator[Problem]:
    """The data's local files are there and hold what the spec names, and the model can learn from
    the data (for sources that know their shapes without loading)."""
    if _is_rl(spec):
        return
    data = spec.data
    where: Path = ("data", "path") if hasattr(data, "path") else ("data",)
    if not here and any(os.path.isabs(path) for path in data.local_paths()):
        return  # read on the cluster: its files are there, not here
    try:
        info = data.describe()
    except (ValueError, OSError) as error:
        yield where, str(error)
        info = None
    problem = spec.model.data_problem(data) or (info and spec.model.fit_problem(info))
    if problem:
        yield ("model",), problem


CHECKS: tuple[Callable[[Any, bool], Iterator[Problem]], ...] = (_environment, _data, _metrics, _schedule,
                                                                _unused_dimensions)
"""Every check of the gate, in the order its problems are reported."""
