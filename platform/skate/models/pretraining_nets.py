"""The classifier that :class:`skate.models.pretraining.PretrainedClassifierConfig` builds: an
autoencoder's encoder, pretrained without labels in the same run, under a dense layer of logits."""

from __future__ import annotations

import torch
from torch import nn

from skate.models.autoencoder_nets import StackedAutoencoder


class PretrainedClassifier(nn.Module):
    """An autoencoder's encoder under a dense layer of logits.

    While ``pretraining`` (the first ``pretrain_epochs`` epochs), training steps run the autoencoder
    and return its reconstruction outputs; afterwards, and in every evaluation, the forward gives
    class logits. A frozen encoder gets no gradient in the classification phase, which trains on
    the labels of :meth:`train_fraction` of the training rows.
    """

    unused_parameters = True  # each phase leaves the other phase's layers out of the graph

    def __init__(self, *, autoencoder: StackedAutoencoder, num_classes: int, pretrain_epochs: int,
                 freeze_encoder: bool, labelled_fraction: float) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        self.logits = nn.Linear(autoencoder.encoders[-1].out_features, num_classes)
        self.pretrain_epochs, self.freeze_encoder = pretrain_epochs, freeze_encoder
        self.pretraining = pretrain_epochs > 0
        self.labelled_fraction = labelled_fraction

    def train_fraction(self) -> float:
        """The share of the training rows this epoch's steps draw from (see
        :meth:`skate.engines.replica.Replica.batches`): all while pretraining, the labelled ones after."""
        return 1.0 if self.pretraining else self.labelled_fraction

    def set_epoch(self, epoch: int) -> None:
        self.pretraining = epoch <= self.pretrain_epochs  # epochs count from 1
        self.autoencoder.set_epoch(epoch)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        if self.training and self.pretraining:
            return self.autoencoder(x)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_encoder):
            codings = self.autoencoder.encode(x.flatten(1))
        return self.logits(codings)
