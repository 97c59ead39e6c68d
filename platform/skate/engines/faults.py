"""What counts as the death of an actor, and the errors an engine raises after one.

Ray reports a dead actor in several shapes: the call to it fails (``RayActorError``), a task that
called it fails with that error inside (``RayTaskError`` whose ``cause`` is one), a compiled graph's
channel closes, or one of skate's own connections to the actor closes (:class:`ConnectionLost`).
Every engine and the trainer ask :func:`actor_died` alone, so a death is never mistaken for an
error in the user's code (which ends the run at once) nor the other way round.
"""

from __future__ import annotations

from ray.exceptions import RayActorError, RayChannelError, RayChannelTimeoutError, RayTaskError

from skate.errors import first_line, SkateError


class ConnectionLost(ConnectionError):
    """A direct connection to an actor closed under its user: the actor's process is gone."""


class EngineLost(RuntimeError):
    """An actor of the engine died and the engine cannot go on by itself: the trainer replaces the
    whole engine and resumes from the last checkpoint (``train.strategy.max_restarts`` times).

    Args:
        actor: which actor died, as the events log names it (``worker 0``).
    """

    def __init__(self, message: str, *, actor: str) -> None:
        super().__init__(message)
        self.actor = actor


class RestartsSpent(SkateError, RuntimeError):
    """An actor died and the run has replaced actors ``train.strategy.max_restarts`` times already:
    the run ends with this reason, printed as one line (and stays resumable from its last checkpoint)."""


def actor_died(error: BaseException | None) -> bool:
    """Whether ``error``, or the error inside a failed task, is the death of an actor.

    A compiled graph's channel closing counts as one; its timing out does not (every actor may be
    alive). An error raised by the code an actor runs is not a death, even in a task that an actor
    died under, unless that error is itself a death (a worker whose shard went away)."""
    for _ in range(8):  # a failed task's cause may be another task that failed, and so on
        if error is None or isinstance(error, RayChannelTimeoutError):
            return False
        if not isinstance(error, RayTaskError):
            return isinstance(error, (RayActorError, RayChannelError, ConnectionLost))
        error = error.cause
    return False


def engine_lost(error: BaseException) -> EngineLost | None:
    """``error`` as the loss of the engine when it is one (an :class:`EngineLost`, or an actor's death
    that the engine let through), else ``None``."""
    if isinstance(error, EngineLost):
        return error
    if actor_died(error):
        return EngineLost(f"an actor died: {first_line(error)}", actor="an actor")
    return None


def spent(what: str, *, restarts: int, max_restarts: int) -> RestartsSpent:
    """The error that ends a run when ``what`` happened with no restart left."""
    return RestartsSpent(f"{what} and the engine has replaced actors {restarts} times already "
                         f"(train.strategy.max_restarts: {max_restarts}); the run stops here and can go on "
                         f"from its last checkpoint with 'skate run --resume'")
