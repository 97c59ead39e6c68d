"""Direct worker-shard connections, without Ray: a push and its reply, on Unix and TCP sockets, a
shard that goes away, and the rules that keep strangers out (the handshake, the deadline, the
connection limits, the header checks and the messages' tags)."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import signal
import socket
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from skate.engines.ps.auth import (CONNECTIONS_PER_WORKER, new_nonce, NONCE_BYTES, PENDING_SLACK, POLICIES, proof,
                                   SEAL_BYTES, Session, TAG_BYTES)
from skate.engines.ps.wire import HELLO, REPLY, REQUEST, SHM_DIR, Address, serve, ShardLink, ShardLost

import ps_sockets
from ps_sockets import Proxy

TOKEN = b"t" * 32
WORKERS = 4
SLICE = 20
"""The fake shard's 5 float32 parameters on the wire."""


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

    def view(self, into: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        if into is not None:
            np.copyto(into, self.params)
            return into, self.version
        return self.params, self.version


class Served(ps_sockets.Served):
    """A fake shard served on an event loop in a thread."""

    def __init__(self, shard: FakeShard, dtype: Any, *, num_workers: int = WORKERS, deadline_s: float = 5.0) -> None:
        self.shard = shard
        super().__init__(shard.push, shard.view, dtype, token=TOKEN, num_workers=num_workers, deadline_s=deadline_s)


def _serve_forever(sender: Connection) -> None:
    async def main() -> None:
        shard = FakeShard(5, np.float32)
        address, _ = await serve(shard.push, shard.view, np.dtype(np.float32), token=TOKEN, num_workers=WORKERS,
                                 node="node-a", host="127.0.0.1")
        sender.send(address)
        await asyncio.Event().wait()

    asyncio.run(main())


def _link(address: Address, *, node: str = "node-a", **options: Any) -> ShardLink:
    return ShardLink(address, token=TOKEN, node=node, wire_dtype=np.float32, shard=0, slice_bytes=SLICE, **options)


@pytest.fixture
def served() -> Iterator[Served]:
    server = Served(FakeShard(5, np.float32), np.float32)
    yield server
    server.stop()


@pytest.mark.parametrize("node", ["node-a", "node-b"], ids=["unix", "tcp"])
def test_a_push_comes_back_as_the_shards_parameters_and_version(served: Served, node: str) -> None:
    link = _link(served.address, node=node)
    for step in range(3):
        link.send(1, step, np.arange(5, dtype=np.float32), 2)
        values, version = link.receive()
        assert version == step + 1
        np.testing.assert_array_equal(values, np.arange(5) * 2 * (step + 1))
    assert served.shard.pushes == [(1, 0, 2), (1, 1, 2), (1, 2, 2)]
    link.close()


class SlowShard(FakeShard):
    """Takes ``delay_s`` over each push, as a shard's update does."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(5, np.float32)
        self.delay_s = delay_s

    async def push(self, worker: int, read_version: int, grad: np.ndarray, count: int) -> None:
        await asyncio.sleep(self.delay_s)
        await super().push(worker, read_version, grad, count)


@pytest.mark.parametrize(("node", "delay_s", "polls"), [("node-a", 0.0003, True), ("node-b", 0.0003, False),
                                                        ("node-a", 0.01, True)],
                         ids=["unix-within-the-poll", "tcp", "unix-past-the-poll"])
def test_on_one_node_a_worker_polls_for_its_reply_and_still_gets_one_that_comes_later(
        monkeypatch: pytest.MonkeyPatch, node: str, delay_s: float, polls: bool) -> None:
    server = Served(SlowShard(delay_s), np.float32)
    yields: list[None] = []
    try:
        link = _link(server.address, node=node)
        monkeypatch.setattr(os, "sched_yield", lambda: yields.append(None))
        began = time.perf_counter()
        for step in range(3):
            link.send(1, step, np.ones(5, dtype=np.float32), 1)
            values, version = link.receive()
            assert version == step + 1 and values.tolist() == [step + 1.0] * 5
        assert time.perf_counter() - began >= 3 * delay_s
        assert bool(yields) == polls
        link.close()
    finally:
        server.stop()


def test_compressed_payloads_keep_their_dtype() -> None:
    server = Served(FakeShard(4, np.float16), np.float16)
    try:
        link = ShardLink(server.address, token=TOKEN, node="node-a", wire_dtype=np.float16, shard=0, slice_bytes=8)
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
        link = ShardLink(receiver.recv(), token=TOKEN, node="node-a", wire_dtype=np.float32, shard=3, slice_bytes=SLICE)
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
        ShardLink(nowhere, token=TOKEN, node="node-a", wire_dtype=np.float32, shard=2, slice_bytes=SLICE)


def test_the_lost_shard_survives_pickling_as_ray_sends_it() -> None:
    error = pickle.loads(pickle.dumps(ShardLost(1, "closed its connection during a push (the shard died)")))
    assert error.shard == 1 and str(error) == "shard 1 closed its connection during a push (the shard died)"


def test_a_worker_that_hangs_up_mid_push_leaves_the_shard_serving(served: Served) -> None:
    quitter = _link(served.address)
    quitter.sock.sendall(b"\x00" * 10)  # half a header, then gone
    quitter.close()
    link = _link(served.address)
    link.send(0, 0, np.ones(5, dtype=np.float32), 1)
    assert link.receive()[1] == 1


@pytest.mark.parametrize("node", ["node-a", "node-b"], ids=["unix", "tcp"])
def test_a_connection_without_the_jobs_token_is_hung_up_on(served: Served, node: str) -> None:
    with pytest.raises(ShardLost, match="shard 0 closed its connection during the handshake"):
        ShardLink(served.address, token=b"x" * 32, node=node, wire_dtype=np.float32, shard=0, slice_bytes=SLICE)
    assert served.shard.pushes == []


def _shm_names() -> set[str]:
    return {path.name for path in SHM_DIR.glob("skate-*")}


needs_shm = pytest.mark.skipif(not SHM_DIR.is_dir(), reason="no /dev/shm here")


@needs_shm
def test_on_one_node_payloads_go_through_shared_pages_and_their_names_are_gone(served: Served) -> None:
    before = _shm_names()
    link = _link(served.address, shared_memory=True)
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
def test_a_worker_on_another_node_or_with_pages_of_the_wrong_size_sends_on_the_socket(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    import skate.engines.ps.wire as wire

    far = _link(served.address, node="node-b", shared_memory=True)
    made = wire.SharedPages.make
    monkeypatch.setattr(wire.SharedPages, "make", lambda nbytes: made(nbytes + 4))
    wrong = _link(served.address, shared_memory=True)
    assert far.pages is None and wrong.pages is None
    for link in (far, wrong):
        link.send(0, 0, np.ones(5, dtype=np.float32), 1)
        assert link.receive()[0].tolist() == served.shard.params.tolist()
        link.close()
    assert not _shm_names()  # the refused pages' names are gone too


@needs_shm
def test_a_hello_naming_anything_but_a_workers_pages_is_refused(served: Served) -> None:
    sock, session = _proven(served.address)
    assert _hello(sock, session, name=b"../../etc/passwd") == b"\x00"  # no pages: payloads go on the socket
    sock.close()


@pytest.mark.parametrize(("worker", "read_version", "count", "size"),
                         [(0, 0, 1, 24), (0, 0, 1, -1), (0, 0, 1, -5), (0, 0, 1, 1 << 40), (-1, 0, 1, SLICE),
                          (WORKERS, 0, 1, SLICE), (0, 0, -1, SLICE), (0, -1, 1, SLICE)],
                         ids=["too-long", "shared-without-pages", "negative-size", "huge", "negative-rank",
                              "rank-past-the-workers", "negative-count", "negative-version"])
def test_a_push_whose_header_is_out_of_range_is_hung_up_on_without_its_payload_and_others_go_on(
        served: Served, worker: int, read_version: int, count: int, size: int) -> None:
    bad = _link(served.address)
    good = _link(served.address)
    bad.sock.settimeout(5)
    bad.sock.sendall(REQUEST.pack(worker, read_version, count, size))  # no payload: the shard must not wait for one
    with pytest.raises(ShardLost, match="shard 0 closed its connection"):
        bad.receive()
    assert served.shard.pushes == []
    good.send(1, 0, np.ones(5, dtype=np.float32), 1)
    assert good.receive()[1] == 1
    good.close()


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
    link = _link(served.address, shared_memory=True)
    assert link.pages is None and not _shm_names()
    link.send(0, 0, np.ones(5, dtype=np.float32), 1)
    assert link.receive()[1] == 1
    link.close()


def _connect(address: Address, *, tcp: bool = False) -> socket.socket:
    if tcp:
        return socket.create_connection((address.host, address.port), timeout=5)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(address.unix)
    return sock


def _recv(sock: socket.socket, nbytes: int) -> bytes:
    """Up to ``nbytes``: fewer when the other end closes first."""
    got = b""
    with contextlib.suppress(ConnectionResetError):
        while len(got) < nbytes and (chunk := sock.recv(nbytes - len(got))):
            got += chunk
    return got


def _closed(sock: socket.socket, timeout_s: float = 5.0) -> bool:
    """Whether the other end closes ``sock`` within ``timeout_s`` (what it sends meanwhile is dropped)."""
    sock.settimeout(timeout_s)
    try:
        while sock.recv(1 << 16):
            pass
    except socket.timeout:
        return False
    except ConnectionResetError:
        pass
    return True


def _proven(address: Address, *, tcp: bool = False) -> tuple[socket.socket, Session]:
    """A raw connection through the worker's side of the handshake."""
    sock = _connect(address, tcp=tcp)
    nonce_s, nonce_w = _recv(sock, NONCE_BYTES), new_nonce()
    sock.sendall(nonce_w + proof(TOKEN, "worker", nonce_s, nonce_w))
    assert _recv(sock, TAG_BYTES) == proof(TOKEN, "shard", nonce_s, nonce_w)
    return sock, Session(TOKEN, "worker", nonce_s, nonce_w)


def _hello(sock: socket.socket, session: Session, *, name: bytes = b"") -> bytes:
    """Send a worker's hello; returns the shard's answer (1: it mapped the pages), its tag checked."""
    hello = HELLO.pack(POLICIES.index("auto"), len(name)) + name
    sock.sendall(hello + session.seal(hello))
    answer = _recv(sock, 1 + SEAL_BYTES)
    assert session.opens(answer[1:], answer[:1])
    return answer[:1]


def _eventually(make: Callable[[], ShardLink], timeout_s: float = 5.0) -> ShardLink:
    """``make()`` once it stops raising :class:`ShardLost` (the shard frees a connection when it sees it close)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return make()
        except ShardLost:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Impostor:
    """A listener at a shard's address without the job's token: it sends a nonce and a wrong proof,
    and keeps all the worker sends until the worker closes."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = Address(node="node-a", unix="\0skate-test-impostor", host="127.0.0.1",
                               port=self.listener.getsockname()[1])
        self.received = b""
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        sock, _ = self.listener.accept()
        sock.settimeout(5)
        sock.sendall(new_nonce())
        self.received = _recv(sock, NONCE_BYTES + TAG_BYTES)
        sock.sendall(new_nonce())  # where the shard's proof goes: the impostor cannot make one
        self.received += _recv(sock, 1 << 20)
        sock.close()
        self.done.set()


