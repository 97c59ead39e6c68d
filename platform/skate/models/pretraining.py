"""Unsupervised pretraining (Hands-On ML, chapter 15): a classifier that reuses a trained encoder.

The job first trains a stacked autoencoder on the inputs alone (labels unused) for
``pretrain_epochs``, then trains a classifier on the encoder's codings, with the encoder frozen or
fine-tuned, on the labels of ``labelled_fraction`` of the training rows (the rest stay unlabelled, as in
the seed's Exercise 8, which keeps 10%). Both phases are one run, so every engine trains it unchanged. The module it builds is
in :mod:`skate.models.pretraining_nets`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from skate.config.fields import param
from skate.data.base import DataConfig, DatasetInfo
from skate.models.autoencoders import DenseAutoencoderConfig
from skate.models.base import MODELS

if TYPE_CHECKING:
    from torch import nn


@MODELS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class PretrainedClassifierConfig(DenseAutoencoderConfig):
    """Classifier on the codings of a stacked autoencoder pretrained without labels in the same run."""

    kind: str = "pretrained_classifier"
    objective: ClassVar[str] = "pretraining"
    pretrain_epochs: int = param(10, doc="epochs that train the autoencoder (unsupervised) before the classifier", ge=0)
    freeze_encoder: bool = param(True, doc="keep the pretrained encoder fixed while the classifier trains")
    labelled_fraction: float = param(
        1.0, doc="the share of the training split whose labels the classifier trains on (a fixed, seeded subset; "
                 "pretraining reads every training image): the seed's case of many images and few labels", gt=0, le=1)

    def data_problem(self, data: DataConfig) -> str | None:
        if self.labelled_fraction < 1 and getattr(data, "loading", "memory") == "stream":
            return "model.labelled_fraction < 1 draws its labelled rows from data held in memory; set data.loading: memory"
        return super().data_problem(data)

    def phase_starts(self) -> tuple[int, ...]:
        pretraining = tuple(epoch for epoch in super().phase_starts() if epoch <= self.pretrain_epochs)
        return pretraining + ((self.pretrain_epochs + 1,) if self.pretrain_epochs else ())

    def fit_problem(self, info: DatasetInfo) -> str | None:
        if info.num_classes is None:
            return "pretrained_classifier needs labelled classes; the data source has none"
        return super().fit_problem(info)

    def build(self, info: DatasetInfo) -> nn.Module:
        from skate.models.pretraining_nets import PretrainedClassifier

        self.check_fit(info)
        assert info.num_classes is not None
        return PretrainedClassifier(autoencoder=self.autoencoder(info), num_classes=info.num_classes,
                                    pretrain_epochs=self.pretrain_epochs, freeze_encoder=self.freeze_encoder,
                                    labelled_fraction=self.labelled_fraction)
