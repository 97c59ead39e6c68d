"""What a model is trained to do: its loss and the metrics reported beside it."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.nn import functional as F

from skate.data.base import PAD

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


def reconstruction(outputs: Any, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """An autoencoder's loss: its reconstruction's mean squared error against the inputs ("mse"),
    or the model's own ``loss/reconstruction``, plus its other ``loss/*`` terms; ``metric/*``
    values are reported as they are (see :mod:`skate.models.autoencoder_nets`)."""
    if isinstance(outputs, torch.Tensor):
        outputs = {"reconstruction": outputs}
    mse = F.mse_loss(outputs["reconstruction"], inputs, reduction="none").flatten(1).mean(dim=1)
    values = {"mse": mse}
    terms = {name.removeprefix("loss/"): v for name, v in outputs.items() if name.startswith("loss/")}
    values["loss"] = terms.get("reconstruction", mse) + sum(v for name, v in terms.items() if name != "reconstruction")
    values.update({f"{name}_loss": v for name, v in terms.items()})
    values.update({name.removeprefix("metric/"): v for name, v in outputs.items() if name.startswith("metric/")})
    return values


def pretraining(outputs: Any, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """A classifier with an unsupervised pretraining phase: reconstruction while its encoder
    pretrains (the model returns a dict), classification after and in every evaluation."""
    if isinstance(outputs, dict):
        return reconstruction(outputs, inputs, targets)
    return classification(outputs, inputs, targets)


def sequence(logits: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Token logits ``(batch, time, vocab)`` against target ids ``(batch, time)`` (any dtype), per
    example over its non-PAD tokens: mean cross-entropy ("loss"), the share predicted right
    ("token_accuracy") and whether all are right ("exact_match")."""
    targets = targets.long()
    mask = targets != PAD
    counts = mask.sum(dim=1).clamp(min=1)
    cross_entropy = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD, reduction="none")
    right = (logits.argmax(dim=-1) == targets) & mask
    return {
        "loss": cross_entropy.sum(dim=1) / counts,
        "token_accuracy": right.sum(dim=1) / counts,
        "exact_match": (right == mask).all(dim=1).float(),
    }


OBJECTIVES: dict[str, Objective] = {"classification": classification, "regression": regression, "sequence": sequence,
                                   "reconstruction": reconstruction, "pretraining": pretraining}

