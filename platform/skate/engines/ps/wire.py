"""Direct connections between workers and shards: a worker's push is one message on a socket.

An actor call costs about a millisecond of Ray's machinery on each side, and a Ray Compiled Graph
keeps a reader spinning on every channel (on a small machine the spinning takes CPU from the
workers' computation). Here each worker holds one stream socket to each shard: a Unix socket
when both are on one node, TCP between nodes. A push is a 28-byte header and the gradient's
bytes; the reply is the shard's version and its parameters in the same wire format. Both sides
block in the kernel while they wait, so nothing spins, and a round trip costs tens of
microseconds plus the copies.

The shard serves the connections on its asyncio event loop, through the same update rule as an
actor call (:meth:`~skate.engines.ps.shard.ParameterShard.push`), so sync barriers and SSP
waits work unchanged. A connection that closes is the death of the process at the other end: the
shard stops serving that worker (the engine makes it leave the barriers), and a worker whose shard
went away raises :class:`ShardLost`, which the engine treats as the shard's death.

Anything on the node can connect to an abstract Unix socket, and anything on the cluster's network
to the TCP port, so a connection first sends the job's token (random, made by the engine for its
actors alone); the shard hangs up on any other.

On one node the payloads can skip the socket (``shared_memory``): after the token the worker makes
two files in ``/dev/shm`` (its gradient's and the reply's, each the slice's size, readable by its
user alone), names them, and removes them once the shard has mapped them (the mappings outlive the
names, so nothing is left behind if either side dies). A push then writes the gradient into the
shared pages and sends the header alone, with the size ``-1``; the shard reads the gradient where it
lies and writes its parameters into the reply's pages. That saves the socket's two copies of each
payload each way, which for a model of tens of MB is most of a step's transport. A worker on
another node, or where ``/dev/shm`` is missing, sends ``0`` (no shared pages) and its payloads go on
the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import mmap
import os
import re
import secrets
import socket
import struct
import uuid
from pathlib import Path
from typing import Awaitable, Callable

import numpy as np

from skate.engines.faults import ConnectionLost

REQUEST = struct.Struct("<iqqq")
"""A push: worker rank, the version its parameters were read at, examples in the batch, payload bytes."""

REPLY = struct.Struct("<qq")
"""A reply: the shard's version, payload bytes."""

READ_LIMIT = 1 << 26
"""The shard's stream buffer (a whole slice may be read in one go)."""

SHARE = struct.Struct("<q")
"""After the token: the length of the name of the worker's shared pages that follows (0: none)."""

IN_SHARED_MEMORY = -1
"""The payload size of a header whose payload is in the shared pages."""

SHM_DIR = Path("/dev/shm")
_SHM_NAME = re.compile(r"^skate-[0-9a-f]{32}$")

Push = Callable[[int, int, np.ndarray, int], Awaitable[None]]
"""The shard's :meth:`~skate.engines.ps.shard.ParameterShard.push`."""

View = Callable[[], tuple[np.ndarray, int]]
"""The shard's parameters in the wire format, uncopied, and their version."""


class ShardLost(ConnectionLost):
    """The connection to shard ``shard`` closed: the shard's process is gone."""

    def __init__(self, shard: int, detail: str) -> None:
        super().__init__(shard, detail)  # both in args, so that the error survives pickling
        self.shard = shard

    def __str__(self) -> str:
        return f"shard {self.shard} {self.args[1]}"


@dataclasses.dataclass(frozen=True)
class Address:
    """Where a shard listens: its node, a Unix socket (abstract, for workers on that node) and TCP."""

    node: str
    unix: str
    host: str
    port: int


TOKEN_BYTES = 32


def new_token() -> bytes:
    """A token for one engine's connections."""
    return secrets.token_bytes(TOKEN_BYTES)


