"""Connecting to Ray: an embedded local cluster, or an existing one by address."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Iterator

import ray

from skate.errors import SkateError
from skate.runs.signing import SOURCE_ENV, cluster_env


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None, quiet: bool = False) -> Iterator[None]:
    """Ray for the duration of the block.

    Joins ``address`` (or ``RAY_ADDRESS``) when given; otherwise starts an embedded local cluster
    and stops it afterwards, even when another Ray runs on this machine (``ray.init()`` alone would
    join it). A Ray already initialised in this process is used as it is. ``quiet``
    keeps the output of actors and tasks off this terminal (it stays in Ray's logs).

    Raises:
        SkateError: when the cluster cannot be reached.
    """
    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    # On a cluster, this driver and every process of the session sign with the cluster's key
    # (skate.runs.signing), never this machine's. A driver that skate submit started is told so by
    # its job's environment already, which a runtime_env here would replace.
    remote = address not in (None, "local")
    cluster_signed = remote and os.environ.get(SOURCE_ENV) != "cluster"
    joined = {"runtime_env": {"env_vars": cluster_env()}} if cluster_signed else {}
    if cluster_signed:
        os.environ.update(cluster_env())
    try:
        _init(address, num_cpus=num_cpus, quiet=quiet, **joined)
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        if cluster_signed:
            os.environ.pop(SOURCE_ENV, None)


def _init(address: str | None, *, num_cpus: int | None, quiet: bool, **joined: Any) -> None:
    try:
        ray.init(address=address or "local", num_cpus=None if address else num_cpus,
                 logging_level=logging.ERROR, log_to_driver=not quiet, **joined)
    except (ConnectionError, TimeoutError) as error:
        raise SkateError(f"cannot reach the Ray cluster at {address}: {error}") from error
    except RuntimeError as error:
        if address is None:
            raise
        raise SkateError(f"cannot join the Ray cluster at {address}: {error}") from error

