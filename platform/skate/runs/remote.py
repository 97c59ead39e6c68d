"""Run and experiment directories named by URI (``s3://bucket/skate/digits_rnn-20261205-101500``).

Every command that reads a run directory (``report``, ``verify``, ``generate``, ``evaluate``,
``run --resume``, ``tune --resume``) takes a URI as well as a path: :func:`local_copy` brings the
directory into a local cache (``$SKATE_CACHE``, default ``~/.cache/skate``; files unchanged since
the last download are not fetched again), the command works on the copy, and a resumed run or
search goes on mirroring to the same URI (:func:`resumed_mirror`). A resume fetches only what it
needs (:func:`resumable_copy`): the spec, the records, and the newest checkpoint that passes its
checks. Credentials and the endpoint
come as the cloud SDKs read them (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...) or in the
URI's query (``?endpoint_override=...``).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from skate.errors import SkateError
from skate.runs.mirror import RunMirror
from skate.runs.rundir import RunDir
from skate.uri import is_uri, open_location

CACHE_ENV = "SKATE_CACHE"
MANIFEST = ".skate-downloaded.json"
"""In a local copy: each file's remote (size, mtime) and local (size, mtime_ns) when it was fetched."""


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "skate")


def local_copy(location: str | Path) -> Path:
    """``location`` itself when it is a local path; else the run (or experiment) directory at the URI,
    downloaded into the cache (only what changed since the last download).

    Raises:
        SkateError: one line naming the URI and what is wrong: nothing there, not a run directory,
            the endpoint unreachable, the credentials refused.
    """
    if not is_uri(location):
        return Path(location)
    uri = str(location).rstrip("/")
    target = _cache_path(uri)
    download(uri, target, needs=RunDir.SPEC)
    return target


def download(uri: str, target: Path, *, needs: str | None = None) -> None:
    """Bring the folder at ``uri`` into ``target`` (only the files changed since the last download
    there; files gone there go here too).

    Raises:
        SkateError: nothing there, the file ``needs`` missing, or the storage unreachable or refusing.
    """
    fetch = _Fetch(uri, target, needs=needs)
    fetch.files(fetch.listing)
    fetch.finish()


def resumable_copy(location: str | Path, *, leave: tuple[str, ...] = ()) -> Path:
    """Like :func:`local_copy`, with only what a resume needs: the spec and the records, and of each
    ``checkpoints/`` folder its manifest, ``best.pt`` and the newest checkpoint that passes its checks
    (an older one is fetched only when every newer one fails). The older checkpoints stay in storage
    untouched, as do the top-level folders in ``leave`` (what the resume reads in storage itself)."""
    if not is_uri(location):
        return Path(location)
    uri = str(location).rstrip("/")
    fetch = _Fetch(uri, _cache_path(uri), needs=RunDir.SPEC)
    listing = {name: stat for name, stat in fetch.listing.items() if name.split("/")[0] not in leave}
    units = _checkpoint_units(listing)
    in_units = {name for folder in units.values() for unit in folder for name in unit[1]}
    fetch.files({name: stat for name, stat in listing.items() if name not in in_units})
    for folder, found in units.items():
        for unit, names in sorted(found, key=lambda unit: _step(unit[0]), reverse=True):
            fetch.files({name: fetch.listing[name] for name in names})
            if _passes(fetch.target / folder, unit):
                break
    fetch.finish()
    return fetch.target


class _Fetch:
    """One download into ``target``: the listing at ``uri``, the files fetched so far, and the
    manifest of what the local copy holds (written by :meth:`finish`, which also drops from the copy
    whatever this download did not fetch)."""

    def __init__(self, uri: str, target: Path, *, needs: str | None) -> None:
        self.uri, self.target = uri, target
        self.filesystem, self.root = _open(uri)
        self.listing = _listing(self.filesystem, self.root, uri)
        if needs is not None and needs not in self.listing:
            raise SkateError(f"{uri}: not a skate run or experiment directory (no {needs} there)")
        target.mkdir(parents=True, exist_ok=True)
        self.known = _read_manifest(target)
        self.fetched: dict[str, dict[str, list[int]]] = {}

    def files(self, files: dict[str, tuple[int, int]]) -> None:
        for name, remote in sorted(files.items()):
            local = self.target / name
            known = self.known.get(name)
            if known is None or known["remote"] != list(remote) or not _unchanged(local, known["local"]):
                local.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with self.filesystem.open_input_stream(posixpath.join(self.root, name)) as stream:
                        local.write_bytes(stream.read())
                except OSError as error:
                    raise SkateError(f"{self.uri}: {storage_problem(error)}") from None
            stat = local.stat()
            self.fetched[name] = {"remote": list(remote), "local": [stat.st_size, stat.st_mtime_ns]}

    def finish(self) -> None:
        for name in set(self.known) - set(self.fetched):  # gone there, or not wanted: gone here
            (self.target / name).unlink(missing_ok=True)
        (self.target / MANIFEST).write_text(json.dumps(self.fetched))


