"""The allreduce engine: the job through Ray Train's TorchTrainer (DDP; gloo on CPU, nccl on GPU); its
config is :class:`skate.engines.allreduce.AllreduceConfig`.

Ray Train runs one function per worker to its end, while skate's driver wants to ask for an epoch,
an evaluation or a state at a time. So each worker runs a small command loop: the driver puts a
command in every worker's queue, the workers carry it out together (a training epoch is the only
collective one), and every rank puts its answer in the reply queue (rank 0's carries what was
asked; the others' say they are alive, so a dead worker is noticed at the next command, whichever it
is, rather than at the next collective one).

Faults: an error in skate's code on a worker comes back through the reply queue as a
:class:`WorkerFailed` and ends the run with that error. Anything else that stops Ray Train's run, or
a queue's actor dying, is the death of an actor (a worker, a queue, Ray Train's own): the engine is
lost (:class:`EngineLost`) and the trainer starts a new one from the last checkpoint. No guessing
from error texts: Ray Train wraps a worker's death differently from one phase to another.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
import time
import traceback
import warnings
from typing import TYPE_CHECKING, Any

import ray
import torch
from ray.exceptions import RayActorError
from ray.util.queue import Empty, Queue

from skate import phases
from skate.capacity import room_for
from skate.errors import first_line
from skate.engines.base import Engine, Metrics, Workload
from skate.engines.faults import actor_died, EngineLost
from skate.engines.placement import placed_event
from skate.engines.replica import assigned_device, EpochClock, Replica, means, to_cpu

if TYPE_CHECKING:
    from skate.engines.allreduce import AllreduceConfig

_POLL_S = 1.0


@dataclasses.dataclass(frozen=True)
class WorkerFailed:
    """What a worker puts in the reply queue when skate's code raised on it."""

    rank: int
    error: str
    traceback: str
    peer_lost: bool
    """Whether the error is another actor's death under the worker (a peer in a collective operation,
    its command queue), not an error of skate's code."""


def _worker_loop(config: dict[str, Any]) -> None:
    """What each Ray Train worker runs: commands from its queue until ``stop``. An error raised here
    is reported in the reply queue before it ends the worker."""
    rank = -1
    try:
        import ray.train

        rank = ray.train.get_context().get_world_rank()
        _serve_commands(config)
    except Exception as error:
        failure = WorkerFailed(rank=rank, error=f"{type(error).__name__}: {first_line(error)}",
                               traceback=traceback.format_exc(), peer_lost=_peer_lost(error))
        try:
            config["replies"].put(failure, timeout=10)
        except Exception:  # noqa: BLE001 - the reply queue died too: the driver sees an engine lost
            pass
        raise


def _peer_lost(error: BaseException) -> bool:
    """Whether ``error`` is an actor's death seen from a worker: its command queue's (Ray raises the
    death), or a peer's in a collective operation (torch raises gloo's and NCCL's failures as
    ``DistError`` or as a ``RuntimeError`` naming the transport)."""
    import torch.distributed as dist

    text = str(error)
    return actor_died(error) or isinstance(error, dist.DistError) or any(
        sign in text for sign in ("gloo", "NCCL", "Connection closed", "Connection reset", "Broken pipe"))


