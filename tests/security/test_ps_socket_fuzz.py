"""A parameter-server shard attacked on its sockets while it serves a sync job keeps serving it, and
the job ends with the same parameters as without the attack.

The shard is a real :class:`~skate.engines.ps.shard.ParameterShard` (sync rule, Adam) served on an
event loop in a thread, without Ray; its two workers are threads on real
:class:`~skate.engines.ps.wire.ShardLink` connections, one on the Unix socket with shared pages
and one on TCP (its messages tagged) through a proxy that records what it sends. Halfway through
the job the attacks start, and the workers go on while they run (at three quarters they wait for
the last ones to end): random bytes and oversized floods, silent connections, truncated and wrong
proofs, a wrong token, the recorded worker's handshake replayed, and, from a connection that holds
the token, truncated and out-of-range headers, a wrong tag, the recorded worker's push replayed and
a junk hello. Each attack must end with the shard hanging up (silent ones at the deadline, 0.2 s
here).
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
from typing import Callable

import numpy as np
import pytest
import torch

from skate.engines.optim import OptimizerConfig
from skate.engines.ps.auth import new_nonce, NONCE_BYTES, POLICIES, proof, SEAL_BYTES, Session, TAG_BYTES
from skate.engines.ps.shard import ParameterShard
from skate.engines.ps.sync import SyncRule
from skate.engines.ps.wire import Address, HELLO, REQUEST, SHM_DIR, ShardLink, ShardLost

from ps_sockets import Proxy, Served

pytestmark = pytest.mark.skipif(not SHM_DIR.is_dir(), reason="no /dev/shm here: the first worker shares pages")

TOKEN = secrets.token_bytes(32)
WORKERS, STEPS, SIZE = 2, 40, 1000
SLICE = SIZE * 4
DEADLINE_S = 0.2
WAIT_S = 5.0
"""The longest any attack may wait for the shard to hang up."""
HELLO_BYTES = HELLO.size + SEAL_BYTES  # a hello without shared pages
PUSH_BYTES = REQUEST.size + SLICE + SEAL_BYTES  # a tagged push on the socket


class LiveShard(Served):
    """A parameter shard serving its sockets on an event loop in a thread."""

    def __init__(self) -> None:
        threads = torch.get_num_threads()
        self.shard = ParameterShard(init=np.zeros(SIZE, dtype=np.float32), optimizer=OptimizerConfig(lr=0.01),
                                    rule=SyncRule(num_workers=WORKERS, backup_workers=0), compression="none",
                                    total_steps=STEPS, updates_per_step=1)
        torch.set_num_threads(threads)  # the shard sets its process's; this process is the tests'
        super().__init__(self.shard.push, self.shard.wire_view, np.float32, token=TOKEN, num_workers=WORKERS,
                         deadline_s=DEADLINE_S)


def _gradient(rank: int, step: int, params: np.ndarray) -> np.ndarray:
    return (params * np.float32(0.5) + np.sin(np.arange(SIZE, dtype=np.float32) * (rank + 1) + step)).astype(np.float32)


def run_job(attack: Attack | None) -> tuple[np.ndarray, int, list[str]]:
    """A sync job of two workers, attacked halfway if ``attack`` is given; returns the shard's
    parameters and version after it, and what went wrong in the attacks."""
    live = LiveShard()
    recorder = Proxy(live.address)
    links = [ShardLink(live.address, token=TOKEN, node="node-a", wire_dtype=np.float32, shard=0, slice_bytes=SLICE,
                       shared_memory=True),
             ShardLink(recorder.address, token=TOKEN, node="node-b", wire_dtype=np.float32, shard=0, slice_bytes=SLICE)]
    assert links[0].pages is not None and not links[0].session.sealed and links[1].session.sealed
    halfway, attacking = threading.Barrier(WORKERS + 1), threading.Event()
    failures: list[str] = []

    def work(rank: int) -> None:
        params, version = np.zeros(SIZE, dtype=np.float32), 0
        try:
            for step in range(STEPS):
                if step == STEPS // 2:
                    halfway.wait(timeout=WAIT_S)
                    attacking.wait(timeout=WAIT_S)
                if step == 3 * STEPS // 4 and attack is not None:
                    attack.insider_done.wait(timeout=3 * WAIT_S)  # the insider's messages come between pushes
                links[rank].send(rank, version, _gradient(rank, step, params), rank + 1)
                values, version = links[rank].receive()
                params = np.array(values)
        except Exception as error:  # noqa: BLE001 - reported below, with the worker's rank
            failures.append(f"worker {rank}: {error!r}")

    workers = [threading.Thread(target=work, args=(rank,)) for rank in range(WORKERS)]
    try:
        for worker in workers:
            worker.start()
        halfway.wait(timeout=WAIT_S)
        attacks = attack.start(live, recorder) if attack is not None else []
        attacking.set()
        for thread in workers + attacks:
            thread.join(timeout=3 * WAIT_S)
        assert not any(thread.is_alive() for thread in workers + attacks), "a worker or an attack never ended"
        failures += attack.failures if attack is not None else []
        return live.shard.core.params.detach().numpy().copy(), live.shard.version(), failures
    finally:
        for link in links:
            link.close()
        live.stop()


def _connect(address: Address, *, tcp: bool) -> socket.socket:
    if tcp:
        return socket.create_connection((address.host, address.port), timeout=WAIT_S)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(WAIT_S)
    sock.connect(address.unix)
    return sock


def _received_until_closed(sock: socket.socket) -> bytes | None:
    """All the shard sends until it hangs up (``None``: it had not within :data:`WAIT_S`)."""
    got = b""
    try:
        while chunk := sock.recv(1 << 16):
            got += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return got


class Attack:
    """The attacks, each in a thread of its own (the insider's one after another in one thread); each
    failed expectation lands in :attr:`failures`."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.rng = np.random.default_rng(0)
        self.insider_done = threading.Event()

    def start(self, live: LiveShard, recorder: Proxy) -> list[threading.Thread]:
        """Start every attack on ``live``; returns their threads."""
        address, recorded = live.address, bytes(recorder.sent)
        assert len(recorded) >= NONCE_BYTES + TAG_BYTES + HELLO_BYTES + PUSH_BYTES  # the worker has pushed
        first_push = recorded[NONCE_BYTES + TAG_BYTES + HELLO_BYTES:][:PUSH_BYTES]
        blobs = [self.rng.bytes(int(n)) for n in self.rng.integers(0, 300, 24)] + [self.rng.bytes(1 << 20)] * 2
        flood: list[Callable[[], None]] = [
            *(lambda tcp=tcp: self.silent(address, tcp=tcp) for tcp in (False, True, True)),
            *(lambda blob=blob, tcp=bool(i % 2): self.stranger(address, blob, tcp=tcp) for i, blob in enumerate(blobs)),
            lambda: self.stranger(address, None, tcp=True),  # a wrong proof after the nonce
            lambda: self.stranger(address, recorded, tcp=True),  # the recorded worker's whole stream, replayed
            lambda: self.wrong_token(address),
        ]
        threads = [threading.Thread(target=self._guarded, args=(job,)) for job in flood]
        # The insider's connections come once the flood is over: while too many connections
        # authenticate, the shard refuses new ones, the insider's too.
        insider = threading.Thread(target=self._guarded, args=(lambda: self.insider(address, first_push, threads),))
        threads.append(insider)
        for thread in threads:
            thread.start()
        return threads

    def _guarded(self, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception as error:  # noqa: BLE001 - an attack that broke is a failure of the test
            self.failures.append(f"attack raised {error!r}")

    def _expect(self, what: str, ok: bool) -> None:
        if not ok:
            self.failures.append(what)

    def silent(self, address: Address, *, tcp: bool) -> None:
        got = _received_until_closed(_connect(address, tcp=tcp))
        self._expect(f"a silent connection (tcp={tcp}) got {got!r}, not a nonce and a hang-up",
                     got is not None and len(got) in (0, NONCE_BYTES))  # 0: refused while too many authenticate

    def stranger(self, address: Address, blob: bytes | None, *, tcp: bool) -> None:
        """Bytes sent without the token (``None``: a well-formed answer with a wrong proof): the shard
        sends its nonce at most, never its proof."""
        sock = _connect(address, tcp=tcp)
        with contextlib.suppress(OSError):  # the shard may hang up while a flood is still being sent
            sock.sendall(blob if blob is not None else new_nonce() + new_nonce())
        got = _received_until_closed(sock)
        self._expect(f"a stranger's {len(blob or b'')} bytes got {got!r}", got is not None and len(got) <= NONCE_BYTES)

    def wrong_token(self, address: Address) -> None:
        try:
            ShardLink(address, token=secrets.token_bytes(32), node="node-b", wire_dtype=np.float32, shard=0,
                      slice_bytes=SLICE)
        except ShardLost:
            return
        self.failures.append("a worker with a wrong token was let in")

    def insider(self, address: Address, recorded_push: bytes, after: list[threading.Thread]) -> None:
        """Messages from connections that hold the token, none of them a valid push, once the threads
        ``after`` but this one have ended: each is hung up on."""
        try:
            for thread in after:
                if thread is not threading.current_thread():
                    thread.join(timeout=3 * WAIT_S)
            self._insider(address, recorded_push)
        finally:
            self.insider_done.set()

    def _insider(self, address: Address, recorded_push: bytes) -> None:
        messages = {
            "a truncated header": self.rng.bytes(10),
            "random bytes": self.rng.bytes(REQUEST.size + 100),
            "a rank past the workers": REQUEST.pack(WORKERS, 0, 1, SLICE),
            "a negative count": REQUEST.pack(0, 0, -1, SLICE),
            "a negative version": REQUEST.pack(0, -1, 1, SLICE),
            "an oversized payload": REQUEST.pack(0, 0, 1, 1 << 40),
            "shared pages it has not": REQUEST.pack(0, 0, 1, -1),
            "a wrong tag": REQUEST.pack(0, 0, 1, SLICE) + bytes(SLICE) + bytes(SEAL_BYTES),
            "the recorded worker's push": recorded_push,
        }
        for what, message in messages.items():
            link = ShardLink(address, token=TOKEN, node="node-b", wire_dtype=np.float32, shard=0, slice_bytes=SLICE,
                             authenticate="always")
            link.sock.settimeout(WAIT_S)
            link.sock.sendall(message)
            if what == "a truncated header":
                link.sock.shutdown(socket.SHUT_WR)  # and gone, as a worker that dies mid-push
            self._expect(f"{what} was not hung up on", _received_until_closed(link.sock) == b"")
        sock = _connect(address, tcp=False)
        nonce_s, nonce_w = sock.recv(NONCE_BYTES), new_nonce()
        sock.sendall(nonce_w + proof(TOKEN, "worker", nonce_s, nonce_w))
        self._expect("the insider was not proven", sock.recv(TAG_BYTES) == proof(TOKEN, "shard", nonce_s, nonce_w))
        hello = HELLO.pack(len(POLICIES), 1 << 20)  # no such policy, and a name of a MB
        sock.sendall(hello + Session(TOKEN, "worker", nonce_s, nonce_w).seal(hello))
        self._expect("a junk hello was not hung up on", _received_until_closed(sock) == b"")


@pytest.fixture(scope="module")
def clean() -> tuple[np.ndarray, int, list[str]]:
    return run_job(None)


def test_the_job_without_an_attack_runs_every_step(clean: tuple[np.ndarray, int, list[str]]) -> None:
    params, version, failures = clean
    assert failures == [] and version == STEPS and np.abs(params).max() > 0


def test_an_attacked_shard_serves_its_workers_to_the_same_parameters(clean: tuple[np.ndarray, int, list[str]]) -> None:
    params, version, failures = run_job(Attack())
    assert failures == []
    assert version == STEPS
    np.testing.assert_array_equal(params, clean[0])
