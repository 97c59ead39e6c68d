"""What every engine offers the driver, and what the driver hands every engine.

An engine trains a run of steps of an epoch at a time when asked (a whole epoch, or the segment
up to the next step checkpoint) and can evaluate, save and restore its state; the driver
(:mod:`skate.trainer`) owns the loop, the metrics, the checkpoints and the run directory.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

import ray
from ray import ObjectRef

from skate.data.base import DatasetInfo, info_of
from skate.data.stream import StreamSource
from skate.engines.faults import EngineLost
from skate.engines.optim import OptimizerConfig
from skate.engines.precision import Precision
from skate.models.base import ModelConfig
from skate.objectives import OBJECTIVES, Objective

Metrics = dict[str, float]


@dataclasses.dataclass(frozen=True)
class Workload:
    """Everything an engine needs to train a model; the data are Arrow tables in Ray's object store.

    Args:
        model: the model to build on each replica.
        optimizer: the update rule.
        batch_size: examples per gradient step (per worker for data-parallel engines).
        seed: seeds model initialisation and the order of examples.
        tables: ``train``, ``validation`` and ``test`` tables, as object references (none when the
            data stream).
        stream: a Parquet data set each replica reads its own shard of (see :mod:`skate.data.stream`).
        objective: the loss and metrics; default: the one the model names, looked up here in the driver
            (so an objective registered in this process, even in a notebook, travels to the workers).
        clip_norm, clip_value: gradient clipping of every step (see :func:`skate.engines.replica.clip`).
        epochs: the run's length, over which the learning-rate schedule runs.
        precision: the forward pass's float format (see :mod:`skate.engines.precision`).
        refuse_grad_norm: gradients longer than this are refused (see :mod:`skate.engines.guard`).
    """

    model: ModelConfig
    optimizer: OptimizerConfig
    batch_size: int
    seed: int
    tables: dict[str, ObjectRef]
    objective: Objective | None = None
    stream: StreamSource | None = None
    clip_norm: float | None = None
    clip_value: float | None = None
    epochs: int = 1
    precision: Precision = "fp32"
    refuse_grad_norm: float | None = None

    def __post_init__(self) -> None:
        if self.objective is None:
            object.__setattr__(self, "objective", OBJECTIVES[self.model.objective])

    def new_phase(self, epoch: int, start: int) -> bool:
        """Whether steps from ``start`` of ``epoch`` begin a phase of the model (see
        :meth:`ModelConfig.phase_starts`): the optimizer state starts afresh there."""
        return start == 0 and epoch in self.model.phase_starts()

    def info(self) -> DatasetInfo:
        """The shapes and class count of the examples."""
        return self.stream.info if self.stream is not None else info_of(ray.get(self.tables["train"]))

    def steps_per_epoch(self, num_replicas: int = 1) -> int:
        """Gradient steps in an epoch when ``num_replicas`` replicas each take ``batch_size`` examples a step."""
        if self.stream is not None:
            return self.stream.steps_per_epoch(self.batch_size, num_replicas)
        num_train = ray.get(self.tables["train"]).num_rows
        return -(-num_train // (self.batch_size * num_replicas))


class Engine(abc.ABC):
    """One way of training a :class:`Workload` on Ray."""

    steps_per_epoch: int
    """Gradient steps in one epoch (the same on every worker of a data-parallel engine)."""

    @abc.abstractmethod
    def train_steps(self, epoch: int, start: int, stop: int) -> Metrics:
        """Run steps ``start`` to ``stop - 1`` of ``epoch``; returns ``train/*`` and ``perf/*``
        metrics of those steps (:func:`combine` merges the segments of an epoch)."""

    def train_epoch(self, epoch: int) -> Metrics:
        """Run one whole pass over the training data."""
        return self.train_steps(epoch, 0, self.steps_per_epoch)

    @abc.abstractmethod
    def finish_pending(self, timeout_s: float) -> Metrics | None:
        """After an interrupted :meth:`train_steps`: wait for the steps in flight and return their
        metrics (``None`` if none were in flight), so the state and the metrics agree."""

    def take_events(self) -> list[dict[str, Any]]:
        """Fault events since the last call (an actor died, was replaced, state was rolled back)."""
        return []

    @abc.abstractmethod
    def evaluate(self, split: str) -> Metrics:
        """Per-example means of the objective's metrics over a split, unprefixed (``loss``, ...)."""

    @abc.abstractmethod
    def state(self) -> dict[str, Any]:
        """Model and optimizer state, as tensors and plain values (safe to ``torch.save``)."""

    @abc.abstractmethod
    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state`."""

    @abc.abstractmethod
    def load_weights(self, weights: dict[str, Any]) -> None:
        """Replace the model's weights only (used to evaluate the best checkpoint)."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Release the engine's actors."""


SUMMED = ("perf/epoch_s", "perf/epoch_samples", "ps/dropped_gradients", "guard/refused_gradients", "data/wait_s",
          "data/rows")
"""Metrics that are totals over a segment; an epoch's is the sum over its segments."""


def combine(parts: list[Metrics]) -> Metrics:
    """An epoch's metrics from those of its segments: totals (:data:`SUMMED`) add up, running totals
    (``faults/*``) keep their last value, throughput is recomputed, and every other metric (a
    per-example or per-step mean) is weighted by its segment's examples."""
    if len(parts) == 1:
        return _rates(dict(parts[0]))
    weights = [part.get("perf/epoch_samples", 0.0) for part in parts]
    total = sum(weights)
    merged: Metrics = {}
    for name in dict.fromkeys(name for part in parts for name in part):
        values = [(part[name], w) for part, w in zip(parts, weights) if name in part]
        if name in SUMMED:
            merged[name] = sum(v for v, _ in values)
        elif name.startswith("faults/"):
            merged[name] = values[-1][0]
        else:
            weight = sum(w for _, w in values)
            merged[name] = sum(v * w for v, w in values) / weight if weight else values[-1][0]
    if "perf/samples_per_s" in merged:
        merged["perf/samples_per_s"] = total / max(merged.get("perf/epoch_s", 0.0), 1e-9)
    return _rates(merged)


def _rates(metrics: Metrics) -> Metrics:
    """``data/rows_per_s``: the rows a stream gave the workers over the epoch's time (where it streamed)."""
    if "data/rows" in metrics:
        metrics["data/rows_per_s"] = metrics["data/rows"] / max(metrics.get("perf/epoch_s", 0.0), 1e-9)
    return metrics
