"""Room for a job's actors: placed now, placed once the autoscaler adds nodes, or refused at once.

Every kind of job goes through :func:`reserve`: the parameter-server and single engines keep the
placement group it returns for their actors; Ray Train (allreduce), RLlib and Tune place their own,
so for them the group only proves the room is there (:func:`room_for`) and is removed just before
they start. A job that no node (or node type) of the cluster could ever hold is refused before
anything starts; one that waits longer than the limit (``--wait-for-nodes``, the user config's
``wait_for_nodes_s``, 600 s by default) ends with a clear error, its placement group removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import Counter
from typing import Iterator, TextIO

import ray
from ray.util.placement_group import PlacementGroup, placement_group, placement_group_table, remove_placement_group

from skate.capacity.nodes import (Bundle, autoscaler_status, describe, has_autoscaler, live_nodes, node_types,
                                  packs, refusal)
from skate.capacity.request import AutoscalerRequest
from skate.capacity.wait import CONFIG_KEY, wait_limit_s
from skate.errors import SkateError
from skate.runs.ray_log import terminal

HINT = f"--wait-for-nodes SECONDS, or {CONFIG_KEY}: in the user config"
PLAIN_LINE_EVERY_S = 30.0


@dataclasses.dataclass
class Reservation:
    """A placed group, how long it waited, and on which node each bundle sits."""

    group: PlacementGroup
    waited_s: float
    removed: bool = False

    def nodes(self) -> list[str]:
        """The node id of each bundle, in bundle order."""
        table = placement_group_table(self.group)
        where = table.get("bundles_to_node_id") or {}
        return [where.get(index, "") for index in range(len(table.get("bundles") or {}))]

    def cuda_usable(self) -> bool:
        """Whether torch sees a CUDA device where Ray grants this group's GPUs (see :func:`cuda_usable`)."""
        return cuda_usable(self.group)

    def remove(self) -> None:
        if not self.removed:
            remove_placement_group(self.group)
            self.removed = True


def cuda_usable(group: PlacementGroup) -> bool:
    """Whether torch sees a CUDA device where Ray grants ``group``'s GPUs (a probe task in the first
    bundle with GPUs; ``False`` when no bundle has any). A node may declare GPUs torch cannot use: a
    CPU build of torch, or a cluster that only simulates them."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    bundles = placement_group_table(group).get("bundles") or {}
    index = next((i for i, one in sorted(bundles.items()) if one.get("GPU")), None)
    if index is None:
        return False
    strategy = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=int(index))
    probe = ray.remote(num_cpus=0, num_gpus=bundles[index]["GPU"], max_retries=0)(_cuda_available)
    return bool(ray.get(probe.options(scheduling_strategy=strategy).remote()))


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def wanted(bundles: list[Bundle]) -> str:
    """``2 x {GPU: 1, CPU: 1} + {CPU: 1}``."""
    counts = Counter(describe(one) for one in bundles)
    return " + ".join(f"{n} x {shown}" if n > 1 else shown for shown, n in counts.items())


def check_possible(bundles: list[Bundle], *, what: str) -> None:
    """Refuse at once a job no node of the cluster, or node type of its autoscaler, could hold.

    Raises:
        SkateError: naming the bundle and the largest node (type).
    """
    nodes = live_nodes()
    if packs(bundles, nodes):
        return
    # The autoscaler's node types matter only when the live nodes cannot hold the job (reading them costs a
    # task). An autoscaler just started has not reported yet, but its config on the head already says so.
    types = node_types()
    autoscales = bool(types) or has_autoscaler()
    problem = refusal(bundles, nodes=nodes, autoscales=autoscales, types=types)
    if problem is not None:
        raise SkateError(f"{what}: {problem}")


def reserve(bundles: list[Bundle], *, what: str, strategy: str = "PACK", limit_s: float | None = None,
            stream: TextIO | None = None, ask: bool = True) -> Reservation:
    """A placement group of ``bundles``, once placed; the autoscaler is asked for them meanwhile
    (unless ``ask`` is ``False``: the caller has asked already).

    Raises:
        SkateError: at once when the cluster could never hold them; when the wait runs out (the group
            removed). ``KeyboardInterrupt`` during the wait removes the group too.
    """
    check_possible(bundles, what=what)
    limit = wait_limit_s() if limit_s is None else limit_s
    started = time.monotonic()
    group = placement_group(bundles, strategy=strategy)
    try:
        _wait(group, bundles, what=what, limit_s=limit, stream=stream or terminal(), ask=ask)
    except BaseException:
        remove_placement_group(group)
        raise
    return Reservation(group, time.monotonic() - started)


@contextlib.contextmanager
def room_for(bundles: list[Bundle], *, what: str, strategy: str = "PACK") -> Iterator[Reservation]:
    """The room for a job that places its own actors (Ray Train, RLlib, Tune), for the block: the
    block frees it (:meth:`Reservation.remove`) and starts the job there. The autoscaler's request
    stands until the block ends, so that the nodes it started are not removed as idle meanwhile."""
    with AutoscalerRequest(bundles) if has_autoscaler() else contextlib.nullcontext():
        reservation = reserve(bundles, what=what, strategy=strategy, ask=False)
        try:
            yield reservation
        finally:
            reservation.remove()


def _wait(group: PlacementGroup, bundles: list[Bundle], *, what: str, limit_s: float, stream: TextIO,
          ask: bool) -> None:
    ready = group.ready()
    if ray.wait([ready], timeout=0.5)[0]:
        return
    started = time.monotonic()
    line = _LiveLine(stream)
    autoscales = has_autoscaler()
    with AutoscalerRequest(bundles) if autoscales and ask else contextlib.nullcontext():
        try:
            while not ray.wait([ready], timeout=1.0)[0]:
                waited = time.monotonic() - started
                doing = _activity(autoscales)
                if waited >= limit_s:
                    raise SkateError(f"{what}: waited {waited:.0f} s for {wanted(bundles)}, and the cluster has not "
                                     f"placed them ({doing}); wait longer ({HINT}) or ask for less")
                line.show(f"{what}: waiting for {wanted(bundles)}: {doing} ... {waited:.0f} s")
        finally:
            line.close()


def _activity(autoscales: bool) -> str:
    """What the cluster is doing about the demand, in a few words."""
    if not autoscales:
        return "its nodes are busy with other work"
    status = autoscaler_status()
    if status is None:  # a v2 autoscaler: no report to read here
        return "the autoscaler was asked"
    report = status.get("autoscaler_report") or {}
    failed = report.get("failed_nodes") or []
    starting = Counter(report.get("pending_launches") or {})
    for pending in report.get("pending_nodes") or []:
        if isinstance(pending, (list, tuple)) and len(pending) > 1:
            starting[str(pending[1])] += 1
    if failed:
        return f"the autoscaler failed to start {len(failed)} node(s)"
    if starting:
        return "the autoscaler is starting nodes (" + ", ".join(f"{n} x {t}" for t, n in starting.items()) + ")"
    return "the autoscaler was asked; no node is starting yet"


class _LiveLine:
    """One line rewritten in place on a terminal; elsewhere (logs) a plain line every 30 s."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last = -PLAIN_LINE_EVERY_S
        self._shown = False

    def show(self, text: str) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
        elif now - self._last >= PLAIN_LINE_EVERY_S:
            self.stream.write(text + "\n")
            self._last = now
        else:
            return
        self._shown = True
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()