def test_a_worker_sends_only_its_nonce_and_proof_to_a_shard_that_cannot_prove_the_token() -> None:
    impostor = Impostor()
    with pytest.raises(ShardLost, match="shard 0 did not prove it holds the job's token"):
        _link(impostor.address, node="node-b", shared_memory=True)
    assert impostor.done.wait(5)
    assert len(impostor.received) == NONCE_BYTES + TAG_BYTES and TOKEN not in impostor.received


@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
def test_a_workers_proof_replayed_on_a_new_connection_is_hung_up_on(served: Served, tcp: bool) -> None:
    sock = _connect(served.address, tcp=tcp)
    nonce_s, nonce_w = _recv(sock, NONCE_BYTES), new_nonce()
    answer = nonce_w + proof(TOKEN, "worker", nonce_s, nonce_w)
    sock.sendall(answer)
    assert _recv(sock, TAG_BYTES) == proof(TOKEN, "shard", nonce_s, nonce_w)
    sock.close()
    replay = _connect(served.address, tcp=tcp)
    assert len(_recv(replay, NONCE_BYTES)) == NONCE_BYTES
    replay.sendall(answer)
    assert _recv(replay, TAG_BYTES) == b""  # hung up: no proof of the shard's
    replay.close()


@pytest.mark.parametrize("stage", ["before-the-proof", "before-the-hello"])
def test_a_silent_connection_is_closed_at_the_deadline_and_holds_no_worker_up(stage: str) -> None:
    deadline_s = 0.5
    server = Served(FakeShard(5, np.float32), np.float32, deadline_s=deadline_s)
    try:
        began = time.monotonic()
        if stage == "before-the-proof":
            silent = _connect(server.address)
            assert len(_recv(silent, NONCE_BYTES)) == NONCE_BYTES
        else:
            silent, _ = _proven(server.address)
        link = _link(server.address)
        link.send(0, 0, np.ones(5, dtype=np.float32), 1)
        assert link.receive()[1] == 1
        assert time.monotonic() - began < deadline_s  # served while the silent one waited
        assert _closed(silent)
        assert time.monotonic() - began >= deadline_s
        link.close()
    finally:
        server.stop()


