"""Direct worker-shard connections, without Ray: a push and its reply, on Unix and TCP sockets, and a
shard that goes away."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import signal
import socket
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from skate.engines.ps.wire import REQUEST, SHARE, SHM_DIR, Address, serve, ShardLink, ShardLost

TOKEN = b"t" * 32


class FakeShard:
    """Adds each pushed gradient, times its example count, to its parameters."""

    def __init__(self, size: int, dtype: Any) -> None:
        self.params = np.zeros(size, dtype=dtype)
        self.version = 0
        self.pushes: list[tuple[int, int, int]] = []

    async def push(self, worker: int, read_version: int, grad: np.ndarray, count: int) -> None:
        self.pushes.append((worker, read_version, count))
        self.params = self.params + grad * count
        self.version += 1

    def view(self) -> tuple[np.ndarray, int]:
        return self.params, self.version


class Served:
    """A fake shard served on an event loop in a thread."""

    def __init__(self, shard: FakeShard, dtype: Any) -> None:
        self.shard = shard
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        started = asyncio.run_coroutine_threadsafe(
            serve(shard.push, shard.view, np.dtype(dtype), token=TOKEN, node="node-a", host="127.0.0.1"), self.loop)
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


def _serve_forever(sender: Connection) -> None:
    async def main() -> None:
        shard = FakeShard(5, np.float32)
        address, _ = await serve(shard.push, shard.view, np.dtype(np.float32), token=TOKEN, node="node-a", host="127.0.0.1")
        sender.send(address)
        await asyncio.Event().wait()

    asyncio.run(main())


@pytest.fixture
def served() -> Iterator[Served]:
    server = Served(FakeShard(5, np.float32), np.float32)
    yield server
    server.stop()


@pytest.mark.parametrize("node", ["node-a", "node-b"], ids=["unix", "tcp"])
def test_a_push_comes_back_as_the_shards_parameters_and_version(served: Served, node: str) -> None:
    link = ShardLink(served.address, token=TOKEN, node=node, wire_dtype=np.float32, shard=0)
    for step in range(3):
        link.send(1, step, np.arange(5, dtype=np.float32), 2)
        values, version = link.receive()
        assert version == step + 1
        np.testing.assert_array_equal(values, np.arange(5) * 2 * (step + 1))
    assert served.shard.pushes == [(1, 0, 2), (1, 1, 2), (1, 2, 2)]
    link.close()


def test_compressed_payloads_keep_their_dtype() -> None:
    server = Served(FakeShard(4, np.float16), np.float16)
    try:
        link = ShardLink(server.address, token=TOKEN, node="node-a", wire_dtype=np.float16, shard=0)
        link.send(0, 0, np.full(4, 0.5, dtype=np.float16), 1)
        values, _ = link.receive()
        assert values.dtype == np.float16 and values.tolist() == [0.5] * 4
    finally:
        server.stop()


def test_a_shard_process_that_dies_is_named_by_the_worker() -> None:
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(target=_serve_forever, args=(sender,), daemon=True)
    process.start()
    try:
        link = ShardLink(receiver.recv(), token=TOKEN, node="node-a", wire_dtype=np.float32, shard=3)
        link.send(0, 0, np.ones(5, dtype=np.float32), 1)
        assert link.receive()[1] == 1
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        with pytest.raises(ShardLost, match="shard 3 (closed its connection|went away)"):
            link.send(0, 1, np.ones(5, dtype=np.float32), 1)
            link.receive()
    finally:
        process.kill()


def test_an_address_nobody_listens_on_is_named() -> None:
    nowhere = Address(node="node-a", unix="\0skate-test-nobody-here", host="127.0.0.1", port=1)
    with pytest.raises(ShardLost, match="shard 2 does not answer"):
        ShardLink(nowhere, token=TOKEN, node="node-a", wire_dtype=np.float32, shard=2)


def test_the_lost_shard_survives_pickling_as_ray_sends_it() -> None:
    error = pickle.loads(pickle.dumps(ShardLost(1, "closed its connection during a push (the shard died)")))
    assert error.shard == 1 and str(error) == "shard 1 closed its connection during a push (the shard died)"


def test_a_worker_that_hangs_up_mid_push_leaves_the_shard_serving(served: Served) -> None:
    quitter = ShardLink(served.address, token=TOKEN, node="node-a", wire_dtype=np.float32, shard=0)
    quitter.sock.sendall(b"\x00" * 10)  # half a header, then gone
    quitter.close()
    link = ShardLink(served.address, token=TOKEN, node="node-a", wire_dtype=np.float32, shard=0)
    link.send(0, 0, np.ones(5, dtype=np.float32), 1)
    assert link.receive()[1] == 1


@pytest.mark.parametrize("node", ["node-a", "node-b"], ids=["unix", "tcp"])
def test_a_connection_without_the_jobs_token_is_hung_up_on(served: Served, node: str) -> None:
    with pytest.raises(ShardLost, match="shard 0"):  # at the hello already, or at the first push
        stranger = ShardLink(served.address, token=b"x" * 32, node=node, wire_dtype=np.float32, shard=0)
        stranger.send(0, 0, np.ones(5, dtype=np.float32), 1)
        stranger.receive()
    assert served.shard.pushes == []


def _shm_names() -> set[str]:
    return {path.name for path in SHM_DIR.glob("skate-*")}


needs_shm = pytest.mark.skipif(not SHM_DIR.is_dir(), reason="no /dev/shm here")


@needs_shm
def test_on_one_node_payloads_go_through_shared_pages_and_their_names_are_gone(served: Served) -> None:
    before = _shm_names()
    link = ShardLink(served.address, token=TOKEN, node="node-a", wire_dtype=np.float32, shard=0, shared_bytes=20)
    assert link.pages is not None
    assert _shm_names() == before  # removed once the shard mapped them
    for step in range(3):
        link.send(1, step, np.arange(5, dtype=np.float32), 2)
        values, version = link.receive()
        assert version == step + 1
        np.testing.assert_array_equal(values, np.arange(5) * 2 * (step + 1))
    assert np.frombuffer(link.pages.request, dtype=np.float32).tolist() == list(range(5))  # the gradient lay there
    assert served.shard.pushes == [(1, 0, 2), (1, 1, 2), (1, 2, 2)]
    link.close()


@needs_shm
def test_a_worker_on_another_node_or_with_pages_of_the_wrong_size_sends_on_the_socket(served: Served) -> None:
    far = ShardLink(served.address, token=TOKEN, node="node-b", wire_dtype=np.float32, shard=0, shared_bytes=20)
    wrong = ShardLink(served.address, token=TOKEN, node="node-a", wire_dtype=np.float32, shard=0, shared_bytes=24)
    assert far.pages is None and wrong.pages is None
    for link in (far, wrong):
        link.send(0, 0, np.ones(5, dtype=np.float32), 1)
        assert link.receive()[0].tolist() == served.shard.params.tolist()
        link.close()
    assert not _shm_names()  # the refused pages' names are gone too


@needs_shm
def test_a_hello_naming_anything_but_a_workers_pages_is_refused(served: Served) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(served.address.unix)
    name = b"../../etc/passwd"
    sock.sendall(TOKEN + SHARE.pack(len(name)) + name)
    assert sock.recv(1) == b"\x00"  # no pages: the worker must send its payloads on the socket
    sock.close()


@pytest.mark.parametrize("size", [24, -1, -5], ids=["too-long", "shared-without-pages", "negative"])
def test_a_push_that_is_not_the_shards_slice_is_hung_up_on_before_its_payload(served: Served, size: int) -> None:
    link = ShardLink(served.address, token=TOKEN, node="node-a", wire_dtype=np.float32, shard=0)
    link.sock.sendall(REQUEST.pack(0, 0, 1, size) + b"\x00" * max(size, 0))
    with pytest.raises(ShardLost, match="shard 0"):
        link.receive()
    assert served.shard.pushes == []


@needs_shm
def test_pages_that_cannot_be_made_leave_no_file_and_the_payloads_go_on_the_socket(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    import skate.engines.ps.wire as wire

    made = wire._map

    def reply_fails(path: Path, nbytes: int, *, create: bool) -> Any:
        if path.name.endswith(".reply"):
            raise OSError(28, "No space left on device")
        return made(path, nbytes, create=create)

    monkeypatch.setattr(wire, "_map", reply_fails)
    link = ShardLink(served.address, token=TOKEN, node="node-a", wire_dtype=np.float32, shard=0, shared_bytes=20)
    assert link.pages is None and not _shm_names()
    link.send(0, 0, np.ones(5, dtype=np.float32), 1)
    assert link.receive()[1] == 1
    link.close()
