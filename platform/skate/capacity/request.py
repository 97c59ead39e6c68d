"""Asking the autoscaler for a job's bundles, and taking the request back without erasing another's.

``ray.autoscaler.sdk.request_resources`` is cluster-wide and each call replaces the last, whoever made
it. skate asks for the bundles of the job it is about to place and, once they are placed or the wait
is over, puts back the request that stood before its own: unless another driver has replaced it
meanwhile, which then stays. The placement group, not the request, keeps the nodes busy while the job
runs; when it ends, its nodes fall idle and the autoscaler removes them after ``idle_timeout_minutes``.

The request is read back from where Ray's (v1) autoscaler keeps it. A v2 autoscaler keeps it in the
GCS with no way to read it back; there skate's request stays until the next one replaces it (clear it
with ``request_resources(bundles=[])`` once nothing needs it).
"""

from __future__ import annotations

import json
import logging
from types import TracebackType

from skate.capacity.nodes import Bundle

log = logging.getLogger(__name__)

CHANNEL = b"autoscaler_resource_request"
"""The internal-KV key of the v1 autoscaler's standing request (``ray_constants.AUTOSCALER_RESOURCE_REQUEST_CHANNEL``)."""


def _standing() -> bytes | None:
    from ray.experimental.internal_kv import _internal_kv_get

    return _internal_kv_get(CHANNEL)


class AutoscalerRequest:
    """``with AutoscalerRequest(bundles):`` asks for ``bundles`` on entry and takes the request back on exit."""

    def __init__(self, bundles: list[Bundle]) -> None:
        self.bundles = bundles
        self._before: bytes | None = None
        self._mine: bytes | None = None
        self._asked = False

    def __enter__(self) -> "AutoscalerRequest":
        from ray.autoscaler.sdk import request_resources

        try:
            self._before = _standing()
            request_resources(bundles=self.bundles)
            self._mine = _standing()
            self._asked = True
        except Exception as error:  # a cluster without an autoscaler's GCS support: nothing to ask
            log.debug("no autoscaler request: %s", error)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if not self._asked or self._mine is None:
            return
        from ray.experimental.internal_kv import _internal_kv_put

        try:
            if _standing() == self._mine:  # nobody asked since: put back what stood before
                _internal_kv_put(CHANNEL, self._before if self._before is not None else json.dumps([]), overwrite=True)
        except Exception as failure:  # the cluster went away: nothing to take back
            log.debug("autoscaler request not taken back: %s", failure)
