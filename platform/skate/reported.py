"""What each objective reports, by name, known before anything is built: the gate
(:mod:`skate.spec.gate`) checks a spec's metric names against it without importing torch.

An objective reports each of its metrics as ``train/<name>`` and ``val/<name>`` (and ``test/<name>``
at the end of a run); a model may add names of its own (:meth:`skate.models.ModelConfig.reported_metrics`).
"""

from __future__ import annotations

REPORTED: dict[str, tuple[str, ...] | None] = {
    "classification": ("loss", "accuracy"),
    "regression": ("loss",),
    "sequence": ("loss", "token_accuracy", "exact_match"),
    "reconstruction": ("loss", "mse"),
    "pretraining": ("loss", "accuracy", "mse"),
}
"""The metrics of each objective; ``None`` for a plugin's objective that did not declare its own."""

BEST_METRIC: dict[str, tuple[str, str]] = {
    "classification": ("val/accuracy", "max"),
    "regression": ("val/loss", "min"),
    "sequence": ("val/exact_match", "max"),
    "reconstruction": ("val/loss", "min"),
    "pretraining": ("val/accuracy", "max"),
}
"""The validation metric that picks the best checkpoint of each objective, and whether higher is better."""
