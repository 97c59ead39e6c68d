"""A small CNN on images, as a skate plugin: ``model: {kind: digits_cnn, channels: 16}``.

skate finds it through the ``skate.models`` entry point in this package's pyproject.toml; the spec's
keys are checked against :class:`DigitsCNNConfig`'s fields like any built-in model's.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from skate.config.fields import param
from skate.data.base import DatasetInfo
from skate.models.base import ModelConfig


@dataclasses.dataclass(frozen=True, kw_only=True)
class DigitsCNNConfig(ModelConfig):
    """Two 3x3 convolutions (the second with twice the channels), max pooling, a dense layer, logits."""

    kind: str = "digits_cnn"
    channels: int = param(16, doc="filters of the first convolution", gt=0)
    hidden: int = param(64, doc="units of the dense layer", gt=0)
    dropout: float = param(0.0, doc="dropout before the logits, in training only", ge=0, lt=1)

    def build(self, info: DatasetInfo) -> nn.Module:
        if len(info.x_shape) != 2 or info.num_classes is None:
            raise ValueError(f"digits_cnn needs images (height, width) with classes; the data gives shape "
                             f"{info.x_shape}")
        height, width = info.x_shape
        c = self.channels
        return nn.Sequential(
            nn.Unflatten(1, (1, height)),  # (batch, H, W) -> (batch, 1, H, W)
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * c * (height // 2) * (width // 2), self.hidden), nn.ReLU(),
            nn.Dropout(self.dropout), nn.Linear(self.hidden, info.num_classes))
