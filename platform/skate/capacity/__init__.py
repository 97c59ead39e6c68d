"""Room on the cluster for a job: wait for the autoscaler, refuse only the impossible."""

from skate.capacity.nodes import Bundle, NodeType, describe
from skate.capacity.room import (CONFIG_KEY, DEFAULT_WAIT_S, WAIT_ENV, Reservation, check_possible, cuda_usable,
                                    reserve, room_for, wait_limit_s, wanted)

__all__ = ["Bundle", "CONFIG_KEY", "DEFAULT_WAIT_S", "NodeType", "Reservation", "WAIT_ENV", "check_possible",
           "cuda_usable", "describe", "reserve", "room_for", "wait_limit_s", "wanted"]
