"""Who may talk to a shard's sockets, and how a message proves where it comes from.

A job's engine makes a random token for its own actors. A connection proves both ways that its ends
hold it without sending it: the shard sends a fresh nonce, the worker answers with its own nonce and
``HMAC(token, "skate-ps worker" | nonce_s | nonce_w)``, and the shard answers with
``HMAC(token, "skate-ps shard" | nonce_s | nonce_w)``, which the worker checks before it sends
anything else. Neither answer is of use on another connection (the other end's nonce differs), so
a recorded handshake cannot be replayed, and a worker never talks to an impostor at a reused address.

Both ends then hold a session key, ``HMAC(token, "skate-ps session" | nonce_s | nonce_w)``, new for
each connection. A :class:`Session` tags a message (its header and payload) with Poly1305 under a
key used for that message alone: the first 32 bytes of ChaCha20's keystream under the session key,
with the direction and the message's counter (how many messages went that way before) as the
nonce, as RFC 8439 derives ChaCha20-Poly1305's (section 2.6). A message replayed, reordered or
sent back the other way fails its tag. A big model's payload is tagged at each end of each push
and reply, and Poly1305 tags it about four times as fast as HMAC-SHA256 did
(``benchmarks/message_tags.py``: 3.9-4.5x over 25.7 MB on the 2-core VM; a header alone, though,
takes 8 µs against 2). The hello that follows the handshake is always tagged; the pushes and
replies are when :func:`seals_messages` says so (by default, when the payloads travel on the socket).

This module does no I/O: :mod:`skate.engines.ps.wire` moves the bytes.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
from typing import Any, Literal

from cryptography.hazmat.primitives.ciphers import algorithms, Cipher
from cryptography.hazmat.primitives.poly1305 import Poly1305

from skate.engines.ps.config import MessageAuth

TOKEN_BYTES = 32
NONCE_BYTES = 32
TAG_BYTES = 32
"""An HMAC-SHA256: a proof in the handshake."""
SEAL_BYTES = 16
"""A message's tag (Poly1305)."""

AUTH_DEADLINE_S = 5.0
"""How long an accepted connection has to finish the handshake and hello before the shard closes it."""

CONNECTIONS_PER_WORKER = 2
"""Authenticated connections a shard keeps per worker: the worker's, and its replacement's while the
dead worker's connection is still being wound up (its push may be waiting at a barrier)."""

PENDING_SLACK = 8
"""Connections still authenticating that a shard keeps beyond one per worker (all of a job's workers
may connect at once); any more are closed as they come."""

POLICIES: tuple[MessageAuth, ...] = ("never", "auto", "always")
"""The ``authenticate_messages`` settings, in the order the hello numbers them."""

Role = Literal["worker", "shard"]


def new_token() -> bytes:
    """A token for one engine's connections."""
    return secrets.token_bytes(TOKEN_BYTES)


def new_nonce() -> bytes:
    """A handshake's fresh random bytes (one from each end)."""
    return secrets.token_bytes(NONCE_BYTES)


def proof(token: bytes, role: Role, nonce_s: bytes, nonce_w: bytes) -> bytes:
    """What the ``role`` end sends to show it holds ``token`` (the shard's nonce first, whoever proves)."""
    return hmac.digest(token, b"skate-ps " + role.encode() + nonce_s + nonce_w, "sha256")


def proves(answer: bytes, token: bytes, role: Role, nonce_s: bytes, nonce_w: bytes) -> bool:
    """Whether ``answer`` is the ``role`` end's proof (compared in constant time)."""
    return hmac.compare_digest(answer, proof(token, role, nonce_s, nonce_w))


def seals_messages(policy: MessageAuth, *, shared_pages: bool) -> bool:
    """Whether a connection tags its pushes and replies: ``always``, never with ``never``, and with
    ``auto`` when the payloads travel on the socket. Shared pages need no tags: the payload lies in
    pages of mode 0600 that only the two processes could open, and the header travels on a Unix
    socket that nothing else can write into once connected."""
    return policy == "always" or (policy == "auto" and not shared_pages)


def one_time_key(key: bytes, nonce: bytes) -> bytes:
    """The Poly1305 key of one message: the first 32 bytes of ChaCha20's keystream under ``key`` (32
    bytes) and ``nonce`` (12), block 0 (RFC 8439, section 2.6)."""
    # cryptography's ChaCha20 takes the block counter (4 bytes, little-endian) and the nonce as one 16-byte value.
    return Cipher(algorithms.ChaCha20(key, bytes(4) + nonce), mode=None).encryptor().update(bytes(32))


class Session:
    """One connection's session key and message counters, at one end (``role``): the hello is message
    0 each way, and the pushes and replies count on from 1 when they are tagged."""

    def __init__(self, token: bytes, role: Role, nonce_s: bytes, nonce_w: bytes) -> None:
        self._key = hmac.digest(token, b"skate-ps session" + nonce_s + nonce_w, "sha256")
        self._sends, self._receives = (b"w", b"s") if role == "worker" else (b"s", b"w")
        self._sent = 0
        self._received = 0
        self.sealed = False
        """Whether pushes and replies carry tags (settled by the hello)."""

    def seal(self, *parts: Any) -> bytes:
        """The tag (:data:`SEAL_BYTES`) of the next message this end sends, made of ``parts``
        (bytes-like, in order)."""
        tag = self._tag(self._sends, self._sent, parts)
        self._sent += 1
        return tag

    def opens(self, tag: bytes, *parts: Any) -> bool:
        """Whether ``tag`` is the tag of the next message from the other end, made of ``parts``."""
        expected = self._tag(self._receives, self._received, parts)
        self._received += 1
        return hmac.compare_digest(tag, expected)

    def _tag(self, direction: bytes, counter: int, parts: tuple[Any, ...]) -> bytes:
        mac = Poly1305(one_time_key(self._key, direction + counter.to_bytes(8, "little") + bytes(3)))
        for part in parts:
            mac.update(part)
        return mac.finalize()


@dataclasses.dataclass
class Admission:
    """Which connections a shard of ``num_workers`` workers keeps: at most ``num_workers +``
    :data:`PENDING_SLACK` still authenticating (the shard gives each a deadline), and
    :data:`CONNECTIONS_PER_WORKER` per worker authenticated. A connection is any hashable handle
    (the shard's stream writer)."""

    num_workers: int
    pending: set[Any] = dataclasses.field(default_factory=set)
    live: set[Any] = dataclasses.field(default_factory=set)

    def __post_init__(self) -> None:
        if self.num_workers <= 0:
            raise ValueError(f"a shard serves at least one worker, not {self.num_workers}")

    def accepts(self, connection: Any) -> bool:
        """Count a connection just accepted as authenticating, unless too many already are."""
        if len(self.pending) >= self.num_workers + PENDING_SLACK:
            return False
        self.pending.add(connection)
        return True

    def authenticated(self, connection: Any) -> bool:
        """Count an authenticating connection as live, unless the workers' share is taken."""
        self.pending.discard(connection)
        if len(self.live) >= CONNECTIONS_PER_WORKER * self.num_workers:
            return False
        self.live.add(connection)
        return True

    def release(self, connection: Any) -> None:
        """The connection closed (at whatever stage)."""
        self.pending.discard(connection)
        self.live.discard(connection)
