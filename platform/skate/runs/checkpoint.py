"""Checkpoints: resumable states ``ckpt-<epoch>.pt`` (the last few kept) and ``best.pt``.

Files are written atomically and read with ``torch.load(weights_only=True)``, which cannot run
code, so a checkpoint from elsewhere cannot take the process over.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from skate.runs.atomic import atomic_path

_RESUMABLE = re.compile(r"^ckpt-(\d+)\.pt$")
BEST = "best.pt"


class Checkpointer:
    """Saves and finds the checkpoints of one run.

    Args:
        directory: the run's ``checkpoints/`` folder.
        keep_last: how many resumable checkpoints to keep.
    """

    def __init__(self, directory: str | Path, *, keep_last: int = 2) -> None:
        self.directory = Path(directory)
        self.keep_last = keep_last

    def save(self, epoch: int, state: dict[str, Any]) -> Path:
        """Write the resumable state reached after ``epoch``; prunes the oldest beyond ``keep_last``."""
        path = self.directory / f"ckpt-{epoch:06d}.pt"
        _save(path, {**state, "epoch": epoch})
        for old in self.resumable()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    def save_best(self, epoch: int, weights: dict[str, Any], *, metric: str, value: float) -> Path:
        """Write the model weights that scored best on validation so far."""
        path = self.directory / BEST
        _save(path, {"model": weights, "epoch": epoch, "metric": metric, "value": value})
        return path

    def resumable(self) -> list[Path]:
        """Resumable checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.iterdir() if _RESUMABLE.match(p.name)]
        return sorted(found, key=lambda p: int(_RESUMABLE.match(p.name).group(1)))  # type: ignore[union-attr]

    def latest(self) -> dict[str, Any] | None:
        """The newest resumable state, or ``None`` if there is none."""
        found = self.resumable()
        return load_checkpoint(found[-1]) if found else None

    def best(self) -> dict[str, Any] | None:
        """The best weights and the epoch and metric that chose them, or ``None``."""
        path = self.directory / BEST
        return load_checkpoint(path) if path.exists() else None


def _save(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint without running any code it might carry."""
    return torch.load(path, map_location="cpu", weights_only=True)