def test_connections_past_the_authenticating_bound_are_closed_at_once_and_the_rest_at_the_deadline() -> None:
    server = Served(FakeShard(5, np.float32), np.float32, num_workers=1, deadline_s=0.5)
    try:
        waiting = [_connect(server.address, tcp=i % 2 == 1) for i in range(1 + PENDING_SLACK)]
        assert all(len(_recv(sock, NONCE_BYTES)) == NONCE_BYTES for sock in waiting)
        refused = _connect(server.address)
        assert _recv(refused, NONCE_BYTES) == b""  # closed without a nonce
        assert all(_closed(sock) for sock in waiting)
        link = _link(server.address)
        link.send(0, 0, np.ones(5, dtype=np.float32), 1)
        assert link.receive()[1] == 1
    finally:
        server.stop()


def test_a_shard_keeps_two_authenticated_connections_per_worker() -> None:
    server = Served(FakeShard(5, np.float32), np.float32, num_workers=1)
    try:
        links = [_link(server.address) for _ in range(CONNECTIONS_PER_WORKER)]
        with pytest.raises(ShardLost, match="shard 0 closed its connection during the handshake"):
            _link(server.address)
        links[0].close()
        _eventually(lambda: _link(server.address)).close()
    finally:
        server.stop()


@pytest.mark.parametrize(("node", "shared_memory", "policy", "sealed"), [
    ("node-b", False, "auto", True),
    ("node-a", False, "auto", True),
    pytest.param("node-a", True, "auto", False, marks=needs_shm),
    pytest.param("node-a", True, "always", True, marks=needs_shm),
    ("node-b", False, "never", False),
], ids=["tcp", "unix-payloads-on-the-socket", "shared-pages", "shared-pages-always", "tcp-never"])
def test_messages_carry_tags_as_the_policy_and_the_payloads_path_say(
        served: Served, node: str, shared_memory: bool, policy: str, sealed: bool) -> None:
    link = _link(served.address, node=node, shared_memory=shared_memory, authenticate=policy)
    assert (link.pages is not None) == shared_memory
    assert link.session.sealed == sealed
    assert link.framing_bytes == REQUEST.size + REPLY.size + (2 * SEAL_BYTES if sealed else 0)
    for step in range(3):
        link.send(1, step, np.arange(5, dtype=np.float32), 2)
        values, version = link.receive()
        assert version == step + 1
        np.testing.assert_array_equal(values, np.arange(5) * 2 * (step + 1))
    link.close()


