"""Direct connections between workers and shards: a worker's push is one message on a socket.

An actor call costs about a millisecond of Ray's machinery on each side, and a Ray Compiled Graph
keeps a reader spinning on every channel (on a small machine the spinning takes CPU from the
workers' computation). Here each worker holds one stream socket to each shard: a Unix socket
when both are on one node, TCP between nodes. A push is a 28-byte header and the gradient's
bytes; the reply is the shard's version and its parameters in the same wire format. The shard
blocks in the kernel while it waits; on one node a worker polls its socket for the reply for up to
:data:`POLL_S` first (giving its core to any other process ready on it), because a reply there
comes within a fraction of a millisecond, sooner than a sleep and a wake-up (:meth:`ShardLink.receive`).
A round trip costs tens of microseconds plus the copies.

The shard serves the connections on its asyncio event loop, through the same update rule as an
actor call (:meth:`~skate.engines.ps.shard.ParameterShard.push`), so sync barriers and SSP
waits work unchanged. A connection that closes is the death of the process at the other end: the
shard stops serving that worker (the engine makes it leave the barriers), and a worker whose shard
went away raises :class:`ShardLost`, which the engine treats as the shard's death.

Anything on the node can connect to an abstract Unix socket, and anything on the cluster's network
to the TCP port, so a connection opens by proving, both ways, that its ends hold the job's token
(random, made by the engine for its actors alone, new at each rollback), which never crosses the
wire (:mod:`skate.engines.ps.auth`):

1. The shard sends a nonce (32 bytes).
2. The worker sends its own nonce and its proof (32 + 32 bytes); the shard hangs up on a wrong one.
3. The shard sends its proof (32 bytes), which the worker checks before it sends anything else.
4. The worker's hello: :data:`HELLO` (its ``authenticate_messages`` and the length of the name of
   its shared pages, 0 for none), the name, and the hello's tag. The shard answers one byte (1: it
   mapped the pages) and that answer's tag.

A shard closes a connection that has not done all that within a deadline, closes new connections
while too many are authenticating, and keeps two authenticated connections per worker at most
(:class:`~skate.engines.ps.auth.Admission`). Then each push is a :data:`REQUEST` header and the
payload, each reply a :data:`REPLY` header and the payload, each followed by a 16-byte tag when the
connection seals its messages (:func:`~skate.engines.ps.auth.seals_messages`). The shard checks a
header's fields (the worker's rank, the example count, the version read, the payload's size) before
it reads the payload, and the tag before it uses the payload; at the first that is wrong it hangs up
on that connection, and on no other. A worker checks a reply's size and tag the same way.

On one node the payloads can skip the socket (``shared_memory``): the worker makes two files in
``/dev/shm`` (its gradient's and the reply's, each the slice's size, readable by its user alone),
names them in its hello, and removes them once the shard has answered (the mappings outlive the
names, so nothing is left behind if either side dies). A push then writes the gradient into the
shared pages and sends the header alone, with the size ``-1``; the shard reads the gradient where it
lies and writes its parameters into the reply's pages. That saves the socket's two copies of each
payload each way, which for a model of tens of MB is most of a step's transport. A worker on
another node, or where ``/dev/shm`` is missing, names no pages and its payloads go on the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import mmap
import os
import re
import socket
import struct
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

import numpy as np

from skate.engines.faults import ConnectionLost
from skate.engines.ps.auth import (Admission, AUTH_DEADLINE_S, new_nonce, NONCE_BYTES, POLICIES, proof, proves,
                                   SEAL_BYTES, seals_messages, Session, TAG_BYTES)
from skate.engines.ps.config import MessageAuth

REQUEST = struct.Struct("<iqqq")
"""A push: worker rank, the version its parameters were read at, examples in the batch, payload bytes."""

REPLY = struct.Struct("<qq")
"""A reply: the shard's version, payload bytes."""

HELLO = struct.Struct("<Bq")
"""After the handshake: the worker's ``authenticate_messages`` (its index in
:data:`~skate.engines.ps.auth.POLICIES`) and the length of the name of its shared pages that follows
(0: none)."""

PAGES_NAME_MAX = 64
"""The longest name of shared pages a hello may carry (a worker's are 38 characters)."""

READ_LIMIT = 1 << 26
"""The shard's stream buffer (a whole slice may be read in one go)."""

IN_SHARED_MEMORY = -1
"""The payload size of a header whose payload is in the shared pages."""

