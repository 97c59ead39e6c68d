"""The parameter-server engine: shard actors hold the parameters, worker actors compute gradients.

The driver starts the actors, asks every worker for an epoch, and gathers metrics and
checkpoints; gradients and parameters go between workers and shards only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import numpy as np
import ray
import torch
from ray.exceptions import RayActorError, RayError, RayTaskError

from skate import phases
from skate.engines.base import Engine, Metrics, Workload
from skate.engines.faults import actor_died, EngineLost, spent
from skate.engines.placement import JobPlacement, actor_nodes, placed_event
from skate.engines.ps.asynchronous import AsyncRule
from skate.engines.ps.auth import new_token
from skate.engines.ps.compiled import CompiledSteps
from skate.engines.ps.layout import Layout
from skate.engines.ps.shard import as_tensors, ParameterShard, UpdateRule
from skate.engines.ps.ssp import SspRule
from skate.engines.ps.sync import SyncRule
from skate.engines.ps.wire import ShardLost
from skate.engines.ps.worker import PSWorker
from skate.engines.replica import EpochClock, means
from skate.errors import first_line

if TYPE_CHECKING:
    from skate.engines.ps.config import ParameterServerConfig


T = TypeVar("T")


def make_rule(config: "ParameterServerConfig") -> UpdateRule:
    if config.mode == "sync":
        return SyncRule(num_workers=config.num_workers, backup_workers=config.backup_workers)
    if config.mode == "ssp":
        return SspRule(num_workers=config.num_workers, staleness=config.staleness or 0)
    return AsyncRule(stale_policy=config.stale_policy, max_staleness=config.max_staleness)


class ParameterServerEngine(Engine):
    """Drives the shards and workers of one job.

    Faults: a worker that dies leaves the shards' barriers at once, so the others go on; a
    replacement rejoins at the start of the next segment of steps (its lost batches are not
    rerun). Any other death (a shard), in any call the driver makes (a segment, the snapshot after
    it, an evaluation, loading a state or weights, a rollback already under way), rolls every actor
    back to the last snapshot and makes the call again. Both count against ``max_restarts`` and are
    recorded as events; past it the run ends with :class:`~skate.engines.faults.RestartsSpent`. A
    death while the engine starts, before its first snapshot, is :class:`EngineLost` (the trainer
    starts a new engine).
    """

    def __init__(self, config: "ParameterServerConfig", workload: Workload) -> None:
        self.config = config
        self.workload = workload
        self.steps_per_epoch = workload.steps_per_epoch(config.num_workers)
        torch.manual_seed(workload.seed)  # the same initial weights as every replica and as `single`
        model = workload.model.create(workload.info())
        self.layout = Layout.of(model, config.num_shards)
        self._snapshot: dict[str, Any] | None = None
        self._fetched: dict[str, Any] | None = None  # the state fetched with a segment's statistics
        self._drained = False  # whether the shards were told to drain, and not told since to stop
        self._token = b""  # what workers prove they hold to the shards' sockets (made with the shards)
        # Worker r goes in bundle r (its replacement too); a shard in its own bundle if it reserves
        # CPUs, else in any (it then runs beside the workers).
        self.placement = JobPlacement(config.bundles(), name="parameter_server", strategy=config.placement)
        self.workers: list[Any] = []
        self.shards: list[Any] = []
        self._graph: CompiledSteps | None = None
        self._in_flight: dict[ray.ObjectRef, int] = {}
        self._results: list[dict[str, float]] = []
        self._lost: list[int] = []
        self._where = (0, 0)
        self._segment = (0, 0, 0)
        self._start_version = 0
        self._clock = EpochClock()
        self._events: list[dict[str, Any]] = []
        self.restarts = 0
        self._deaths = 0  # rollbacks begun since the last one that completed
        self.faults = {"worker_restarts": 0, "rollbacks": 0}
        self.recovery_s = 0.0
        try:
            self._start(self.layout.flatten(dict(model.named_parameters())))
            self._events.append(self._placed(waited_s=self.placement.waited_s))
            phases.enter("engine_start")
            self._keep_snapshot()
        except BaseException as error:
            self.shutdown()
            if isinstance(error, RayError) and actor_died(error):
                raise EngineLost(f"{self._dead_actor(error)} died while the parameter server started: "
                                 f"{first_line(error)}", actor=self._dead_actor(error)) from error
            raise

    def _start(self, flat: np.ndarray) -> None:
        config = self.config
        shard_actor = ray.remote(num_cpus=config.cpus_per_shard)(ParameterShard)
        self.shards = [
            shard_actor.options(**self.placement.options(config.num_workers + i if config.cpus_per_shard else -1),
                                **config.actor_options)
            .remote(init=flat[lo:hi], optimizer=self.workload.optimizer, rule=make_rule(config),
                    compression=config.compression, total_steps=self.workload.epochs * self.steps_per_epoch,
                    updates_per_step=1 if config.mode == "sync" else config.num_workers,
                    refuse_grad_norm=self.workload.refuse_grad_norm)
            for i, (lo, hi) in enumerate(self.layout.shards)
        ]
        # A new token for new shards (at the start and at each rollback): a worker of a set rolled
        # back, or anyone who learnt the last token, cannot talk to them.
        self._token = new_token()
        self.addresses = (ray.get([shard.serve.remote(self._token, num_workers=config.num_workers)
                                   for shard in self.shards]) if config.uses_sockets else None)
        self.workers = [self._new_worker(rank) for rank in range(config.num_workers)]
        self._graph = CompiledSteps(self.workers, self.shards) if config.compiles else None

    @property
    def transport(self) -> str:
        """How the current steps move: ``sockets``, ``compiled_graph`` or ``actor_calls``."""
        if self._graph is not None:
            return "compiled_graph"
        return "sockets" if self.addresses is not None else "actor_calls"

    def _new_worker(self, rank: int) -> Any:
        config = self.config
        actor = ray.remote(num_cpus=config.cpus_per_worker, num_gpus=config.gpus_per_worker)(PSWorker)
        return actor.options(**self.placement.options(rank), **config.actor_options).remote(
            self.workload, rank=rank, num_workers=config.num_workers, shards=self.shards, layout=self.layout,
            compression=config.compression, overlap=config.overlaps, addresses=self.addresses, token=self._token,
            shared_memory=config.shared_memory, authenticate_messages=config.authenticate_messages)

    def train_steps(self, epoch: int, start: int, stop: int) -> Metrics:
        return self._guarded(lambda: self._run_segment(epoch, start, stop), after=self._keep_snapshot)

    def _guarded(self, call: Callable[[], T], *, after: Callable[[], None] | None = None) -> T:
        """``call``, and ``after`` it; if an actor dies meanwhile, or during the rollback that follows,
        roll back to the last snapshot (the state after the last segment) and try again, up to
        ``max_restarts`` in the run."""
        failure: RayError | None = None
        while True:
            try:
                if failure is not None:
                    self._roll_back(failure)
                    failure = None
                result = call()
                if after is not None:
                    after()
                return result
            except RayError as error:
                if not actor_died(error):
                    raise
                if self._snapshot is None or not self._can_restart():
                    raise spent(f"{self._dead_actor(error)} died", restarts=self.restarts,
                                max_restarts=self.config.max_restarts) from error
                failure = error

    def _keep_snapshot(self) -> None:
        """Keep the state a rollback returns to (the segment is not done until it is in hand): the
        state fetched with the segment's statistics (:meth:`_merge`), or else fetched now."""
        fetched, self._fetched = self._fetched, None
        if fetched is None:
            phases.enter("snapshot")
            fetched = self._fetch_state() if self._can_restart() else None
        self._snapshot = fetched

    def _can_restart(self) -> bool:
        return self.restarts < self.config.max_restarts

    def _run_segment(self, epoch: int, start: int, stop: int) -> Metrics:
        self._clock = EpochClock()
        self._where = (epoch, start)
        self._segment = (epoch, start, stop)
        self._results, self._lost = [], []
        self._fetched = None
        if self.workload.new_phase(epoch, start):
            ray.get([shard.reset_optimizer.remote() for shard in self.shards])
        if self._graph is not None:
            self._start_version = ray.get(self.shards[0].version.remote())
            return self._finish_compiled(start=(epoch, start, stop))
        if self._drained:  # told to apply whatever arrived as the last segment ended (see _finish)
            ray.get([shard.begin_segment.remote() for shard in self.shards])
            self._drained = False
        self._in_flight = {w.train_steps.remote(epoch, start, stop): rank for rank, w in enumerate(self.workers)}
        return self._finish(None)

    def finish_pending(self, timeout_s: float) -> Metrics | None:
        if self._graph is not None and self._graph.busy:
            metrics = self._finish_compiled()
        elif self._in_flight:
            metrics = self._finish(timeout_s)
        else:
            return None
        self._guarded(self._keep_snapshot)
        return metrics

    def _finish_compiled(self, start: tuple[int, int, int] | None = None) -> Metrics:
        """Run the segment's steps through the compiled graph (setting the workers on them first if
        ``start`` is given). If an actor dies, the graph is torn down; dead workers leave and the
        live ones finish the segment by actor calls from the step the shards reached (a dead shard
        raises, and the segment is rolled back)."""
        assert self._graph is not None
        try:
            if start is not None:
                self._graph.start(*start)
            self._graph.run()
            self._results = ray.get([w.end_steps.remote() for w in self.workers])
        except RayError as error:
            if not actor_died(error):
                raise
            self._graph.teardown()
            self._graph = None
            return self._continue_by_calls(error)
        return self._merge(self._results)

    def _continue_by_calls(self, error: RayError) -> Metrics:
        versions = ray.get([shard.version.remote() for shard in self.shards])  # raises if a shard died
        dead = [rank for rank, worker in enumerate(self.workers) if not _answers(worker)]
        if not dead or len(set(versions)) > 1:
            raise error  # not a worker's death, or the shards disagree on the step: roll back
        live = [rank for rank in range(len(self.workers)) if rank not in dead]
        self._results = ray.get([self.workers[rank].end_steps.remote() for rank in live])
        for rank in dead:
            self._leave(rank)
        epoch, start, stop = self._segment
        resume = start + versions[0] - self._start_version
        self._in_flight = {self.workers[rank].train_steps.remote(epoch, resume, stop): rank for rank in live}
        return self._finish(None)

    def _finish(self, timeout_s: float | None) -> Metrics:
        """Wait for the segment's workers; a dead worker leaves the barriers and is replaced at the end."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        drained = False
        while self._in_flight:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            ready, _ = ray.wait(list(self._in_flight), num_returns=1, timeout=left)
            if not ready:
                raise TimeoutError(f"the parameter-server workers did not finish in {timeout_s} s")
            rank = self._in_flight.pop(ready[0])
            try:
                self._results.append(ray.get(ready[0]))
            except RayActorError as error:
                if isinstance(error, RayTaskError):  # the worker lived; something it called died
                    raise
                self._leave(rank)
            if not drained and self.config.mode == "sync" and self._starved():
                # Fewer workers are left than a version needs: apply what arrives from now on.
                ray.get([shard.drain.remote() for shard in self.shards])
                drained = self._drained = True
        self._replace_lost()
        return self._merge(self._results)

    def _starved(self) -> bool:
        live = self.config.num_workers - len(self._lost)
        return 0 < len(self._in_flight) < min(self.config.num_workers - self.config.backup_workers, live)

    def _leave(self, rank: int) -> None:
        self._record("worker_died", f"worker {rank}", "the others go on; a replacement joins at the next segment")
        self._lost.append(rank)
        ray.get([shard.leave.remote(rank) for shard in self.shards])

    def _replace_lost(self) -> None:
        for rank in self._lost:
            if not self._can_restart():
                raise spent(f"worker {rank} died", restarts=self.restarts, max_restarts=self.config.max_restarts)
            started = time.perf_counter()
            self.workers[rank] = self._new_worker(rank)
            ray.get(self.workers[rank].refresh.remote())
            ray.get([shard.rejoin.remote(rank) for shard in self.shards])
            self.restarts += 1
            self.faults["worker_restarts"] += 1
            took = time.perf_counter() - started
            self.recovery_s += took
            self._record("worker_replaced", f"worker {rank}", f"rejoined after {took:.1f} s", recovery_s=took)
        if self._lost:
            self._events.append(self._placed(waited_s=0.0))
        self._lost = []
        if self.config.compiles and self._graph is None:
            self._graph = CompiledSteps(self.workers, self.shards)

    def _roll_back(self, error: RayError) -> None:
        """Replace every actor and restore the snapshot on them (a restart, counted before it is
        tried, so that deaths during rollbacks end too)."""
        assert self._snapshot is not None
        snapshot = self._snapshot
        started = time.perf_counter()
        dead = self._dead_actor(error)
        self.restarts += 1
        self._deaths += 1
        self._in_flight, self._lost = {}, []
        self._stop_actors()
        self._start(self.layout.flatten(snapshot["model"]))
        self._events.append(self._placed(waited_s=0.0))
        phases.enter("rollback")
        self._restore(snapshot)
        self.faults["rollbacks"] += 1
        took = time.perf_counter() - started
        self.recovery_s += took
        deaths, self._deaths = self._deaths, 0
        self._record("rolled_back", dead,
                     f"every actor replaced from the state after the last segment, whose steps run again "
                     f"({took:.1f} s)", recovery_s=took, deaths=deaths)

    def _placed(self, *, waited_s: float) -> dict[str, Any]:
        named = {**{f"worker {i}": w for i, w in enumerate(self.workers)}, **{f"shard {i}": s for i, s in enumerate(self.shards)}}
        return placed_event(actor_nodes(named), where=self._where, waited_s=waited_s)

    def _dead_actor(self, error: BaseException) -> str:
        cause: Any = error
        while isinstance(cause, RayTaskError):
            cause = cause.cause
        if isinstance(cause, ShardLost):
            return f"shard {cause.shard}"
        dead = getattr(cause, "actor_id", None)
        named = [(f"shard {i}", a) for i, a in enumerate(self.shards)] + [(f"worker {i}", a) for i, a in enumerate(self.workers)]
        return next((name for name, actor in named if actor._actor_id.hex() == dead), "an actor")

    def _record(self, kind: str, actor: str, detail: str, *, recovery_s: float | None = None, deaths: int = 1) -> None:
        """An event for the run's log. The step counter never goes back here (``steps_lost`` 0): a
        rollback returns to the segment's start, which is where the counter stands. ``deaths``: how
        many deaths a recovery answers (more than one when actors died during its rollback)."""
        epoch, step = self._where
        self._events.append({"time": time.time(), "kind": kind, "actor": actor, "epoch": epoch, "step": step,
                             "detail": detail, "steps_lost": 0,
                             **({} if recovery_s is None else {"recovery_s": round(recovery_s, 3), "deaths": deaths})})

    def take_events(self) -> list[dict[str, Any]]:
        events, self._events = self._events, []
        return events

    def _merge(self, results: list[dict[str, float]]) -> Metrics:
        sums: dict[str, float] = {}
        for result in results:
            for name, value in result.items():
                if not name.startswith(("perf/", "guard/", "data/")) and name != "wire_bytes_per_step":
                    sums[name] = sums.get(name, 0.0) + value
        metrics = {f"train/{name}": value for name, value in means(sums).items()}
        metrics["perf/wire_bytes_per_worker_step"] = sum(r["wire_bytes_per_step"] for r in results) / len(results)
        if any("data/rows" in r for r in results):  # a stream: each worker's wait, on average; the rows, in all
            metrics["data/wait_s"] = sum(r.get("data/wait_s", 0.0) for r in results) / len(results)
            metrics["data/rows"] = sum(r.get("data/rows", 0.0) for r in results)
        # The statistics, and the state a rollback would return to, in one call to each shard.
        snapshot = self._can_restart()
        if snapshot:
            phases.enter("snapshot")
        ends = ray.get([shard.end_segment.remote(snapshot) for shard in self.shards])
        stats = [end["stats"] for end in ends]
        self._fetched = self._state_of([end["state"] for end in ends]) if snapshot else None
        applied = sum(s["applied"] for s in stats)
        metrics["ps/dropped_gradients"] = float(sum(s["dropped"] for s in stats))
        # Refused by the workers' guard, and by the shards' (each shard counts its slice of a gradient).
        metrics["guard/refused_gradients"] = (sum(r.get("guard/refused_gradients", 0.0) for r in results)
                                              + float(max(s["refused"] for s in stats)))
        if self.config.mode != "sync":
            pushes = applied + metrics["ps/dropped_gradients"]
            metrics["ps/staleness_mean"] = sum(s["staleness_sum"] for s in stats) / max(pushes, 1.0)
        metrics.update({f"faults/{name}": float(count) for name, count in self.faults.items()})
        metrics["faults/recovery_s"] = self.recovery_s
        metrics.update(self._clock.metrics(sums.get("count", 0.0)))
        return metrics

    def evaluate(self, split: str) -> Metrics:
        return self._guarded(lambda: ray.get(self.workers[0].evaluate.remote(split)))

    def state(self) -> dict[str, Any]:
        """The shards' state; right after a segment, the snapshot already fetched."""
        if self._snapshot is not None:
            return self._snapshot
        return self._guarded(self._fetch_state)

    def _fetch_state(self) -> dict[str, Any]:
        return self._state_of(ray.get([shard.state.remote() for shard in self.shards]))

    def _state_of(self, shards: list[dict[str, Any]]) -> dict[str, Any]:
        """The engine's state from each shard's :meth:`~ParameterShard.state` (arrays, read where they lie)."""
        model = self.layout.unflatten_shards([s["params"] for s in shards])
        shards = as_tensors(shards)
        return {"model": model,
                "optimizer": {"shards": [{"optimizer": s["optimizer"], "version": s["version"]} for s in shards]}}

    def load_state(self, state: dict[str, Any]) -> None:
        self._guarded(lambda: self._restore(state))

    def _restore(self, state: dict[str, Any]) -> None:
        flat = self.layout.flatten(state["model"])
        saved = state["optimizer"].get("shards")
        if saved is None or len(saved) != len(self.shards):
            raise ValueError("the checkpoint's optimizer state is not from a parameter server with "
                             f"{len(self.shards)} shards")
        ray.get([
            shard.load_state.remote({"params": torch.from_numpy(flat[lo:hi].copy()), **s})
            for shard, s, (lo, hi) in zip(self.shards, saved, self.layout.shards)
        ])
        ray.get([worker.refresh.remote() for worker in self.workers])
        self._snapshot = {"model": state["model"], "optimizer": state["optimizer"]} if self._can_restart() else None

    def load_weights(self, weights: dict[str, Any]) -> None:
        flat = self.layout.flatten(weights)

        def load() -> None:
            ray.get([shard.set_params.remote(flat[lo:hi]) for shard, (lo, hi) in zip(self.shards, self.layout.shards)])
            ray.get([worker.refresh.remote() for worker in self.workers])

        self._guarded(load, after=self._keep_snapshot)

    def shutdown(self) -> None:
        self._stop_actors()
        self.placement.remove()

    def _stop_actors(self) -> None:
        # Actors first: a graph torn down around live actors can wait forever on a loop that does
        # not see its channels close; around dead ones it returns at once.
        for actor in self.workers + self.shards:
            ray.kill(actor)
        if self._graph is not None:
            self._graph.teardown()
            self._graph = None


def _answers(actor: Any, timeout_s: float = 10.0) -> bool:
    """Whether ``actor`` is alive and answers a call."""
    try:
        ray.get(actor.ping.remote(), timeout=timeout_s)
        return True
    except RayError:
        return False
