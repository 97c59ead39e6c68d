"""Unsupervised pretraining (Hands-On ML, chapter 15): a classifier that reuses a trained encoder.

The job first trains a stacked autoencoder on the inputs alone (labels unused) for
``pretrain_epochs``, then trains a classifier on the encoder's codings, with the encoder frozen or
fine-tuned. Both phases are one run, so every engine trains it unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from skate.config.fields import param
from skate.data.base import DatasetInfo
from skate.models.autoencoders import DenseAutoencoderConfig, StackedAutoencoder
from skate.models.base import MODELS


class PretrainedClassifier(nn.Module):
    """An autoencoder's encoder under a dense layer of logits.

    While ``pretraining`` (the first ``pretrain_epochs`` epochs), training steps run the autoencoder
    and return its reconstruction outputs; afterwards, and in every evaluation, the forward gives
    class logits. A frozen encoder gets no gradient in the classification phase.
    """

    unused_parameters = True  # each phase leaves the other phase's layers out of the graph

    def __init__(self, *, autoencoder: StackedAutoencoder, num_classes: int, pretrain_epochs: int,
                 freeze_encoder: bool) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        self.logits = nn.Linear(autoencoder.encoders[-1].out_features, num_classes)
        self.pretrain_epochs, self.freeze_encoder = pretrain_epochs, freeze_encoder
        self.pretraining = pretrain_epochs > 0

    def set_epoch(self, epoch: int) -> None:
        self.pretraining = epoch <= self.pretrain_epochs  # epochs count from 1
        self.autoencoder.set_epoch(epoch)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        if self.training and self.pretraining:
            return self.autoencoder(x)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_encoder):
            codings = self.autoencoder.encode(x.flatten(1))
        return self.logits(codings)


@MODELS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class PretrainedClassifierConfig(DenseAutoencoderConfig):
    """Classifier on the codings of a stacked autoencoder pretrained without labels in the same run."""

    kind: str = "pretrained_classifier"
    objective: ClassVar[str] = "pretraining"
    pretrain_epochs: int = param(10, doc="epochs that train the autoencoder (unsupervised) before the classifier", ge=0)
    freeze_encoder: bool = param(True, doc="keep the pretrained encoder fixed while the classifier trains")

    def phase_starts(self) -> tuple[int, ...]:
        pretraining = tuple(epoch for epoch in super().phase_starts() if epoch <= self.pretrain_epochs)
        return pretraining + ((self.pretrain_epochs + 1,) if self.pretrain_epochs else ())

    def fit_problem(self, info: DatasetInfo) -> str | None:
        if info.num_classes is None:
            return "pretrained_classifier needs labelled classes; the data source has none"
        return super().fit_problem(info)

    def build(self, info: DatasetInfo) -> nn.Module:
        self.check_fit(info)
        assert info.num_classes is not None
        return PretrainedClassifier(autoencoder=self.autoencoder(info), num_classes=info.num_classes,
                                    pretrain_epochs=self.pretrain_epochs, freeze_encoder=self.freeze_encoder)
