"""A parameter-server message's tag: skate's (Poly1305 under a one-time key from ChaCha20) against
the HMAC-SHA256 it replaced, over a big model's payload and over a small one.

Where payloads travel on the socket (between nodes, by default) each end computes one tag over
each push and each reply (:class:`skate.engines.ps.auth.Session`), so for a model of tens of MB the
tag's speed is the transport's. The reference is the former tag, HMAC-SHA256 keyed once and copied
for each message, over the same bytes, on the same thread, alternately.

    .venv/bin/python benchmarks/message_tags.py [--repeats 20]

Prints one JSON line: for each payload size, each tag's median milliseconds and the ratio
``hmac_sha256_ms / poly1305_ms`` (above 1: skate's tag is the faster).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import time
from typing import Callable

import numpy as np

from ps_arms import BIG, SEED
from skate.engines.ps.auth import Session
from skate.engines.ps.wire import REQUEST


def _ms(tag: Callable[[], bytes]) -> float:
    began = time.perf_counter()
    tag()
    return 1000 * (time.perf_counter() - began)


def compare(nbytes: int, repeats: int) -> dict[str, float]:
    """Both tags over a header and a payload of ``nbytes``, alternately ``repeats`` times each."""
    header, payload = REQUEST.pack(0, 0, 1, nbytes), memoryview(np.ones(nbytes, np.uint8))
    session = Session(b"t" * 32, "worker", b"s" * 32, b"w" * 32)
    keyed = hmac.new(b"k" * 32, digestmod=hashlib.sha256)

    def former() -> bytes:
        mac = keyed.copy()
        mac.update(b"w" + (0).to_bytes(8, "little"))
        mac.update(header)
        mac.update(payload)
        return mac.digest()

    poly, sha = [], []
    for _ in range(repeats):
        poly.append(_ms(lambda: session.seal(header, payload)))
        sha.append(_ms(former))
    poly_ms, sha_ms = statistics.median(poly), statistics.median(sha)
    return {"poly1305_ms": round(poly_ms, 4), "hmac_sha256_ms": round(sha_ms, 4), "ratio": round(sha_ms / poly_ms, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    sizes = {"big_model": BIG.model_bytes(), "seed_model": SEED.model_bytes(), "header_only": 0}
    print(json.dumps({name: {"bytes": n, **compare(n, args.repeats)} for name, n in sizes.items()}))


if __name__ == "__main__":
    main()
