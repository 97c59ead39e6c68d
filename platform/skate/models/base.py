"""Models: each names itself in a spec (``model: {kind: rnn_classifier, ...}``) and builds a module.

A config knows without torch what the gate asks of it (whether it fits the data, what it reports);
only ``build`` imports torch, and the module it builds.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar, Literal

from skate.data.base import DataConfig, DatasetInfo
from skate.config.fields import Variants, param
from skate.reported import REPORTED

if TYPE_CHECKING:
    from torch import nn


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """A model, chosen by ``kind``; its other fields are the model's hyperparameters."""

    variants: ClassVar[Variants["ModelConfig"]]
    objective: ClassVar[str] = "classification"
    kind: str = param(doc="the model, by its registered name")
    init: Literal["default", "he", "glorot"] = param(
        "default", doc="weight initialisation: default (PyTorch's), he (TF1's variance_scaling_initializer(), which the "
                       "seed uses) or glorot (Glorot uniform, TF1's default); he and glorot zero the biases")

    def build(self, info: DatasetInfo) -> nn.Module:
        """A freshly initialised module for data described by ``info``, as PyTorch initialises it."""
        raise NotImplementedError

    def create(self, info: DatasetInfo) -> nn.Module:
        """:meth:`build`'s module initialised as ``init`` says (see :mod:`skate.models.init`): what
        every engine trains."""
        from skate.models.init import initialise

        module = self.build(info)
        initialise(module, self.init)
        return module

    def fit_problem(self, info: DatasetInfo) -> str | None:
        """Why this model cannot learn from data described by ``info`` (one line naming what to
        change), or ``None``. Known without torch: the gate asks it before anything starts."""
        return None

    def data_problem(self, data: DataConfig) -> str | None:
        """Why this model cannot learn from the data as ``data`` configures it, beyond the shapes
        :meth:`fit_problem` checks (a VAE's pixels must lie in [0, 1]); ``None`` if nothing."""
        return None

    def check_fit(self, info: DatasetInfo) -> None:
        """Raise ``ValueError`` with :meth:`fit_problem`'s reason, if any."""
        problem = self.fit_problem(info)
        if problem is not None:
            raise ValueError(problem)

    def reported_metrics(self) -> tuple[str, ...] | None:
        """The names of the metrics the model reports (each as ``train/<name>`` and ``val/<name>``):
        its objective's, plus any of its own; ``None`` when its objective did not declare them."""
        return REPORTED.get(self.objective)

    def phase_starts(self) -> tuple[int, ...]:
        """Epochs (counted from 1) where a model that trains in phases starts a new one; every
        engine starts each phase with a fresh optimizer state, as the book gives each phase its
        own optimizer (so a layer a phase leaves out stays exactly where it is)."""
        return ()


ModelConfig.variants = Variants("model")
MODELS = ModelConfig.variants