_UNIT = re.compile(r"^(?P<folder>(?:.*/)?checkpoints)/(?P<unit>ckpt-\d+\.pt|iter-\d+)(?:/.*)?$")
"""A resumable checkpoint: ``ckpt-<step>.pt`` (supervised) or ``iter-<n>/`` (RL), in a ``checkpoints/``
folder (the run's own, or a trial's inside an experiment)."""


def _checkpoint_units(files: dict[str, tuple[int, int]]) -> dict[str, list[tuple[str, list[str]]]]:
    """Each checkpoints folder's resumable checkpoints, as (name, the files it is made of)."""
    units: dict[str, dict[str, list[str]]] = {}
    for name in files:
        match = _UNIT.match(name)
        if match:
            units.setdefault(match["folder"], {}).setdefault(match["unit"], []).append(name)
    return {folder: list(found.items()) for folder, found in units.items()}


def _step(unit: str) -> int:
    return int(re.sub(r"\D", "", unit))


def _passes(folder: Path, unit: str) -> bool:
    """Whether the checkpoint ``unit`` in the local ``folder`` passes the checks a resume makes."""
    from skate.runs.checkpoint import Checkpointer, CorruptCheckpoint

    try:
        if unit.startswith("iter-"):
            from skate.rl.checkpoints import verify

            verify(folder / unit)
        else:
            Checkpointer(folder).read(unit)
    except CorruptCheckpoint:
        return False
    return True


def stored_kind(location: str | Path) -> str:
    """``experiment`` (a search's directory) or ``run``: what the directory at ``location`` holds.

    Raises:
        SkateError: neither is there (one line naming the location).
    """
    from skate.search.experiment import STATE

    filesystem, root = _open(str(location))
    names = [posixpath.join(root, name) for name in (STATE, RunDir.SUMMARY, RunDir.SPEC)]
    try:
        found = [info.type == pafs.FileType.File for info in filesystem.get_file_info(names)]
    except OSError as error:
        raise SkateError(f"{location}: {storage_problem(error)}") from None
    if found[0]:
        return "experiment"
    if found[1] and found[2]:
        return "run"
    raise SkateError(f"{location}: no skate run or search to resume there (neither {STATE} nor {RunDir.SUMMARY})")


def resumed_mirror(local: Path, location: str, *, skip: tuple[str, ...] = ()) -> RunMirror:
    """The mirror that keeps ``location`` in step with ``local`` (a copy made by :func:`local_copy`),
    told what is there already so that only what changes is uploaded (``skip``: as
    :class:`RunMirror`'s)."""
    mirror = RunMirror(local, location, skip=skip)
    for name, entry in _read_manifest(local).items():
        mirror.sent(name, tuple(entry["local"]))  # type: ignore[arg-type]
    return mirror


def _open(uri: str) -> tuple[pafs.FileSystem, str]:
    try:
        return open_location(uri)
    except ValueError as error:
        raise SkateError(str(error)) from None


def _listing(filesystem: pafs.FileSystem, root: str, uri: str) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (relative name -> (size, mtime in ns)); hidden files left out."""
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except OSError as error:
        raise SkateError(f"{uri}: {storage_problem(error)}") from None
    files = {}
    for info in infos:
        name = posixpath.relpath(info.path, root)
        if info.type == pafs.FileType.File and not any(part.startswith(".") for part in name.split("/")):
            files[name] = (int(info.size or 0), int(info.mtime_ns or 0))
    if not files:
        raise SkateError(f"{uri}: nothing there (no such run directory, or an empty one)")
    return files


def storage_problem(error: OSError) -> str:
    """A storage error in one line that says which thing to fix, without the SDK's stack."""
    text = str(error)
    if re.search(r"ACCESS_DENIED|INVALID_ACCESS_KEY_ID|SIGNATURE_DOES_NOT_MATCH|InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|HTTP status 403|credentials", text, re.I):
        return f"the credentials were refused (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the SDK's profile): {_first(text)}"
    if re.search(r"NETWORK_CONNECTION|curlCode|Could not resolve|Connection refused|couldn't connect", text, re.I):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "the default endpoint"
        return f"cannot reach the storage endpoint ({endpoint}; set AWS_ENDPOINT_URL or ?endpoint_override=): {_first(text)}"
    return _first(text)


def _first(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"


def _cache_path(uri: str) -> Path:
    parts = urlsplit(uri)
    return cache_root() / "runs" / parts.scheme / parts.netloc / parts.path.strip("/")


def _read_manifest(folder: Path) -> dict[str, dict[str, list[int]]]:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def _unchanged(path: Path, local: list[int]) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    return [stat.st_size, stat.st_mtime_ns] == list(local)
