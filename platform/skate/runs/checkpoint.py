"""Checkpoints: resumable states ``ckpt-<step>.pt`` (the last few kept) and ``best.pt``.

They live in the run directory's ``checkpoints/`` or under any pyarrow filesystem URI. Files are
written atomically, and ``manifest.json`` beside them holds each one's size and SHA-256, written
after the file. Reading checks both, then loads with ``torch.load(weights_only=True)``, which cannot
run code, so a checkpoint from elsewhere cannot take the process over. A truncated or altered
checkpoint is refused with the reason, and :meth:`Checkpointer.latest` falls back to the one before
it. A file the manifest does not list (the run died between the two writes; a run from before
manifests) is trusted only as far as it loads.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import torch

from skate.errors import SkateError
from skate.runs.storage import Folder

_RESUMABLE = re.compile(r"^ckpt-(\d+)\.pt$")
BEST = "best.pt"
MANIFEST = "manifest.json"


class CorruptCheckpoint(SkateError):
    """A checkpoint whose bytes are not those written, or that cannot be loaded safely."""


class Checkpointer:
    """Saves and finds the checkpoints of one run.

    Args:
        folder: where they go (a :class:`Folder`, a local path or a URI).
        keep_last: how many resumable checkpoints to keep.
    """

    def __init__(self, folder: Folder | str | Path, *, keep_last: int = 2) -> None:
        self.folder = folder if isinstance(folder, Folder) else Folder.at(folder)
        self.keep_last = keep_last
        self.rejected: list[str] = []
        """Why checkpoints were passed over by :meth:`latest` and :meth:`best` (one line each)."""

    def save(self, step: int, state: dict[str, Any]) -> str:
        """Write the resumable state reached after global ``step``; prunes the oldest beyond ``keep_last``."""
        name = f"ckpt-{step:09d}.pt"
        self._write(name, {**state, "step": step})
        for old in self.resumable()[: -self.keep_last]:
            self.delete(old)
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
        """The newest resumable state that passes its checks (the ones passed over are in
        :attr:`rejected`), or ``None`` if there is none.

        Raises:
            CorruptCheckpoint: there are checkpoints, and none of them passes.
        """
        found = self.resumable()
        for name in reversed(found):
            try:
                return self.read(name)
            except CorruptCheckpoint as error:
                self.rejected.append(str(error))
        if found:
            raise CorruptCheckpoint(f"no usable checkpoint in {self.folder.location}: " + "; ".join(self.rejected))
        return None

    def best(self) -> dict[str, Any] | None:
        """The best weights and the epoch and metric that chose them, or ``None`` (also when the
        file fails its checks: see :attr:`rejected`)."""
        if not self.folder.exists(BEST):
            return None
        try:
            return self.read(BEST)
        except CorruptCheckpoint as error:
            self.rejected.append(str(error))
            return None

    def best_location(self) -> str | None:
        return self.folder.show(BEST) if self.folder.exists(BEST) else None

    def _write(self, name: str, payload: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        self.put(name, buffer.getvalue())

    def put(self, name: str, data: bytes) -> None:
        """Write a checkpoint file's bytes, then its entry in the manifest."""
        self.folder.write_bytes(name, data)
        manifest = self.manifest()
        manifest[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        self._write_manifest(manifest)

    def delete(self, name: str) -> None:
        """Delete a checkpoint file and its manifest entry."""
        self.folder.delete(name)
        manifest = self.manifest()
        if manifest.pop(name, None) is not None:
            self._write_manifest(manifest)

    def manifest(self) -> dict[str, dict[str, Any]]:
        """Each file's size and SHA-256 as written (``{}`` when there is no readable manifest)."""
        if not self.folder.exists(MANIFEST):
            return {}
        try:
            data = json.loads(self.folder.read_bytes(MANIFEST))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_manifest(self, manifest: dict[str, dict[str, Any]]) -> None:
        self.folder.write_bytes(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())

    def read(self, name: str) -> dict[str, Any]:
        """One checkpoint by name (as :meth:`resumable` lists them, or ``best.pt``), checked.

        Raises:
            CorruptCheckpoint: its size or SHA-256 differ from the manifest's, or it does not load
                as plain tensors and values (truncated, or carrying code).
        """
        where = self.folder.show(name)
        data = self.folder.read_bytes(name)
        entry = self.manifest().get(name)
        if entry is not None:
            if len(data) != entry.get("bytes"):
                raise CorruptCheckpoint(f"{where}: {len(data)} bytes, {entry.get('bytes')} were written (truncated?)")
            if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
                raise CorruptCheckpoint(f"{where}: SHA-256 differs from the one written: the file was altered")
        try:
            return load_checkpoint(io.BytesIO(data))
        except Exception as error:  # torch raises many kinds for a bad or unsafe file
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CorruptCheckpoint(f"{where}: cannot be loaded safely: {first}") from error


def load_checkpoint(source: str | Path | io.BytesIO) -> dict[str, Any]:
    """Read a checkpoint without running any code it might carry."""
    return torch.load(source, map_location="cpu", weights_only=True)
