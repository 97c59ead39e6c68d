"""Checkpoints: resumable states ``ckpt-<step>.pt`` (the last few kept) and ``best.pt``.

They live in the run directory's ``checkpoints/`` or under any pyarrow filesystem URI. Files are
written atomically and read with ``torch.load(weights_only=True)``, which cannot run code, so a
checkpoint from elsewhere cannot take the process over.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import torch

from skate.runs.storage import Folder

_RESUMABLE = re.compile(r"^ckpt-(\d+)\.pt$")
BEST = "best.pt"


class Checkpointer:
    """Saves and finds the checkpoints of one run.

    Args:
        folder: where they go (a :class:`Folder`, a local path or a URI).
        keep_last: how many resumable checkpoints to keep.
    """

    def __init__(self, folder: Folder | str | Path, *, keep_last: int = 2) -> None:
        self.folder = folder if isinstance(folder, Folder) else Folder.at(folder)
        self.keep_last = keep_last

    def save(self, step: int, state: dict[str, Any]) -> str:
        """Write the resumable state reached after global ``step``; prunes the oldest beyond ``keep_last``."""
        name = f"ckpt-{step:09d}.pt"
        self._write(name, {**state, "step": step})
        for old in self.resumable()[: -self.keep_last]:
            self.folder.delete(old)
        return self.folder.show(name)

    def save_best(self, epoch: int, weights: dict[str, Any], *, metric: str, value: float) -> str:
        """Write the model weights that scored best on validation so far."""
        self._write(BEST, {"model": weights, "epoch": epoch, "metric": metric, "value": value})
        return self.folder.show(BEST)

    def resumable(self) -> list[str]:
        """Names of the resumable checkpoints, oldest first."""
        found = [name for name in self.folder.names() if _RESUMABLE.match(name)]
        return sorted(found, key=lambda name: int(_RESUMABLE.match(name).group(1)))  # type: ignore[union-attr]

    def latest(self) -> dict[str, Any] | None:
        """The newest resumable state, or ``None`` if there is none."""
        found = self.resumable()
        return self.read(found[-1]) if found else None

    def best(self) -> dict[str, Any] | None:
        """The best weights and the epoch and metric that chose them, or ``None``."""
        return self.read(BEST) if self.folder.exists(BEST) else None

    def best_location(self) -> str | None:
        return self.folder.show(BEST) if self.folder.exists(BEST) else None

    def _write(self, name: str, payload: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        self.folder.write_bytes(name, buffer.getvalue())

    def read(self, name: str) -> dict[str, Any]:
        """One checkpoint by name (as :meth:`resumable` lists them, or ``best.pt``)."""
        return load_checkpoint(io.BytesIO(self.folder.read_bytes(name)))


def load_checkpoint(source: str | Path | io.BytesIO) -> dict[str, Any]:
    """Read a checkpoint without running any code it might carry."""
    return torch.load(source, map_location="cpu", weights_only=True)
