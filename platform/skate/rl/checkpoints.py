"""RL checkpoints: ``checkpoints/iter-<n>/``, RLlib's algorithm state with skate's beside it.

Each is written into ``iter-<n>.tmp/`` and renamed into place once whole. ``manifest.json`` holds
every file's size and SHA-256, signed with this user's checkpoint key (:mod:`skate.runs.signing`);
``skate.json`` (the iteration's metrics row), written last, marks the checkpoint complete.

RLlib's state files are pickles, which can run code when loaded. So before RLlib reads a checkpoint,
its manifest's signature and every file are checked: a checkpoint signed with another key (from
someone else), or with a truncated, altered, added or missing file, is refused with the reason, and
:meth:`Checkpoints.latest` falls back to the one before it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skate.runs.checkpoint import CorruptCheckpoint
from skate.runs.events import EventLog
from skate.runs.signing import KEY_ENV, sign, signed_by_us

if TYPE_CHECKING:
    from skate.progress import Progress
    from skate.runs.rundir import RunDir

PROGRESS = "skate.json"
MANIFEST = "manifest.json"
_OURS = (PROGRESS, MANIFEST)


class Checkpoints:
    """The RL checkpoints of one run, the last ``keep_last`` kept."""

    def __init__(self, folder: Path, *, keep_last: int) -> None:
        self.folder, self.keep_last = folder, keep_last
        self.rejected: list[str] = []
        """Why checkpoints were passed over by :meth:`latest` (one line each)."""

    def all(self) -> list[Path]:
        """Complete checkpoints (not yet checked), oldest first."""
        found = [p for p in self.folder.glob("iter-*") if p.is_dir() and (p / PROGRESS).exists()]
        return sorted(found, key=lambda p: int(p.name.removeprefix("iter-")))

    def save(self, algo: Any, row: dict[str, float]) -> Path:
        """Write ``algo``'s state after the iteration of ``row``; prunes the oldest beyond ``keep_last``."""
        path = self.folder / f"iter-{int(row['iteration']):06d}"
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        algo.save_to_path(str(tmp.resolve()))
        seal(tmp, row)
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
        for old in self.all()[: -self.keep_last]:
            shutil.rmtree(old, ignore_errors=True)
        return path

    def latest(self) -> tuple[Path, dict[str, float]] | None:
        """The newest checkpoint that passes its checks, and its metrics row (the ones passed over are
        in :attr:`rejected`); ``None`` if there is none.

        Raises:
            CorruptCheckpoint: there are checkpoints, and none of them passes.
        """
        found = self.all()
        for path in reversed(found):
            try:
                return path, verify(path)
            except CorruptCheckpoint as error:
                self.rejected.append(str(error))
        if found:
            raise CorruptCheckpoint(f"no usable checkpoint in {self.folder}: " + "; ".join(self.rejected))
        return None

    @staticmethod
    def progress(path: Path) -> dict[str, float]:
        """The metrics row saved with the checkpoint at ``path``."""
        return json.loads((path / PROGRESS).read_text())


def report_rejected(checkpoints: Checkpoints, run: "RunDir", display: "Progress", iteration: int) -> None:
    """Say which checkpoints :meth:`Checkpoints.latest` passed over, on the display and in the events log."""
    for reason in checkpoints.rejected:
        display.write(f"checkpoint passed over: {reason}")
        EventLog(run.events_path).append({"time": time.time(), "kind": "checkpoint_rejected", "actor": "driver",
                                          "epoch": iteration, "step": iteration, "detail": reason})
    checkpoints.rejected.clear()


def seal(folder: Path, row: dict[str, float]) -> None:
    """Write the signed manifest of every file RLlib wrote in ``folder``, then the progress file
    (last: it marks the checkpoint complete)."""
    files = _files(folder)
    (folder / MANIFEST).write_text(json.dumps({"files": files, "hmac": sign(_canonical(files))}, indent=1,
                                              sort_keys=True))
    (folder / PROGRESS).write_text(json.dumps(row))


def verify(folder: Path) -> dict[str, float]:
    """Check the signature of the checkpoint at ``folder`` and every file against its manifest;
    returns its metrics row.

    Raises:
        CorruptCheckpoint: the manifest is not signed with this user's key, a file is missing, added,
            truncated or altered, or the manifest or the progress file is unreadable.
    """
    try:
        written = json.loads((folder / MANIFEST).read_text())
        row = json.loads((folder / PROGRESS).read_text())
    except FileNotFoundError:
        raise CorruptCheckpoint(f"{folder}: no {MANIFEST} (written before manifests, or cut short)") from None
    except (OSError, ValueError) as error:
        raise CorruptCheckpoint(f"{folder}: unreadable {MANIFEST} or {PROGRESS}: {error}") from error
    if not isinstance(written, dict) or not isinstance(row, dict):
        raise CorruptCheckpoint(f"{folder}: {MANIFEST} or {PROGRESS} is not a JSON object")
    files, signature = written.get("files"), written.get("hmac")
    if not isinstance(files, dict) or not isinstance(signature, str) or not signed_by_us(_canonical(files), signature):
        raise CorruptCheckpoint(
            f"{folder}: {MANIFEST} is not signed with this user's checkpoint key (a run written elsewhere, with "
            f"another key, or an edited manifest); not loaded, because RLlib's state files are pickles that can "
            f"run code. To trust a run of your own from another machine, set ${KEY_ENV} to that machine's key")
    written = files
    found = _files(folder)
    for name in sorted(set(written) | set(found)):
        problem = _differs(written.get(name), found.get(name))
        if problem is not None:
            raise CorruptCheckpoint(f"{folder / name}: {problem}")
    return row


def _canonical(files: dict[str, Any]) -> bytes:
    return json.dumps(files, sort_keys=True, separators=(",", ":")).encode()


def _files(folder: Path) -> dict[str, dict[str, Any]]:
    """Each file under ``folder`` but skate's own: its size and SHA-256, by path relative to it."""
    entries = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if name in _OURS:
            continue
        with path.open("rb") as file:
            entries[name] = {"bytes": path.stat().st_size, "sha256": hashlib.file_digest(file, "sha256").hexdigest()}
    return entries


def _differs(written: dict[str, Any] | None, found: dict[str, Any] | None) -> str | None:
    if written is None:
        return "not in the manifest: added after the checkpoint was written"
    if found is None:
        return "in the manifest but missing"
    if found["bytes"] != written.get("bytes"):
        return f"{found['bytes']} bytes, {written.get('bytes')} were written (truncated?)"
    if found["sha256"] != written.get("sha256"):
        return "SHA-256 differs from the one written: the file was altered"
    return None
