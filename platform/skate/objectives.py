"""What a model is trained to do: its loss and the metrics reported beside it."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.nn import functional as F

# Maps (model outputs, inputs, targets) to per-example values by metric name; "loss" is the one minimised.
Objective = Callable[[Any, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def classification(logits: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Cross-entropy loss and accuracy, per example."""
    return {
        "loss": F.cross_entropy(logits, targets, reduction="none"),
        "accuracy": (logits.argmax(dim=-1) == targets).float(),
    }


def regression(outputs: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean squared error, per example; for sequences also the error of the last step alone."""
    squared = F.mse_loss(outputs, targets, reduction="none")
    values = {"loss": squared.flatten(1).mean(dim=1)}
    if squared.dim() >= 3:  # (batch, time, values)
        values["last_step_mse"] = squared[:, -1].flatten(1).mean(dim=1)
    return values


OBJECTIVES: dict[str, Objective] = {"classification": classification, "regression": regression}

# The validation metric that picks the best checkpoint, and whether higher is better.
BEST_METRIC: dict[str, tuple[str, str]] = {
    "classification": ("val/accuracy", "max"),
    "regression": ("val/loss", "min"),
}