async def serve(push: Push, view: View, wire_dtype: np.dtype, *, token: bytes, node: str,
                host: str) -> tuple[Address, list[asyncio.AbstractServer]]:
    """Start serving pushes on the running event loop; returns the address and the servers.

    The reply is written from the parameters themselves: ``write`` sends what the socket takes at
    once and copies the rest before it returns, and nothing changes them in between.
    """

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pages: SharedPages | None = None
        try:
            if not hmac.compare_digest(await reader.readexactly(len(token)), token):
                return  # not one of this job's workers
            expected = view()[0].nbytes
            pages = await _attach(reader, writer, expected)
            while True:
                worker, read_version, count, size = REQUEST.unpack(await reader.readexactly(REQUEST.size))
                if size == IN_SHARED_MEMORY and pages is not None:
                    grad = np.frombuffer(pages.request, dtype=wire_dtype)
                elif size == expected:
                    grad = np.frombuffer(await reader.readexactly(size), dtype=wire_dtype)
                else:
                    return  # not a slice of this shard: hang up before reading it
                await push(worker, read_version, grad, count)
                values, version = view()
                if pages is not None:
                    np.copyto(np.frombuffer(pages.reply, dtype=wire_dtype), values)
                    writer.write(REPLY.pack(version, IN_SHARED_MEMORY))
                else:
                    writer.write(REPLY.pack(version, values.nbytes))
                    writer.write(memoryview(values).cast("B"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker went away; the engine makes it leave the shard's barriers
        finally:
            writer.close()
            if pages is not None:
                pages.close()

    unix = f"\0skate-shard-{uuid.uuid4().hex}"
    servers = [await asyncio.start_unix_server(connection, path=unix, limit=READ_LIMIT),
               await asyncio.start_server(connection, host=host, port=0, limit=READ_LIMIT)]
    port = servers[1].sockets[0].getsockname()[1]
    return Address(node=node, unix=unix, host=host, port=port), servers


@dataclasses.dataclass
class SharedPages:
    """A worker's and a shard's two shared mappings: the gradient (``request``) and the reply."""

    request: mmap.mmap
    reply: mmap.mmap

    @classmethod
    def make(cls, nbytes: int) -> tuple[str, "SharedPages"]:
        """New pages of ``nbytes`` each under a fresh name in :data:`SHM_DIR` (mode 0600)."""
        name = f"skate-{uuid.uuid4().hex}"
        try:
            return name, cls(*(_map(SHM_DIR / f"{name}{part}", nbytes, create=True) for part in (".request", ".reply")))
        except OSError:
            cls.remove(name)  # the request's file, if only the reply's failed
            raise

    @classmethod
    def open(cls, name: str, nbytes: int) -> "SharedPages":
        """The pages a worker made under ``name``, which must hold ``nbytes`` each.

        Raises:
            ValueError: a name the worker could not have made, or pages of another size.
        """
        if not _SHM_NAME.match(name):
            raise ValueError(f"not a shared-pages name: {name!r}")
        return cls(*(_map(SHM_DIR / f"{name}{part}", nbytes, create=False) for part in (".request", ".reply")))

    @staticmethod
    def remove(name: str) -> None:
        for part in (".request", ".reply"):
            with contextlib.suppress(FileNotFoundError):
                (SHM_DIR / f"{name}{part}").unlink()

    def close(self) -> None:
        """Unmap the pages; a mapping an array still views stays until that array goes."""
        for pages in (self.request, self.reply):
            with contextlib.suppress(BufferError):
                pages.close()


def _map(path: Path, nbytes: int, *, create: bool) -> mmap.mmap:
    flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = os.open(path, flags, 0o600)
    try:
        if create:
            os.ftruncate(fd, nbytes)
        elif os.fstat(fd).st_size != nbytes:
            raise ValueError(f"{path.name} holds {os.fstat(fd).st_size} bytes, not the slice's {nbytes}")
        return mmap.mmap(fd, nbytes)
    finally:
        os.close(fd)


async def _attach(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, nbytes: int) -> SharedPages | None:
    """The shard's side of the hello: map the worker's pages, if it named any, and say whether it did."""
    (length,) = SHARE.unpack(await reader.readexactly(SHARE.size))
    if length <= 0:
        return None
    if length > 64:
        raise ConnectionError("a shared-pages name too long")  # not a worker of this job's making
    name = (await reader.readexactly(length)).decode("ascii", errors="replace")
    try:
        pages: SharedPages | None = SharedPages.open(name, nbytes)
    except (OSError, ValueError):
        pages = None
    writer.write(b"\x01" if pages is not None else b"\x00")
    await writer.drain()
    return pages


class ShardLink:
    """A worker's connection to one shard (blocking: the worker has nothing else to do meanwhile)."""

    def __init__(self, address: Address, *, token: bytes, node: str, wire_dtype: np.dtype, shard: int,
                 shared_bytes: int | None = None) -> None:
        """``shared_bytes``: the slice's size on the wire, to share pages of that size with a shard
        on this node (``None``: payloads on the socket)."""
        self.shard = shard
        self.wire_dtype = np.dtype(wire_dtype)
        self.pages: SharedPages | None = None
        try:
            if address.node == node:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(address.unix)
            else:
                self.sock = socket.create_connection((address.host, address.port))
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.sendall(token)
            self.pages = self._share(shared_bytes if address.node == node else None)
        except OSError as error:
            raise ShardLost(shard, f"does not answer at {address}: {error}") from error

    def _share(self, nbytes: int | None) -> SharedPages | None:
        """The hello: make shared pages and name them to the shard (or name none); the names go once
        the shard has answered."""
        try:
            name, pages = SharedPages.make(nbytes) if nbytes else ("", None)
        except OSError:  # no /dev/shm here, or it is full: payloads on the socket
            name, pages = "", None
        try:
            self.sock.sendall(SHARE.pack(len(name)) + name.encode("ascii"))
            if pages is None:
                return None
            answer = bytearray(1)
            self._read_into(memoryview(answer))
        finally:
            if name:
                SharedPages.remove(name)
        if answer != b"\x01":
            pages.close()
            return None
        return pages

    def send(self, worker: int, read_version: int, grad: np.ndarray, count: int) -> None:
        """Push a gradient slice (its bytes are copied into the shared pages or the socket before this
        returns)."""
        try:
            if self.pages is not None:
                np.copyto(np.frombuffer(self.pages.request, dtype=self.wire_dtype), grad)
                self.sock.sendall(REQUEST.pack(worker, read_version, count, IN_SHARED_MEMORY))
                return
            payload = memoryview(np.ascontiguousarray(grad)).cast("B")
            self.sock.sendall(REQUEST.pack(worker, read_version, count, payload.nbytes))
            self.sock.sendall(payload)
        except OSError as error:
            raise ShardLost(self.shard, f"went away while a gradient was sent to it: {error}") from error

    def receive(self) -> tuple[np.ndarray, int]:
        """The reply to the last push: the parameters to use next and their version (in the shared
        pages, a view valid until the next push)."""
        header = bytearray(REPLY.size)
        self._read_into(memoryview(header))
        version, size = REPLY.unpack(header)
        if size == IN_SHARED_MEMORY and self.pages is not None:
            return np.frombuffer(self.pages.reply, dtype=self.wire_dtype), version
        values = np.empty(size // self.wire_dtype.itemsize, dtype=self.wire_dtype)
        self._read_into(memoryview(values).cast("B"))
        return values, version

    def _read_into(self, view: memoryview) -> None:
        done = 0
        while done < len(view):
            try:
                got = self.sock.recv_into(view[done:])
            except OSError as error:
                raise ShardLost(self.shard, f"went away during a push: {error}") from error
            if not got:
                raise ShardLost(self.shard, "closed its connection during a push (the shard died)")
            done += got

    def close(self) -> None:
        self.sock.close()
        if self.pages is not None:
            self.pages.close()
