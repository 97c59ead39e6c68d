"""Run and experiment directories named by URI (``s3://bucket/skate/digits_rnn-20261205-101500``).

Every command that reads a run directory (``report``, ``verify``, ``generate``, ``evaluate``,
``run --resume``, ``tune --resume``) takes a URI as well as a path: :func:`local_copy` brings the
directory into a local cache (``$SKATE_CACHE``, default ``~/.cache/skate``; files unchanged since
the last download are not fetched again), the command works on the copy, and a resumed run or
search goes on mirroring to the same URI (:func:`resumed_mirror`). Credentials and the endpoint
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
    filesystem, root = _open(uri)
    files = _listing(filesystem, root, uri)
    if needs is not None and needs not in files:
        raise SkateError(f"{uri}: not a skate run or experiment directory (no {needs} there)")
    target.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(target)
    fetched: dict[str, dict[str, list[int]]] = {}
    for name, remote in sorted(files.items()):
        local = target / name
        known = manifest.get(name)
        if known is None or known["remote"] != list(remote) or not _unchanged(local, known["local"]):
            local.parent.mkdir(parents=True, exist_ok=True)
            with filesystem.open_input_stream(posixpath.join(root, name)) as stream:
                local.write_bytes(stream.read())
        stat = local.stat()
        fetched[name] = {"remote": list(remote), "local": [stat.st_size, stat.st_mtime_ns]}
    for name in set(manifest) - set(files):  # gone there: gone here
        (target / name).unlink(missing_ok=True)
    (target / MANIFEST).write_text(json.dumps(fetched))


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


def resumed_mirror(local: Path, location: str) -> RunMirror:
    """The mirror that keeps ``location`` in step with ``local`` (a copy made by :func:`local_copy`),
    told what is there already so that only what changes is uploaded."""
    mirror = RunMirror(local, location)
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
    if re.search(r"ACCESS_DENIED|InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|HTTP status 403|credentials", text, re.I):
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
