"""A folder of whole files on any pyarrow filesystem (a local disk or an object store)."""

from __future__ import annotations

import posixpath
from pathlib import Path

import pyarrow.fs as pafs

from skate.runs.atomic import atomic_path
from skate.uri import is_uri, open_location


class Folder:
    """One folder on a pyarrow filesystem: whole-file reads and writes, listing, deleting.

    A write never leaves a half-written file: on a local disk it goes through a temporary file
    that is flushed and renamed; on an object store a single upload is atomic by itself.
    """

    def __init__(self, filesystem: pafs.FileSystem, path: str, *, location: str | None = None) -> None:
        self.fs = filesystem
        self.path = path.rstrip("/")
        self.location = (location or self.path).rstrip("/")
        self.local = isinstance(filesystem, pafs.LocalFileSystem)

    @classmethod
    def at(cls, location: str | Path) -> "Folder":
        filesystem, path = open_location(location)
        return cls(filesystem, path, location=str(location) if is_uri(location) else path)

    def join(self, name: str) -> str:
        """The path of ``name`` inside the filesystem."""
        return posixpath.join(self.path, name)

    def show(self, name: str) -> str:
        """Where ``name`` is, as a user would write it (a local path or a URI)."""
        return f"{self.location}/{name}"

    def write_bytes(self, name: str, data: bytes) -> None:
        if self.local:
            with atomic_path(self.join(name)) as tmp:
                tmp.write_bytes(data)
            return
        self.fs.create_dir(self.path, recursive=True)
        with self.fs.open_output_stream(self.join(name)) as out:
            out.write(data)

    def read_bytes(self, name: str) -> bytes:
        with self.fs.open_input_stream(self.join(name)) as stream:
            return stream.read()

    def exists(self, name: str) -> bool:
        return self.fs.get_file_info(self.join(name)).type == pafs.FileType.File

    def names(self) -> list[str]:
        """The files directly in the folder (none if it does not exist)."""
        infos = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        return [info.base_name for info in infos if info.type == pafs.FileType.File]

    def delete(self, name: str) -> None:
        if self.exists(name):
            self.fs.delete_file(self.join(name))