POLL_S = 0.001
"""How long a worker polls for a shard's reply on one node before it sleeps on the socket. A
synchronous step of the seed's classifier at one worker has its reply 0.3-0.4 ms after the push
(the shard's update and two hand-overs); sleeping for it instead cost 1.5-2 % of the step's
throughput (``docs/internals.md``). Longer waits, for the other workers of a synchronous step, sleep."""

SHM_DIR = Path("/dev/shm")
_SHM_NAME = re.compile(r"skate-[0-9a-f]{32}")

Push = Callable[[int, int, np.ndarray, int], Awaitable[None]]
"""The shard's :meth:`~skate.engines.ps.shard.ParameterShard.push`."""

View = Callable[[np.ndarray | None], tuple[np.ndarray, int]]
"""The shard's parameters in the wire format and their version: uncopied, or written into the
array given (a worker's reply pages)."""


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


async def serve(push: Push, view: View, wire_dtype: np.dtype, *, token: bytes, num_workers: int, node: str,
                host: str, deadline_s: float = AUTH_DEADLINE_S) -> tuple[Address, list[asyncio.AbstractServer]]:
    """Start serving pushes on the running event loop; returns the address and the servers.

    The reply is written from the parameters themselves: ``write`` sends what the socket takes at
    once and copies the rest before it returns, and nothing changes them in between.

    Args:
        token: what the job's workers prove they hold.
        num_workers: the job's workers: the ranks a push may name, and how many connections the
            shard keeps (:class:`~skate.engines.ps.auth.Admission`).
        deadline_s: how long an accepted connection has for the handshake and the hello.
    """
    if deadline_s <= 0:
        raise ValueError(f"deadline_s must be > 0, not {deadline_s}")
    admission = Admission(num_workers=num_workers)
    nbytes = view(None)[0].nbytes

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened: tuple[Session, SharedPages | None] | None = None
        try:
            if not admission.accepts(writer):
                return  # a flood of connections, not the job's workers
            opened = await asyncio.wait_for(_open(reader, writer, token, admission, nbytes), deadline_s)
            if opened is not None:
                await pushes(reader, writer, *opened)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the worker went away (the engine makes it leave the shard's barriers), or never proved itself
        finally:
            admission.release(writer)
            writer.close()
            if opened is not None and opened[1] is not None:
                opened[1].close()

    async def pushes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: Session,
                     pages: SharedPages | None) -> None:
        """Serve a worker's pushes until it goes away or breaks a rule (then hang up)."""
        while True:
            header = await reader.readexactly(REQUEST.size)
            worker, read_version, count, size = REQUEST.unpack(header)
            if not (0 <= worker < num_workers and count >= 0 and read_version >= 0
                    and (size == nbytes or (size == IN_SHARED_MEMORY and pages is not None))):
                return  # not a push of this job's workers: hang up before reading its payload
            payload: Any = (pages.request if pages is not None and size == IN_SHARED_MEMORY
                            else await reader.readexactly(size))
            if session.sealed and not session.opens(await reader.readexactly(SEAL_BYTES), header, payload):
                return  # forged, altered or replayed on the way
            await push(worker, read_version, np.frombuffer(payload, dtype=wire_dtype), count)
            if pages is not None:
                _, version = view(np.frombuffer(pages.reply, dtype=wire_dtype))
                header, payload = REPLY.pack(version, IN_SHARED_MEMORY), pages.reply
                writer.write(header)
            else:
                values, version = view(None)
                header, payload = REPLY.pack(version, values.nbytes), memoryview(values).cast("B")
                writer.write(header)
                writer.write(payload)
            if session.sealed:
                writer.write(session.seal(header, payload))
            await writer.drain()

    unix = f"\0skate-shard-{uuid.uuid4().hex}"
    servers = [await asyncio.start_unix_server(connection, path=unix, limit=READ_LIMIT),
               await asyncio.start_server(connection, host=host, port=0, limit=READ_LIMIT)]
    port = servers[1].sockets[0].getsockname()[1]
    return Address(node=node, unix=unix, host=host, port=port), servers


