"""Room on the cluster for a job: wait for the autoscaler, refuse only the impossible."""

from typing import TYPE_CHECKING, Any

from skate.capacity.wait import CONFIG_KEY, DEFAULT_WAIT_S, WAIT_ENV, wait_limit_s

if TYPE_CHECKING:
    from skate.capacity.nodes import Bundle, NodeType, describe
    from skate.capacity.room import Reservation, check_possible, cuda_usable, reserve, room_for, wanted

_NODES = ("Bundle", "NodeType", "describe")
_ROOM = ("Reservation", "check_possible", "cuda_usable", "reserve", "room_for", "wanted")
"""The names that need Ray, by the module that holds them."""

__all__ = ["Bundle", "CONFIG_KEY", "DEFAULT_WAIT_S", "NodeType", "Reservation", "WAIT_ENV", "check_possible",
           "cuda_usable", "describe", "reserve", "room_for", "wait_limit_s", "wanted"]


def __getattr__(name: str) -> Any:  # Ray loads with the first of these asked for: the CLI reads the wait settings without it
    if name in _NODES:
        from skate.capacity import nodes

        return getattr(nodes, name)
    if name in _ROOM:
        from skate.capacity import room

        return getattr(room, name)
    raise AttributeError(f"module 'skate.capacity' has no attribute {name!r}")
