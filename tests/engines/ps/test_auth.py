"""Message tags: the one-time key is RFC 8439's, and a tag opens once, in order, one way."""

from __future__ import annotations

import pytest

from skate.engines.ps.auth import one_time_key, SEAL_BYTES, Session

NONCE_S, NONCE_W, TOKEN = b"s" * 32, b"w" * 32, b"t" * 32


def test_a_messages_one_time_key_is_rfc_8439s() -> None:
    # RFC 8439, section 2.6.2: the Poly1305 key generated from ChaCha20's keystream.
    key = bytes(range(0x80, 0xA0))
    nonce = bytes([0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7])
    assert one_time_key(key, nonce).hex() == "8ad5a08b905f81cc815040274ab29471a833b637e3fd0da508dbb8e2fdd1a646"


def _pair() -> tuple[Session, Session]:
    return Session(TOKEN, "worker", NONCE_S, NONCE_W), Session(TOKEN, "shard", NONCE_S, NONCE_W)


def test_tags_open_in_order_at_the_other_end_over_every_part() -> None:
    worker, shard = _pair()
    tags = [worker.seal(b"header", memoryview(bytearray(b"payload %d" % i))) for i in range(3)]
    assert all(len(tag) == SEAL_BYTES for tag in tags) and len(set(tags)) == 3
    assert [shard.opens(tag, b"header", b"payload %d" % i) for i, tag in enumerate(tags)] == [True] * 3
    reply = shard.seal(b"reply")
    assert worker.opens(reply, b"reply")


@pytest.mark.parametrize("wrong", ["replayed", "reordered", "sent-back", "altered", "another-connection"])
def test_a_tag_opens_nowhere_else(wrong: str) -> None:
    worker, shard = _pair()
    first, second = worker.seal(b"one"), worker.seal(b"two")
    if wrong == "replayed":
        assert shard.opens(first, b"one")
        assert not shard.opens(first, b"one")
    elif wrong == "reordered":
        assert not shard.opens(second, b"two")
    elif wrong == "sent-back":
        assert not worker.opens(first, b"one")  # a worker's own message, returned to it
    elif wrong == "altered":
        assert not shard.opens(first, b"onE")
    else:
        other = Session(TOKEN, "shard", NONCE_S, b"x" * 32)  # another handshake: another session key
        assert not other.opens(first, b"one")
