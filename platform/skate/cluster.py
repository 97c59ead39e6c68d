"""Connecting to Ray: an embedded local cluster, or an existing one by address."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

import ray

from skate.errors import SkateError


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[None]:
    """Ray for the duration of the block.

    Joins ``address`` (or ``RAY_ADDRESS``) when given; otherwise starts an embedded local cluster
    and stops it afterwards. A Ray already initialised in this process is used as it is.

    Raises:
        SkateError: when the cluster cannot be reached.
    """
    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                 logging_level=logging.ERROR, log_to_driver=True)
    except (ConnectionError, TimeoutError) as error:
        raise SkateError(f"cannot reach the Ray cluster at {address}: {error}") from error
    except RuntimeError as error:
        if address is None:
            raise
        raise SkateError(f"cannot join the Ray cluster at {address}: {error}") from error
    try:
        yield
    finally:
        ray.shutdown()
