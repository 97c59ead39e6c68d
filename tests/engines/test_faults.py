"""What counts as an actor's death (and what does not), without Ray running."""

from __future__ import annotations

import pytest
from ray.exceptions import ActorDiedError, RayChannelError, RayChannelTimeoutError, RayTaskError

from skate.engines.faults import actor_died, engine_lost, EngineLost, RestartsSpent, spent
from skate.engines.ps.wire import ShardLost


def failed_task(cause: BaseException) -> RayTaskError:
    """What ``ray.get`` raises when the task raised ``cause``."""
    return RayTaskError("f", "traceback", cause).as_instanceof_cause()


@pytest.mark.parametrize("error", [
    ActorDiedError(),
    failed_task(ActorDiedError()),  # a worker whose call to a shard found it dead
    failed_task(failed_task(ActorDiedError())),
    failed_task(ShardLost(1, "closed its connection during a push (the shard died)")),
    ShardLost(0, "does not answer"),
    RayChannelError("the channel closed"),
], ids=["actor", "task-of-actor", "nested", "shard-connection-in-task", "shard-connection", "channel"])
def test_a_death_is_told_in_every_shape_ray_gives_it(error: BaseException) -> None:
    assert actor_died(error)
    lost = engine_lost(error)
    assert isinstance(lost, EngineLost) and lost.actor == "an actor"


@pytest.mark.parametrize("error", [
    failed_task(ValueError("a bug in the model")),
    RayChannelTimeoutError("slow, not dead"),
    ValueError("not Ray's"),
    None,
], ids=["user-error-in-task", "channel-timeout", "plain", "none"])
def test_an_error_of_the_code_or_a_timeout_is_no_death(error: BaseException | None) -> None:
    assert not actor_died(error)
    if error is not None:
        assert engine_lost(error) is None


def test_engine_lost_keeps_the_engines_own_name_for_the_actor() -> None:
    lost = EngineLost("worker 0 died", actor="worker 0")
    assert engine_lost(lost) is lost


def test_spent_names_the_death_the_limit_and_the_way_on() -> None:
    error = spent("shard 1 died", restarts=3, max_restarts=3)
    assert isinstance(error, RestartsSpent) and isinstance(error, RuntimeError)
    assert str(error).startswith("shard 1 died and the engine has replaced actors 3 times already "
                                 "(train.strategy.max_restarts: 3)")
    assert "skate run --resume" in str(error)