def _serve_commands(config: dict[str, Any]) -> None:
    import ray.train
    import torch.distributed as dist
    from ray.train.torch import prepare_model

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    workload: Workload = config["workload"]
    device = assigned_device()  # the CPU, with a warning, where Ray grants a GPU torch cannot see
    replica = Replica(workload, rank=rank, num_replicas=world, device=device)
    # A model that trains in phases leaves some parameters out of a phase's graph; DDP must know.
    unused = bool(getattr(replica.model, "unused_parameters", False))
    replica.train_model = prepare_model(replica.model, move_to_device=torch.device(device),
                                        parallel_strategy_kwargs={"find_unused_parameters": unused})
    optimizer = workload.optimizer.build(replica.model.parameters())
    commands, replies = config["commands"][rank], config["replies"]

    def train_steps(epoch: int, start: int, stop: int) -> Metrics:
        nonlocal optimizer
        if workload.new_phase(epoch, start):
            optimizer = workload.optimizer.build(replica.model.parameters())
        clock = EpochClock()
        sums: dict[str, float] = {}
        for step, batch in enumerate(replica.batches(epoch, start, stop), start=start):
            step_total = replica.step_examples(step)
            if not replica.step_runs(step):  # every rank skips this step alike
                continue
            optimizer.zero_grad(set_to_none=True)
            # DDP averages gradients over ranks: a sum over world/step_total makes the step's
            # gradient the mean over all of the step's examples, whatever each rank's share.
            # Clipped (and checked for fp16 overflow) after DDP averaged it, as on one process.
            if replica.gradient(batch, sums, divisor=step_total / world):
                replica.schedule(optimizer, epoch, step)
                optimizer.step()
        names = sorted(sums)
        totals = torch.tensor([sums[n] for n in names], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(totals)
        merged = dict(zip(names, totals.tolist()))
        counters = replica.take_refused()
        if world > 1 and "data/rows" in counters:  # a stream: each rank's wait, on average; the rows, in all
            shared = torch.tensor([counters["data/wait_s"], counters["data/rows"]], dtype=torch.float64)
            dist.all_reduce(shared)
            counters.update({"data/wait_s": float(shared[0]) / world, "data/rows": float(shared[1])})
        return {**{f"train/{n}": v for n, v in means(merged).items()}, **counters,
                **clock.metrics(merged.get("count", 0.0))}

    while True:
        command, argument = commands.get()
        if command == "stop":
            return
        if command == "train":
            answer: Any = train_steps(*argument)
        elif command == "evaluate":
            answer = replica.evaluate(argument) if rank == 0 else None
        elif command == "state":
            answer = to_cpu({"model": replica.model.state_dict(), "optimizer": optimizer.state_dict()}) if rank == 0 else None
        elif command == "load_state":
            replica.model.load_state_dict(argument["model"])
            optimizer.load_state_dict(argument["optimizer"])
            answer = True
        elif command == "where":
            answer = ray.get_runtime_context().get_node_id()
        elif command == "load_weights":
            replica.model.load_state_dict(argument)
            answer = True
        else:
            raise AssertionError(f"unknown command {command!r}")
        replies.put((rank, answer))


def backend(*, cuda: bool, gpus_per_worker: float) -> str:
    """How the workers average: NCCL when each has a whole GPU that torch sees, else gloo (on the CPU,
    or over CUDA tensors when workers share a GPU: NCCL refuses two ranks on one device)."""
    return "nccl" if cuda and gpus_per_worker >= 1 else "gloo"


class AllreduceEngine(Engine):
    """Drives a TorchTrainer whose workers obey :func:`_worker_loop`."""

    def __init__(self, config: AllreduceConfig, workload: Workload) -> None:
        self.steps_per_epoch = workload.steps_per_epoch(config.num_workers)
        self._pending = False
        self._error: BaseException | None = None
        self._events: list[dict[str, Any]] = []
        # Ray Train places its workers itself: skate makes sure the room is there first (asking the
        # autoscaler, refusing the impossible) and learns whether torch sees the GPUs Ray grants;
        # the autoscaler's request stands until the workers are placed.
        with room_for(config.bundles(), what="allreduce") as room:
            cuda = bool(config.gpus_per_worker) and room.cuda_usable()
            room.remove()
            if config.gpus_per_worker and not cuda:
                warnings.warn(f"Ray grants each allreduce worker {config.gpus_per_worker:g} GPU, but torch there sees "
                              "no CUDA device: the workers train on the CPU and average by gloo", RuntimeWarning,
                              stacklevel=3)
            self._start(config, workload, backend=backend(cuda=cuda, gpus_per_worker=config.gpus_per_worker))
            try:
                nodes = self._ask("where", every_rank=True)
            except BaseException:
                self.shutdown()
                raise
        self._events.append(placed_event({f"worker {rank}": node for rank, node in sorted(nodes.items())},
                                         where=(0, 0), waited_s=room.waited_s))
        phases.enter("engine_start")

    def _start(self, config: AllreduceConfig, workload: Workload, *, backend: str) -> None:
        """Ray Train's run of :func:`_worker_loop`, in a thread, with the queues to command its workers."""
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        queue_options = {"num_cpus": 0}
        self._commands = [Queue(actor_options=queue_options) for _ in range(config.num_workers)]
        self._replies = Queue(actor_options=queue_options)
        self._storage = tempfile.mkdtemp(prefix="skate-allreduce-")
        resources = {"CPU": config.cpus_per_worker, **({"GPU": config.gpus_per_worker} if config.gpus_per_worker else {})}
        trainer = TorchTrainer(
            _worker_loop,
            train_loop_config={"workload": workload, "commands": self._commands, "replies": self._replies},
            scaling_config=ScalingConfig(num_workers=config.num_workers, use_gpu=config.gpus_per_worker > 0,
                                         resources_per_worker=resources),
            torch_config=TorchConfig(backend=backend),
            # A worker lost while the group starts is skate's to replace, like any other death: Ray
            # Train would retry the start without end and without a word.
            run_config=RunConfig(storage_path=self._storage, name="allreduce",
                                 failure_config=FailureConfig(max_failures=0, controller_failure_limit=0)),
        )
        self._thread = threading.Thread(target=self._fit, args=(trainer,), daemon=True, name="skate-allreduce")
        self._thread.start()

    def _fit(self, trainer: Any) -> None:
        try:
            trainer.fit()
        except BaseException as error:  # handed to the driver's next wait
            self._error = error

    def take_events(self) -> list[dict[str, Any]]:
        events, self._events = self._events, []
        return events

    def _ask(self, command: str, argument: Any = None, *, every_rank: bool = False) -> Any:
        try:
            for queue in self._commands:
                queue.put((command, argument))
        except RayActorError as error:
            raise EngineLost(f"a command queue died: {first_line(error)}", actor="a command queue") from error
        return self._reply(every_rank=every_rank)

    def _reply(self, timeout_s: float | None = None, *, every_rank: bool = False) -> Any:
        """Rank 0's answer to the last command (every rank's, by rank, if ``every_rank``), once every
        rank has answered."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        answers: dict[int, Any] = {}
        while len(answers) < len(self._commands):
            try:
                reply = self._replies.get(timeout=_POLL_S)
            except Empty:
                if self._error is not None or not self._thread.is_alive():
                    raise EngineLost(f"the Ray Train run stopped: {first_line(self._error)}",
                                     actor="a Ray Train worker") from self._error
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"no answer from the allreduce workers in {timeout_s} s")
                continue
            except RayActorError as error:
                raise EngineLost(f"the reply queue died: {first_line(error)}", actor="the reply queue") from error
            if isinstance(reply, WorkerFailed) and reply.peer_lost:
                raise EngineLost(f"allreduce worker {reply.rank} lost a peer: {reply.error}",
                                 actor="a Ray Train worker")
            if isinstance(reply, WorkerFailed):
                raise RuntimeError(f"allreduce worker {reply.rank} failed: {reply.error}\n{reply.traceback}")
            rank, answer = reply
            answers[rank] = answer
        return answers if every_rank else answers[0]

    def train_steps(self, epoch: int, start: int, stop: int) -> Metrics:
        self._pending = True
        metrics = self._ask("train", (epoch, start, stop))
        self._pending = False
        return metrics

    def finish_pending(self, timeout_s: float) -> Metrics | None:
        if not self._pending:
            return None
        self._pending = False
        return self._reply(timeout_s)

    def evaluate(self, split: str) -> Metrics:
        return self._ask("evaluate", split)

    def state(self) -> dict[str, Any]:
        return self._ask("state")

    def load_state(self, state: dict[str, Any]) -> None:
        self._ask("load_state", state)

    def load_weights(self, weights: dict[str, Any]) -> None:
        self._ask("load_weights", weights)

    def shutdown(self) -> None:
        if self._thread.is_alive() and self._error is None:
            try:
                for queue in self._commands:
                    queue.put(("stop", None), timeout=10)
            except Exception:  # noqa: BLE001 - a dead queue: its workers fail on their next read and Ray Train ends
                pass
            self._thread.join(timeout=60)
        for queue in [*self._commands, self._replies]:
            queue.shutdown()
        shutil.rmtree(self._storage, ignore_errors=True)
