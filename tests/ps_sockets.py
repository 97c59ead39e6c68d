"""Test doubles around the parameter server's sockets (:mod:`skate.engines.ps.wire`): a shard's push
and view served on an event loop in a thread, and a TCP proxy between a worker and a shard that can
keep what the worker sends or flip a bit of what the shard sends."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import threading
from typing import Any, Awaitable, Callable

import numpy as np

from skate.engines.ps.wire import Address, serve


class Served:
    """``push`` and ``view`` served on the shard's sockets, on an event loop in a thread."""

    def __init__(self, push: Callable[..., Awaitable[None]], view: Callable[[], tuple[np.ndarray, int]], dtype: Any,
                 *, token: bytes, num_workers: int, deadline_s: float) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        started = asyncio.run_coroutine_threadsafe(
            serve(push, view, np.dtype(dtype), token=token, num_workers=num_workers, node="node-a",
                  host="127.0.0.1", deadline_s=deadline_s), self.loop)
        self.address, self.servers = started.result(timeout=10)

    def stop(self) -> None:
        async def close() -> None:
            for server in self.servers:
                server.close()
            connections = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in connections:
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)


class Proxy:
    """Forwards one TCP connection to the shard at ``shard``; keeps what the worker sends in
    :attr:`sent`, and with ``flip_at`` flips the lowest bit of the shard's stream at that offset."""

    def __init__(self, shard: Address, *, flip_at: int | None = None) -> None:
        self.shard, self.flip_at = shard, flip_at
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = dataclasses.replace(shard, port=self.listener.getsockname()[1])
        self.sent = bytearray()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        worker, _ = self.listener.accept()
        shard = socket.create_connection((self.shard.host, self.shard.port))
        for sock in (worker, shard):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the worker's and the shard's are
        threading.Thread(target=_pipe, args=(worker, shard, self.sent, None), daemon=True).start()
        _pipe(shard, worker, None, self.flip_at)


def _pipe(source: socket.socket, sink: socket.socket, kept: bytearray | None, flip_at: int | None) -> None:
    seen = 0
    with contextlib.suppress(OSError):
        while chunk := source.recv(1 << 16):
            if kept is not None:
                kept += chunk
            if flip_at is not None and seen <= flip_at < seen + len(chunk):
                chunk = bytearray(chunk)
                chunk[flip_at - seen] ^= 1
            seen += len(chunk)
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
