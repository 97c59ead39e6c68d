"""How long a job waits for the cluster to have room for it: the one setting of :mod:`skate.capacity`
known without Ray (the CLI's ``--wait-for-nodes`` help names it for every command)."""

from __future__ import annotations

import os

from skate.errors import SkateError

WAIT_ENV = "SKATE_WAIT_FOR_NODES_S"
CONFIG_KEY = "wait_for_nodes_s"
DEFAULT_WAIT_S = 600.0
"""Long enough for a cloud provider to boot a GPU node and Ray to start on it (a few minutes)."""


def wait_limit_s() -> float:
    """How long a job waits for room: ``$SKATE_WAIT_FOR_NODES_S`` (the CLI's ``--wait-for-nodes`` sets
    it), else the user config's ``wait_for_nodes_s``, else 600 s."""
    from skate.launch.connect import user_config

    for value, where in ((os.environ.get(WAIT_ENV), WAIT_ENV), (user_config().get(CONFIG_KEY), CONFIG_KEY)):
        if value is None or value == "":
            continue
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise SkateError(f"{where}: expected seconds to wait for nodes (e.g. 600), got {value!r}") from None
        if seconds < 0:
            raise SkateError(f"{where}: expected seconds >= 0, got {seconds:g}")
        return seconds
    return DEFAULT_WAIT_S
