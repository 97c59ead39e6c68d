"""RL checkpoints: ``checkpoints/iter-<n>/``, RLlib's algorithm state with skate's beside it.

Each is written into ``iter-<n>.tmp/`` and renamed into place once whole. ``manifest.json`` holds
every file's size and SHA-256, signed with this process's key (:mod:`skate.runs.signing`,
:mod:`skate.runs.manifest`);
``skate.json`` (the iteration's metrics row), written last, marks the checkpoint complete.

RLlib's state files are pickles, which can run code when loaded. So before RLlib reads a checkpoint,
its manifest's signature and every file are checked: a checkpoint signed with another key (from
someone else, or on a cluster), or with a truncated, altered, added or missing file, is refused with
the reason, and :meth:`Checkpoints.latest` falls back to the one before it. What is loaded is a
private copy, checked after copying (:func:`private_copy`).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from skate.runs.checkpoint import CorruptCheckpoint
from skate.runs.events import EventLog
from skate.runs.manifest import MANIFEST, differs, digest_path, dumps, sealed, signature_problem
from skate.runs.signing import Key, signing_key

if TYPE_CHECKING:
    from skate.progress import Progress
    from skate.runs.rundir import RunDir

PROGRESS = "skate.json"
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


def seal(folder: Path, row: dict[str, float], key: Key | None = None) -> None:
    """Write the manifest of every file RLlib wrote in ``folder``, signed with ``key`` (default: this
    process's, :func:`skate.runs.signing.signing_key`), then the progress file (last: it marks the
    checkpoint complete)."""
    (folder / MANIFEST).write_text(dumps(sealed({"files": _files(folder)}, key or signing_key())))
    (folder / PROGRESS).write_text(json.dumps(row))


def verify(folder: Path, key: Key | None = None) -> dict[str, float]:
    """Check the signature of the checkpoint at ``folder`` under ``key`` (default: this process's) and
    every file against its manifest; returns its metrics row.

    Raises:
        CorruptCheckpoint: the manifest is not signed with the key, a file is missing, added,
            truncated or altered, or the manifest or the progress file is unreadable.
    """
    written, row = read_manifest(folder)
    problem = signature_problem(written, key or signing_key())
    if problem is not None:
        raise CorruptCheckpoint(f"{folder}: not loaded, because RLlib's state files are pickles that can run code: "
                                f"{MANIFEST}: {problem}")
    problem = integrity_problem(folder, written)
    if problem is not None:
        raise CorruptCheckpoint(problem)
    return row


def read_manifest(folder: Path) -> tuple[dict[str, Any], dict[str, float]]:
    """The checkpoint's manifest and its metrics row.

    Raises:
        CorruptCheckpoint: either is missing, unreadable or not a JSON object.
    """
    try:
        written = json.loads((folder / MANIFEST).read_text())
        row = json.loads((folder / PROGRESS).read_text())
    except FileNotFoundError:
        raise CorruptCheckpoint(f"{folder}: no {MANIFEST} (written before manifests, or cut short)") from None
    except (OSError, ValueError) as error:
        raise CorruptCheckpoint(f"{folder}: unreadable {MANIFEST} or {PROGRESS}: {error}") from error
    if not isinstance(written, dict) or not isinstance(row, dict) or not isinstance(written.get("files"), dict):
        raise CorruptCheckpoint(f"{folder}: {MANIFEST} or {PROGRESS} is not a JSON object, or lists no files")
    return written, row


def integrity_problem(folder: Path, written: dict[str, Any]) -> str | None:
    """The first file of ``folder`` that differs from the manifest ``written`` (and how), or ``None``."""
    found = _files(folder)
    for name in sorted(set(written["files"]) | set(found)):
        problem = differs(written["files"].get(name), found.get(name))
        if problem is not None:
            return f"{folder / name}: {problem}"
    return None


@contextlib.contextmanager
def private_copy(folder: Path) -> Iterator[tuple[Path, dict[str, float]]]:
    """A copy of the checkpoint at ``folder`` in a folder only this user can open, verified there
    (:func:`verify`), and its metrics row: what is loaded is what was checked, even if the original
    is replaced in between. Removed on leaving the block."""
    with tempfile.TemporaryDirectory(prefix="skate-checkpoint-") as private:  # made 0700
        copy = Path(private) / folder.name
        try:
            shutil.copytree(folder, copy)  # a link is copied as the file it names
        except (OSError, shutil.Error) as error:
            raise CorruptCheckpoint(f"{folder}: cannot copy it to check it: {error}") from error
        yield copy, verify(copy)


def _files(folder: Path) -> dict[str, dict[str, Any]]:
    """Each file under ``folder`` but skate's own: its size and SHA-256, by path relative to it."""
    return {path.relative_to(folder).as_posix(): digest_path(path)
            for path in sorted(p for p in folder.rglob("*") if p.is_file())
            if path.relative_to(folder).as_posix() not in _OURS}