async def _open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: bytes, admission: Admission,
                nbytes: int) -> tuple[Session, SharedPages | None] | None:
    """The shard's side of the handshake and the hello: the connection's session and the worker's
    shared pages (``None`` if it named none the shard could map), or ``None`` to hang up."""
    nonce_s = new_nonce()
    writer.write(nonce_s)
    answer = await reader.readexactly(NONCE_BYTES + TAG_BYTES)
    nonce_w = answer[:NONCE_BYTES]
    if not proves(answer[NONCE_BYTES:], token, "worker", nonce_s, nonce_w):
        return None  # not one of this job's workers
    if not admission.authenticated(writer):
        return None  # more connections than the job's workers and their replacements
    writer.write(proof(token, "shard", nonce_s, nonce_w))
    session = Session(token, "shard", nonce_s, nonce_w)
    hello = await reader.readexactly(HELLO.size)
    policy, length = HELLO.unpack(hello)
    if policy >= len(POLICIES) or not 0 <= length <= PAGES_NAME_MAX:
        return None  # not a hello of this job's making
    name = await reader.readexactly(length)
    if not session.opens(await reader.readexactly(SEAL_BYTES), hello, name):
        return None
    pages = _map_pages(name.decode("ascii", errors="replace"), nbytes) if length else None
    try:
        mapped = b"\x01" if pages is not None else b"\x00"
        writer.write(mapped + session.seal(mapped))
        await writer.drain()
    except BaseException:
        if pages is not None:
            pages.close()
        raise
    session.sealed = seals_messages(POLICIES[policy], shared_pages=pages is not None)
    return session, pages


def _map_pages(name: str, nbytes: int) -> SharedPages | None:
    """The worker's pages named ``name``, or ``None`` when they cannot be (the payloads then go on
    the socket)."""
    try:
        return SharedPages.open(name, nbytes)
    except (OSError, ValueError):
        return None


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
        if not _SHM_NAME.fullmatch(name):
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


