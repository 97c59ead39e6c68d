"""Run directories kept in storage: a local path, or a URI (``s3://bucket/skate``) any pyarrow
filesystem opens, so a job on a cluster whose nodes come and go keeps its metrics and checkpoints.

A run writes its directory on the local disk of the node its driver runs on; :class:`RunMirror`
copies what changed to ``<storage>/<run name>/`` after every recorded epoch (RL: iteration) and at
the end, and deletes there the checkpoints the run deleted. :func:`stored_runs` lists the runs in a
storage location for ``skate runs --storage``.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import threading
from pathlib import Path
from typing import Any, Iterator

import pyarrow.fs as pafs

from skate.runs.rundir import RunDir, list_runs
from skate.runs.storage import Folder
from skate.uri import is_uri, open_location


class RunMirror:
    """Copies one run directory to ``location`` file by file, each file when it has changed."""

    def __init__(self, run_dir: Path, location: str, *, skip: tuple[str, ...] = ()) -> None:
        self.run_dir = Path(run_dir)
        self.location = location.rstrip("/")
        self.skip = skip
        """Top-level files and folders left out (the trials of a search, which mirror themselves)."""
        self.fs, self.path = open_location(self.location)
        self._sent: dict[str, tuple[int, int]] = {}

    def sent(self, name: str, stat: tuple[int, int]) -> None:
        """Count the file ``name`` (relative to the run directory) as uploaded when its local (size,
        mtime in ns) is ``stat``: it is there already (a run resumed from a download)."""
        self._sent[name] = stat

    def clear(self) -> None:
        """Delete everything at the location (a run starting afresh where an earlier attempt left a copy)."""
        self.fs.delete_dir_contents(self.path, missing_dir_ok=True)
        self._sent = {}

    def sync(self) -> None:
        """Upload the files that are new or changed since the last sync; delete the ones gone.

        The records go before the checkpoints, and a checkpoint folder's manifest last: a driver
        killed halfway leaves the copy with rows past its last checkpoint (which a resume drops and
        redoes), never a checkpoint past its rows (which would leave a gap)."""
        present = {}
        files = (p for p in self.run_dir.rglob("*") if p.is_file() and not p.name.startswith(".")
                 and p.relative_to(self.run_dir).parts[0] not in self.skip)
        for file in sorted(files, key=lambda path: _upload_order(path.relative_to(self.run_dir))):
            name = file.relative_to(self.run_dir).as_posix()
            stat = file.stat()
            present[name] = (stat.st_size, stat.st_mtime_ns)
            if self._sent.get(name) != present[name]:
                folder, base = posixpath.split(name)
                Folder(self.fs, posixpath.join(self.path, folder)).write_bytes(base, file.read_bytes())
        for name in set(self._sent) - set(present):
            self.fs.delete_file(posixpath.join(self.path, name))
        self._sent = present


CHECKPOINT_MANIFEST = "manifest.json"
""":data:`skate.runs.checkpoint.MANIFEST`, not imported from there: that module loads torch."""


def _upload_order(name: Path) -> tuple[int, str]:
    in_checkpoints = RunDir.CHECKPOINTS in name.parts[:-1]
    return (2 if in_checkpoints and name.name == CHECKPOINT_MANIFEST else 1 if in_checkpoints else 0, name.as_posix())


@contextlib.contextmanager
def mirrored(mirror: RunMirror, *, every_s: float = 2.0) -> Iterator[RunMirror]:
    """The block with ``mirror`` synced at its start, every ``every_s`` seconds (by a thread; Tune
    saves a search's state as often) and at its end: for a search, whose trials and Tune write into
    its folder from threads of their own."""
    mirror.sync()
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            try:
                mirror.sync()
            except OSError:  # storage away for a moment: the next round retries, and the last sync raises
                continue

    thread = threading.Thread(target=loop, daemon=True, name="skate-mirror")
    thread.start()
    try:
        yield mirror
    finally:
        stop.set()
        thread.join()
        mirror.sync()


class StoredRun:
    """A run directory in storage, as ``skate runs`` shows it: its name and summary."""

    def __init__(self, folder: Folder, name: str) -> None:
        self.folder = folder
        self.name = name

    def read_file(self, name: str) -> str | None:
        """A file of the stored directory as text, or ``None`` when it is not there (or unreadable)."""
        try:
            return self.folder.read_bytes(name).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def read_summary(self) -> dict[str, Any]:
        try:
            return json.loads(self.folder.read_bytes(RunDir.SUMMARY))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            return {"status": "unknown", "error": f"unreadable summary: {error}"}


def stored_runs(location: str) -> list[Any]:
    """The runs in a storage location, oldest first: local run directories, or :class:`StoredRun`s."""
    if not is_uri(location):
        return list(list_runs(location))
    fs, path = open_location(location)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    runs = [StoredRun(Folder(fs, info.path), info.base_name) for info in infos
            if info.type == pafs.FileType.Directory and Folder(fs, info.path).exists(RunDir.SPEC)]
    return sorted(runs, key=lambda run: (run.read_summary().get("started_at", ""), run.name))
