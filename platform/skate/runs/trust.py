"""``skate trust RUN``: trust what a run signed elsewhere (on a cluster, or another machine).

skate loads only what its own key signed (:mod:`skate.runs.signing`). A run written on a cluster is
signed with the cluster's key, so on this machine its RL checkpoints and its Tune state are refused
until the user trusts them here. This lists each signed thing in the run (RL checkpoints, a search's
Tune state, its trials' checkpoints): what it is, how many files and bytes, which key signed it, and
whether its files are still as signed; then, once confirmed, re-signs those whose files are, with
this machine's key (or, with ``--address``, the cluster's: a run moved to another cluster). One whose
files changed since they were signed is never re-signed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any, Callable

import pyarrow.fs as pafs

from skate.errors import SkateError
from skate.rl.checkpoints import PROGRESS, integrity_problem, read_manifest
from skate.runs.checkpoint import CorruptCheckpoint
from skate.runs.manifest import MANIFEST, body, dumps, sealed, signature_problem
from skate.runs.signing import Key
from skate.search import signed_state

LOCAL = pafs.LocalFileSystem()


@dataclasses.dataclass(frozen=True)
class Signed:
    """One signed thing in a run directory, as found."""

    kind: str
    """``RL checkpoint`` or ``Tune state``."""
    path: Path
    signer: str | None
    """The id of the key it says signed it."""
    files: dict[str, Any]
    """What it vouches for: each file's size and SHA-256, by name."""
    problem: str | None
    """Why it cannot be trusted (its files are not as signed), or ``None``."""
    manifest: dict[str, Any] = dataclasses.field(repr=False)

    def line(self, key: Key) -> str:
        size = sum(int(entry.get("bytes", 0)) for entry in self.files.values())
        signer = "already signed with it" if self.signer_is(key) else f"signed with key {self.signer or '(unnamed)'}"
        state = f"NOT TRUSTED: {self.problem}" if self.problem else "files as signed"
        return f"{self.kind} {self.path}: {len(self.files)} files, {size / 1e6:.1f} MB, {signer}; {state}"

    def signer_is(self, key: Key) -> bool:
        return signature_problem(self.manifest, key) is None


def signed_in(run: Path) -> list[Signed]:
    """Every signed thing under the run or experiment directory ``run``."""
    if not run.is_dir():
        raise SkateError(f"{run}: not a run or experiment directory here (a URI: download it first, e.g. with "
                         f"'skate report', then trust the local copy)")
    found = [_checkpoint(manifest.parent) for manifest in sorted(run.rglob(MANIFEST))
             if (manifest.parent / PROGRESS).is_file()]  # supervised checkpoints' manifests sign nothing
    found += [_tune_state(manifest.parent) for manifest in sorted(run.rglob(signed_state.STATE_MANIFEST))]
    return found


def trust(chosen: list[Signed], key: Key) -> None:
    """Re-sign each of ``chosen`` (whose files are as signed) with ``key``, noting who signed it before."""
    for item in chosen:
        trusted = {"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "signed_by": item.signer}
        if item.kind == "Tune state":
            content = {"files": item.files, "earlier": {}, "trusted": trusted}
            (item.path / signed_state.STATE_MANIFEST).write_text(dumps(sealed(content, key)))
        else:
            (item.path / MANIFEST).write_text(dumps(sealed({**body(item.manifest), "trusted": trusted}, key)))


def trust_run(run: Path, key: Key, *, confirm: Callable[[str], bool], say: Callable[[str], None] = print) -> int:
    """The ``skate trust`` command: list, ask, re-sign. Returns its exit status (1 when something in
    the run cannot be trusted)."""
    found = signed_in(run)
    if not found:
        raise SkateError(f"{run}: nothing signed in it (no RL checkpoint, no Tune state): nothing to trust")
    for item in found:
        say(item.line(key))
    chosen = [item for item in found if item.problem is None and not item.signer_is(key)]
    broken = sum(item.problem is not None for item in found)
    if chosen and confirm(f"trust {len(chosen)} of them: re-sign with {key.where} (key {key.id})?"):
        trust(chosen, key)
        say(f"trusted {len(chosen)}: skate evaluate, run --resume and tune --resume now load them with that key")
    elif not chosen:
        say(f"nothing to re-sign with {key.where} (key {key.id})")
    else:
        say("nothing re-signed")
    if broken:
        say(f"{broken} not trusted: their files changed after they were signed")
    return 1 if broken else 0


def _checkpoint(folder: Path) -> Signed:
    try:
        manifest, _ = read_manifest(folder)
    except CorruptCheckpoint as error:
        return Signed("RL checkpoint", folder, None, {}, str(error), {})
    return Signed("RL checkpoint", folder, manifest.get("key"), manifest["files"], integrity_problem(folder, manifest),
                  manifest)


def _tune_state(folder: Path) -> Signed:
    manifest = signed_state.read_manifest(LOCAL, str(folder))
    if manifest is None:
        return Signed("Tune state", folder, None, {}, f"unreadable {signed_state.STATE_MANIFEST}", {})
    problems = signed_state.file_problems(LOCAL, str(folder), body(manifest))
    problem = "; ".join(f"{name}: {why}" for name, why in problems.items()) or None
    return Signed("Tune state", folder, manifest.get("key"), signed_state.found_files(LOCAL, str(folder)), problem,
                  manifest)