@pytest.mark.parametrize("tampered", ["tag", "payload", "header"])
def test_a_push_altered_after_it_was_tagged_is_hung_up_on_and_not_applied(served: Served, tampered: str) -> None:
    link = _link(served.address, node="node-b")
    header, payload = REQUEST.pack(0, 0, 1, SLICE), np.ones(5, dtype=np.float32).tobytes()
    tag = link.session.seal(header, payload)
    if tampered == "tag":
        tag = bytes([tag[0] ^ 1]) + tag[1:]
    elif tampered == "payload":
        payload = np.full(5, 100.0, dtype=np.float32).tobytes()
    else:
        header = REQUEST.pack(0, 0, 3, SLICE)  # three times the weight
    link.sock.sendall(header + payload + tag)
    with pytest.raises(ShardLost, match="shard 0 closed its connection"):
        link.receive()
    assert served.shard.pushes == []


@pytest.mark.parametrize("where", ["its-own-connection", "another-connection"])
def test_a_push_replayed_is_hung_up_on_and_applied_once(served: Served, where: str) -> None:
    link = _link(served.address, node="node-b")
    header, payload = REQUEST.pack(0, 0, 1, SLICE), np.ones(5, dtype=np.float32).tobytes()
    message = header + payload + link.session.seal(header, payload)
    link.sock.sendall(message)
    assert link.receive()[1] == 1
    replayer = link if where == "its-own-connection" else _link(served.address, node="node-b")
    replayer.sock.sendall(message)
    with pytest.raises(ShardLost, match="shard 0 closed its connection"):
        replayer.receive()
    assert served.shard.pushes == [(0, 0, 1)]


