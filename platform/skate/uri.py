"""Locations: a local path, or a URI any pyarrow filesystem opens (``s3://``, ``gs://``, ``hdfs://``...)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs


LOCAL_SCHEMES = ("file", "local")
"""The URI schemes pyarrow opens on the local filesystem."""


def is_uri(location: str | Path) -> bool:
    return "://" in str(location)


def on_local_disk(location: str) -> bool:
    """Whether the URI ``location`` names this machine's filesystem (``file://``, ``local://``)."""
    return location.partition(":")[0].strip().lower() in LOCAL_SCHEMES


def join(location: str, *names: str) -> str:
    """``location`` with ``names`` appended to its path; a URI's ``?query`` (``?endpoint_override=...``)
    stays at the end."""
    base, mark, query = str(location).partition("?")
    return "/".join([base.rstrip("/"), *names]) + mark + query


def open_location(location: str | Path) -> tuple[pafs.FileSystem, str]:
    """The filesystem and the path inside it of a local path or a URI."""
    if not is_uri(location):
        return pafs.LocalFileSystem(), str(Path(location).resolve())
    try:
        return pafs.FileSystem.from_uri(str(location))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
        raise ValueError(f"{location}: not a location a pyarrow filesystem can open ({error})") from error