def _connect(address: Address, *, local: bool) -> socket.socket:
    """A socket connected to the shard at ``address``: its Unix socket if ``local``, else TCP; it
    times out after :data:`~skate.engines.ps.auth.AUTH_DEADLINE_S` until the handshake is done, so
    that a silent impostor is not waited on for ever."""
    if not local:
        sock = socket.create_connection((address.host, address.port), timeout=AUTH_DEADLINE_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(AUTH_DEADLINE_S)
    try:
        sock.connect(address.unix)
    except OSError:
        sock.close()
        raise
    return sock


class ShardLink:
    """A worker's connection to one shard (blocking: the worker has nothing else to do meanwhile).

    Args:
        address: where the shard listens.
        token: what the connection proves it holds, and the shard must prove too.
        node: the worker's node (a shard on it is reached on its Unix socket, else by TCP).
        wire_dtype: the payloads' dtype.
        shard: the shard's index, to name it in a :class:`ShardLost`.
        slice_bytes: the shard's slice's size on the wire (every payload's).
        shared_memory: share pages with a shard on this node for the payloads.
        authenticate: whether pushes and replies carry tags (:func:`~skate.engines.ps.auth.seals_messages`).

    Raises:
        ShardLost: the shard cannot be reached, hangs up, or does not prove it holds ``token``.
    """

    def __init__(self, address: Address, *, token: bytes, node: str, wire_dtype: np.dtype, shard: int,
                 slice_bytes: int, shared_memory: bool = False, authenticate: MessageAuth = "auto") -> None:
        self.shard = shard
        self.wire_dtype = np.dtype(wire_dtype)
        self.slice_bytes = slice_bytes
        self.pages: SharedPages | None = None
        self.local = local = address.node == node
        try:
            self.sock = _connect(address, local=local)
        except OSError as error:
            raise ShardLost(shard, f"does not answer at {address}: {error}") from error
        try:
            self.session = self._prove(token)
            self.pages = self._hello(authenticate, share=shared_memory and local)
            self.sock.settimeout(None)
            # Where a push's payload is best written (the shared pages, or this link's own buffer for
            # the socket): send then copies nothing more.
            self.payload = (np.frombuffer(self.pages.request, dtype=self.wire_dtype) if self.pages is not None
                            else np.empty(slice_bytes // self.wire_dtype.itemsize, self.wire_dtype))
            # Where the shard writes its replies, on one node (receive returns this array).
            self.reply = np.frombuffer(self.pages.reply, dtype=self.wire_dtype) if self.pages is not None else None
        except ShardLost:
            self.sock.close()
            raise
        except OSError as error:
            self.sock.close()
            raise ShardLost(shard, f"does not answer at {address}: {error}") from error

    def _prove(self, token: bytes) -> Session:
        """The worker's side of the handshake."""
        nonce_s = self._read(NONCE_BYTES, "the handshake")
        nonce_w = new_nonce()
        self.sock.sendall(nonce_w + proof(token, "worker", nonce_s, nonce_w))
        if not proves(self._read(TAG_BYTES, "the handshake"), token, "shard", nonce_s, nonce_w):
            raise ShardLost(self.shard, "did not prove it holds the job's token: not this job's shard")
        return Session(token, "worker", nonce_s, nonce_w)

    def _hello(self, policy: MessageAuth, *, share: bool) -> SharedPages | None:
        """Say how messages are authenticated, and make shared pages and name them to the shard (or
        name none); the names go once the shard has answered. Returns the pages the shard mapped."""
        try:
            name, pages = SharedPages.make(self.slice_bytes) if share else ("", None)
        except OSError:  # no /dev/shm here, or it is full: payloads on the socket
            name, pages = "", None
        try:
            hello = HELLO.pack(POLICIES.index(policy), len(name)) + name.encode("ascii")
            self.sock.sendall(hello + self.session.seal(hello))
            answer = self._read(1 + SEAL_BYTES, "the hello")
            if not self.session.opens(answer[1:], answer[:1]):
                raise ShardLost(self.shard, "answered the hello with a wrong tag")
        except BaseException:
            if pages is not None:
                pages.close()
            raise
        finally:
            if name:
                SharedPages.remove(name)
        if pages is not None and answer[:1] != b"\x01":
            pages.close()
            pages = None
        self.session.sealed = seals_messages(policy, shared_pages=pages is not None)
        return pages

    @property
    def framing_bytes(self) -> int:
        """What a push and its reply add to their payloads on the socket: the headers, and the tags."""
        return REQUEST.size + REPLY.size + (2 * SEAL_BYTES if self.session.sealed else 0)

    def send(self, worker: int, read_version: int, grad: np.ndarray, count: int) -> None:
        """Push a gradient slice (its bytes are in the shared pages or the socket before this returns;
        one written into :attr:`payload` is not copied again)."""
        try:
            if self.pages is not None:
                if grad is not self.payload:
                    np.copyto(self.payload, grad)
                header, payload = REQUEST.pack(worker, read_version, count, IN_SHARED_MEMORY), self.pages.request
                self.sock.sendall(header)
            else:
                payload = memoryview(np.ascontiguousarray(grad)).cast("B")
                header = REQUEST.pack(worker, read_version, count, payload.nbytes)
                self.sock.sendall(header)
                self.sock.sendall(payload)
            if self.session.sealed:  # tagged once the payload went: the shard reads it meanwhile
                self.sock.sendall(self.session.seal(header, payload))
        except OSError as error:
            raise ShardLost(self.shard, f"went away while a gradient was sent to it: {error}") from error

    def receive(self) -> tuple[np.ndarray, int]:
        """The reply to the last push: the parameters to use next and their version (in the shared
        pages, a view valid until the next push).

        Raises:
            ShardLost: the shard went away, or sent a reply that is not its slice or fails its tag.
        """
        if self.local:
            self._poll()
        header = self._read(REPLY.size, "a push")
        version, size = REPLY.unpack(header)
        if size == IN_SHARED_MEMORY and self.pages is not None and self.reply is not None:
            values, payload = self.reply, self.pages.reply
        elif size == self.slice_bytes:
            values = np.empty(size // self.wire_dtype.itemsize, dtype=self.wire_dtype)
            payload = memoryview(values).cast("B")
            self._read_into(payload, "a push")
        else:
            raise ShardLost(self.shard, f"replied with {size} bytes, not its slice's {self.slice_bytes}")
        if self.session.sealed and not self.session.opens(self._read(SEAL_BYTES, "a push"), header, payload):
            raise ShardLost(self.shard, "sent a reply whose tag is wrong (forged, altered or replayed on the way)")
        return values, version

    def _poll(self) -> None:
        """Return once the reply's first bytes are there, the shard hung up, or :data:`POLL_S` has
        passed, checking the socket without sleeping on it (the read that follows reports a hang-up)."""
        deadline = time.perf_counter() + POLL_S
        while time.perf_counter() < deadline:
            try:
                self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                return
            except BlockingIOError:
                os.sched_yield()
            except OSError:
                return

    def _read(self, nbytes: int, during: str) -> bytes:
        buffer = bytearray(nbytes)
        self._read_into(memoryview(buffer), during)
        return bytes(buffer)

    def _read_into(self, view: memoryview, during: str) -> None:
        done = 0
        while done < len(view):
            try:
                got = self.sock.recv_into(view[done:])
            except OSError as error:
                raise ShardLost(self.shard, f"went away during {during}: {error}") from error
            if not got:
                raise ShardLost(self.shard, f"closed its connection during {during} "
                                            "(the shard died, or refused this worker)")
            done += got

    def close(self) -> None:
        self.sock.close()
        self.payload, self.reply = np.empty(0, self.wire_dtype), None  # lets go of the pages
        if self.pages is not None:
            self.pages.close()