def test_a_reply_altered_on_the_way_is_refused_by_the_worker(served: Served) -> None:
    handshake_and_hello = NONCE_BYTES + TAG_BYTES + 1 + SEAL_BYTES  # what the shard sends before its first reply
    tamperer = Proxy(served.address, flip_at=handshake_and_hello + REPLY.size)  # the reply's first byte of payload
    link = _link(tamperer.address, node="node-b")
    link.send(0, 0, np.ones(5, dtype=np.float32), 1)
    with pytest.raises(ShardLost, match="shard 0 sent a reply whose tag is wrong"):
        link.receive()


def test_a_reply_that_is_not_the_slice_is_refused_by_the_worker(served: Served) -> None:
    link = _link(served.address, node="node-b")
    link.slice_bytes = 2 * SLICE  # the worker expects another slice than the shard holds
    link.send(0, 0, np.ones(5, dtype=np.float32), 1)
    with pytest.raises(ShardLost, match="shard 0 replied with 20 bytes, not its slice's 40"):
        link.receive()


@pytest.mark.parametrize("hello", ["wrong-tag", "unknown-policy", "name-too-long"])
def test_a_hello_that_is_not_a_workers_is_hung_up_on(served: Served, hello: str) -> None:
    sock, session = _proven(served.address)
    policy = len(POLICIES) if hello == "unknown-policy" else 0
    name = b"x" * 100 if hello == "name-too-long" else b""
    message = HELLO.pack(policy, len(name)) + name
    tag = session.seal(message)
    sock.sendall(message + (bytes(SEAL_BYTES) if hello == "wrong-tag" else tag))
    assert _recv(sock, 1 + SEAL_BYTES) == b""
    sock.close()
