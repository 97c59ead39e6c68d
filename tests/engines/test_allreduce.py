"""How the allreduce engine's driver reads its workers' replies, with stand-in queues (no Ray Train):
an error of skate's code ends the run, anything else that stops the workers is the engine lost."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from ray.exceptions import ActorDiedError
from ray.util.queue import Empty

from skate.engines.allreduce_engine import _peer_lost, AllreduceEngine, backend, WorkerFailed
from skate.engines.faults import EngineLost


class StubQueue:
    def __init__(self, answers: list[Any] | None = None, *, dead: bool = False) -> None:
        self.answers, self.dead, self.put_items = list(answers or []), dead, []

    def get(self, timeout: float) -> Any:
        if self.dead:
            raise ActorDiedError()
        if not self.answers:
            raise Empty
        return self.answers.pop(0)

    def put(self, item: Any, timeout: float | None = None) -> None:
        if self.dead:
            raise ActorDiedError()
        self.put_items.append(item)


def engine_with(replies: StubQueue, *, commands: list[StubQueue] | None = None, ended: bool = False) -> AllreduceEngine:
    engine = object.__new__(AllreduceEngine)  # the driver's side only: no Ray Train run behind it
    engine._replies, engine._commands = replies, commands or [StubQueue(), StubQueue()]
    engine._error = RuntimeError("TrainingFailedError: the worker group failed") if ended else None
    engine._thread = threading.Thread(target=lambda: None)
    if not ended:
        engine._thread.is_alive = lambda: True  # type: ignore[method-assign]
    return engine


def test_an_answer_is_returned() -> None:
    engine = engine_with(StubQueue([(1, None), (0, {"train/loss": 0.5})]))
    assert engine._ask("train", (1, 0, 9)) == {"train/loss": 0.5}


def test_a_worker_that_does_not_answer_is_noticed_though_rank_0_did() -> None:
    with pytest.raises(EngineLost):  # rank 1 died after the command: Ray Train's run ended without its answer
        engine_with(StubQueue([(0, {"accuracy": 0.9})]), ended=True)._ask("evaluate", "test")


def test_an_error_of_skates_code_on_a_worker_ends_the_run_with_it() -> None:
    failed = WorkerFailed(rank=1, error="ValueError: bad shape", traceback="Traceback ...", peer_lost=False)
    with pytest.raises(RuntimeError, match="allreduce worker 1 failed: ValueError: bad shape") as caught:
        engine_with(StubQueue([failed]))._ask("evaluate", "validation")
    assert not isinstance(caught.value, EngineLost)


@pytest.mark.parametrize(("engine", "actor"), [
    (engine_with(StubQueue([WorkerFailed(rank=0, error="RuntimeError: gloo", traceback="", peer_lost=True)])),
     "a Ray Train worker"),
    (engine_with(StubQueue(), ended=True), "a Ray Train worker"),  # Ray Train's run ended with no reply
    (engine_with(StubQueue(dead=True)), "the reply queue"),
    (engine_with(StubQueue(), commands=[StubQueue(), StubQueue(dead=True)]), "a command queue"),
], ids=["peer-lost", "run-ended", "reply-queue-died", "command-queue-died"])
def test_any_other_stop_is_the_engine_lost(engine: AllreduceEngine, actor: str) -> None:
    with pytest.raises(EngineLost) as caught:
        engine._ask("train", (1, 0, 9))
    assert caught.value.actor == actor


def test_a_death_seen_from_a_worker_is_told_from_an_error_of_the_code() -> None:
    assert _peer_lost(RuntimeError("[gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:4711"))
    assert not _peer_lost(ValueError("Expected input batch_size (8) to match target batch_size (7)"))
    assert _peer_lost(ActorDiedError())  # the worker's command queue died under its read


@pytest.mark.parametrize(("cuda", "gpus", "expected"), [
    (True, 1.0, "nccl"), (True, 2.0, "nccl"), (True, 0.5, "gloo"), (False, 1.0, "gloo"), (False, 0.0, "gloo")])
def test_workers_average_by_nccl_only_with_a_whole_gpu_each_that_torch_sees(cuda: bool, gpus: float,
                                                                              expected: str) -> None:
    assert backend(cuda=cuda, gpus_per_worker=gpus) == expected
