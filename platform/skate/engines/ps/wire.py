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
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import secrets
import socket
import struct
import uuid
from typing import Awaitable, Callable

import numpy as np

from skate.engines.faults import ConnectionLost

REQUEST = struct.Struct("<iqqq")
"""A push: worker rank, the version its parameters were read at, examples in the batch, payload bytes."""

REPLY = struct.Struct("<qq")
"""A reply: the shard's version, payload bytes."""

READ_LIMIT = 1 << 26
"""The shard's stream buffer (a whole slice may be read in one go)."""

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
        try:
            if not hmac.compare_digest(await reader.readexactly(len(token)), token):
                return  # not one of this job's workers
            while True:
                worker, read_version, count, size = REQUEST.unpack(await reader.readexactly(REQUEST.size))
                grad = np.frombuffer(await reader.readexactly(size), dtype=wire_dtype)
                await push(worker, read_version, grad, count)
                values, version = view()
                writer.write(REPLY.pack(version, values.nbytes))
                writer.write(memoryview(values).cast("B"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker went away; the engine makes it leave the shard's barriers
        finally:
            writer.close()

    unix = f"\0skate-shard-{uuid.uuid4().hex}"
    servers = [await asyncio.start_unix_server(connection, path=unix, limit=READ_LIMIT),
               await asyncio.start_server(connection, host=host, port=0, limit=READ_LIMIT)]
    port = servers[1].sockets[0].getsockname()[1]
    return Address(node=node, unix=unix, host=host, port=port), servers


class ShardLink:
    """A worker's connection to one shard (blocking: the worker has nothing else to do meanwhile)."""

    def __init__(self, address: Address, *, token: bytes, node: str, wire_dtype: np.dtype, shard: int) -> None:
        self.shard = shard
        self.wire_dtype = np.dtype(wire_dtype)
        try:
            if address.node == node:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(address.unix)
            else:
                self.sock = socket.create_connection((address.host, address.port))
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.sendall(token)
        except OSError as error:
            raise ShardLost(shard, f"does not answer at {address}: {error}") from error

    def send(self, worker: int, read_version: int, grad: np.ndarray, count: int) -> None:
        """Push a gradient slice (its bytes are copied into the socket before this returns)."""
        payload = memoryview(np.ascontiguousarray(grad)).cast("B")
        try:
            self.sock.sendall(REQUEST.pack(worker, read_version, count, payload.nbytes))
            self.sock.sendall(payload)
        except OSError as error:
            raise ShardLost(self.shard, f"went away while a gradient was sent to it: {error}") from error

    def receive(self) -> tuple[np.ndarray, int]:
        """The reply to the last push: the parameters to use next and their version."""
        header = bytearray(REPLY.size)
        self._read_into(memoryview(header))
        version, size = REPLY.unpack(header)
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
