"""What every engine offers the driver, and what the driver hands every engine.

An engine trains one epoch at a time when asked and can evaluate, save and restore its state;
the driver (:mod:`skate.trainer`) owns the loop, the metrics, the checkpoints and the run directory.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

from ray import ObjectRef

from skate.engines.optim import OptimizerConfig
from skate.models.base import ModelConfig
from skate.config.fields import Variants, param

Metrics = dict[str, float]


@dataclasses.dataclass(frozen=True)
class Workload:
    """Everything an engine needs to train a model; the data are Arrow tables in Ray's object store.

    Args:
        model: the model to build on each replica.
        optimizer: the update rule.
        batch_size: examples per gradient step (per worker for data-parallel engines).
        seed: seeds model initialisation and the order of examples.
        tables: ``train``, ``validation`` and ``test`` tables, as object references.
    """

    model: ModelConfig
    optimizer: OptimizerConfig
    batch_size: int
    seed: int
    tables: dict[str, ObjectRef]


class Engine(abc.ABC):
    """One way of training a :class:`Workload` on Ray."""

    @abc.abstractmethod
    def train_epoch(self, epoch: int) -> Metrics:
        """Run one pass over the training data; returns ``train/*`` and ``perf/*`` metrics."""

    @abc.abstractmethod
    def finish_pending(self, timeout_s: float) -> Metrics | None:
        """After an interrupted :meth:`train_epoch`: wait for the epoch in flight and return its
        metrics (``None`` if none was in flight), so the state and the metrics agree."""

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


@dataclasses.dataclass(frozen=True, kw_only=True)
class StrategyConfig:
    """How training is spread over Ray: the engine, chosen by ``kind``, and its settings."""

    variants: ClassVar[Variants["StrategyConfig"]]
    kind: str = param(doc="the engine: single (one worker, the reference), parameter_server or allreduce")

    def create(self, workload: Workload) -> Engine:
        """Start the engine's actors for ``workload``."""
        raise NotImplementedError

    def resources(self) -> dict[str, float]:
        """What all of the engine's actors together reserve (``CPU``, ``GPU``), with how."""
        raise NotImplementedError


StrategyConfig.variants = Variants("strategy", default="single")
STRATEGIES = StrategyConfig.variants
