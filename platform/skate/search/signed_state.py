"""A search's Tune state, signed: ``skate tune --resume`` restores only state this key signed.

``Tuner.restore`` unpickles ``tuner.pkl``, the searcher's state, and trial states that Tune's JSON
keeps as cloudpickle: the top-level ``*.pkl`` and ``*.json`` files of ``<experiment>/tune``. Each time
Tune saves them (into its driver staging folder, before it copies that folder to the experiment),
:class:`StateSigner` writes :data:`STATE_MANIFEST` beside them: each file's size and SHA-256, and
``tuner.pkl``'s (which Tune writes once, straight to the experiment), signed with this process's key
(:mod:`skate.runs.signing`). :func:`check_state` reads the experiment's files and refuses, with the
reason, a file the manifest does not list, a manifest signed with another key, or none at all.

The manifest also keeps the previous save's digests under ``earlier``: Tune copies the staging
folder in the background, so a driver killed mid-copy can leave a file of the save before beside
the new manifest. Every file accepted was still signed by this key.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
from ray.tune import Callback

from skate.errors import SkateError
from skate.runs.atomic import write_text_atomic
from skate.runs.manifest import body, differs, digest, digest_path, dumps, sealed, signature_problem
from skate.runs.signing import Key, signing_key

STATE_MANIFEST = "skate-state.manifest"
"""Not ``*.json``: Tune would take it for state of its own."""
TUNER_STATE = "tuner.pkl"


def restored_by_tune(name: str) -> bool:
    """Whether Tune reads the top-level file ``name`` of its experiment folder when it restores."""
    return name.endswith((".pkl", ".json"))


class StateSigner(Callback):
    """Signs Tune's state each time Tune saves it (Tune asks its callbacks for their state just after
    writing its own, and this callback has none of its own to give)."""

    def __init__(self) -> None:
        self._storage: Any = None
        self._tuner: dict[str, Any] | None = None
        self._last: dict[str, Any] = {}

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self._storage is None and trials:
            self._storage = trials[0].storage  # where Tune stages its state, and where it copies it to

    def get_state(self) -> dict[str, Any] | None:
        if self._storage is not None:
            self.seal(Path(self._storage.experiment_driver_staging_path))
        return None

    def seal(self, staging: Path) -> None:
        """Write the signed manifest of Tune's state in ``staging``."""
        if self._tuner is None:
            filesystem, folder = self._storage.storage_filesystem, self._storage.experiment_fs_path
            self._tuner = _digest_at(filesystem, posixpath.join(folder, TUNER_STATE))
        files = {path.name: digest_path(path) for path in sorted(staging.iterdir())
                 if path.is_file() and restored_by_tune(path.name)}
        files[TUNER_STATE] = self._tuner
        write_text_atomic(staging / STATE_MANIFEST,
                          dumps(sealed({"files": files, "earlier": self._last}, signing_key())))
        self._last = files


def check_state(filesystem: pafs.FileSystem, folder: str, key: Key | None = None) -> None:
    """Check the Tune state in ``folder`` against its signed manifest, under ``key`` (default: this
    process's).

    Raises:
        SkateError: no manifest, one signed with another key or edited, or a file Tune would read that
            it does not list as written.
    """
    problems = _problems(filesystem, folder, key or signing_key())
    if problems:
        raise SkateError(f"{folder}: not resumed, because Tune's state holds pickles that can run code: "
                         + "; ".join(problems))


def _problems(filesystem: pafs.FileSystem, folder: str, key: Key) -> list[str]:
    manifest = read_manifest(filesystem, folder)
    if manifest is None:
        return [f"no {STATE_MANIFEST} (a search started by an older skate, or killed before its first save)"]
    problem = signature_problem(manifest, key)
    if problem is not None:
        return [f"{STATE_MANIFEST}: {problem}"]
    return [f"{name}: {problem}" for name, problem in file_problems(filesystem, folder, body(manifest)).items()]


def read_manifest(filesystem: pafs.FileSystem, folder: str) -> dict[str, Any] | None:
    """The manifest in ``folder``, or ``None``; one that is not a JSON object with its files is
    reported as having none."""
    path = posixpath.join(folder, STATE_MANIFEST)
    if filesystem.get_file_info(path).type != pafs.FileType.File:
        return None
    try:
        with filesystem.open_input_stream(path) as stream:
            manifest = json.loads(stream.readall())
    except (OSError, ValueError):
        return None
    ok = isinstance(manifest, dict) and isinstance(manifest.get("files"), dict) and isinstance(manifest.get("earlier"), dict)
    return manifest if ok else None


def found_files(filesystem: pafs.FileSystem, folder: str) -> dict[str, dict[str, Any]]:
    """The digest of each file in ``folder`` that Tune reads when it restores."""
    return {posixpath.basename(info.path): _digest_at(filesystem, info.path)
            for info in filesystem.get_file_info(pafs.FileSelector(folder))
            if info.type == pafs.FileType.File and restored_by_tune(posixpath.basename(info.path))}


def file_problems(filesystem: pafs.FileSystem, folder: str, signed: dict[str, Any]) -> dict[str, str]:
    """Each file Tune would read that is neither as the manifest ``signed`` lists it nor as its
    previous save did, and why."""
    problems = {}
    for name, found in sorted(found_files(filesystem, folder).items()):
        now, before = signed["files"].get(name), signed["earlier"].get(name)
        if differs(before, found) is None:
            continue
        problem = differs(now, found)
        if problem is not None:
            problems[name] = problem
    return problems


def _digest_at(filesystem: pafs.FileSystem, path: str) -> dict[str, Any]:
    with filesystem.open_input_file(path) as file:
        return digest(file, file.size())
