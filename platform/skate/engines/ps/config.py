"""``train.strategy: {kind: parameter_server, ...}``: the config of the parameter-server engine
(:mod:`skate.engines.ps.engine`), known without Ray or torch."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from skate.config.fields import param
from skate.engines.strategy import STRATEGIES, StrategyConfig, bundle

if TYPE_CHECKING:
    from skate.engines.base import Engine, Workload

StalePolicy = Literal["none", "scale", "drop"]
"""What an async shard does with a stale gradient: apply it, scale its learning rate, or drop it."""
Compression = Literal["none", "fp16", "bf16"]
"""The wire format of gradients and parameters."""
MessageAuth = Literal["auto", "always", "never"]
"""Whether pushes and replies on a socket carry a Poly1305 tag: auto (when the payloads travel on the socket)."""


@STRATEGIES.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class ParameterServerConfig(StrategyConfig):
    """Parameter-server shards and data-parallel workers on Ray actors."""

    kind: str = "parameter_server"
    mode: Literal["sync", "async", "ssp"] = param("sync", doc="sync (mean of all gradients per version), async (apply on arrival) or ssp (bounded staleness)")
    num_workers: int = param(2, doc="data-parallel worker actors; train.batch_size is per worker", gt=0)
    num_shards: int = param(1, doc="parameter-server shard actors, each a slice of the parameters balanced by bytes", gt=0)
    staleness: int | None = param(None, doc="ssp only: how many steps a worker may run ahead of the slowest", ge=0)
    backup_workers: int = param(0, doc="sync only: apply a version from the first num_workers - backup_workers gradients", ge=0)
    stale_policy: StalePolicy = param("none", doc="async only: none, scale (lr / staleness) or drop (staler than max_staleness)")
    max_staleness: int | None = param(None, doc="async with stale_policy drop: the staleness beyond which a gradient is dropped", ge=0)
    compression: Compression = param("none", doc="wire format of gradients and parameters: none (float32), fp16 or bf16")
    cpus_per_worker: float = param(1.0, doc="CPUs reserved for each worker", gt=0)
    gpus_per_worker: float = param(0.0, doc="GPUs reserved for each worker; > 0 computes on cuda", ge=0)
    placement: Literal["pack", "spread"] = param("pack", doc="where the workers and shards go: pack (on as few nodes as hold them, so their bytes stay on one node while it fits) or spread (over as many nodes as there are; workers reach shards on other nodes by TCP)")
    cpus_per_shard: float = param(0.0, doc="CPUs reserved for each shard (0: shards fit beside the workers)", ge=0)
    overlap: bool | None = param(None, doc="compute the next gradient while a push is in flight (one step staler); default: on for async and ssp, off for sync")
    inline_bytes: int = param(512 * 1024, doc="transport actor_calls: worker and shard actor calls carry arguments and results up to this many bytes inline, instead of through the object store (Ray's max_direct_call_object_size, 100 KB by default, set for these actors only)", ge=0)
    shared_memory: bool = param(True, doc="transport sockets: a worker and a shard on one node pass gradients and parameters through shared pages in /dev/shm, the socket carrying only the headers (where /dev/shm is missing, the payloads go on the socket)")
    authenticate_messages: MessageAuth = param("auto", doc="transport sockets: each push and reply carries a Poly1305 tag under a key of its own, drawn from its connection's key, checked before its data is used (a connection that fails one is closed): auto (when the payloads travel on the socket: across nodes, or without shared pages), always, or never (the handshake still proves the job's token both ways)")
    transport: Literal["sockets", "actor_calls", "compiled_graph"] = param("sockets", doc="how gradients and parameters move between workers and shards: sockets (a direct connection from each worker to each shard: Unix on one node, TCP across nodes), actor_calls (a Ray actor call per push; arrays up to inline_bytes ride in the call, larger ones go through the object store), or compiled_graph (a Ray Compiled Graph per step; sync without backup workers only)")

    def __post_init__(self) -> None:
        if self.mode == "sync" and self.overlap:
            raise ValueError("overlap needs mode async or ssp: a sync step waits for the version it pushed to")
        if self.staleness is not None and self.mode != "ssp":
            raise ValueError(f"staleness is the ssp bound; mode is {self.mode!r} (set mode: ssp, or drop staleness)")
        if self.mode == "ssp" and self.staleness is None:
            raise ValueError("mode ssp needs staleness (how many steps a worker may run ahead of the slowest)")
        if self.backup_workers and self.mode != "sync":
            raise ValueError(f"backup_workers applies to mode sync only; mode is {self.mode!r}")
        if self.backup_workers >= self.num_workers:
            raise ValueError(f"backup_workers ({self.backup_workers}) must be fewer than num_workers ({self.num_workers})")
        if self.mode != "async" and (self.stale_policy != "none" or self.max_staleness is not None):
            raise ValueError(f"stale_policy and max_staleness apply to mode async only; mode is {self.mode!r}")
        if (self.stale_policy == "drop") != (self.max_staleness is not None):
            raise ValueError("stale_policy drop and max_staleness go together")
        if self.transport == "compiled_graph" and (self.mode != "sync" or self.backup_workers):
            raise ValueError("transport compiled_graph needs mode sync without backup_workers: its graph "
                             "waits for every worker's gradient at each step")

    @property
    def compiles(self) -> bool:
        """Whether sync steps run as a compiled graph."""
        return self.transport == "compiled_graph"

    @property
    def uses_sockets(self) -> bool:
        """Whether workers push on direct connections to the shards."""
        return self.transport == "sockets"

    @property
    def overlaps(self) -> bool:
        """Whether workers overlap pushes with computation (``overlap``, or its default for the mode)."""
        return self.mode != "sync" if self.overlap is None else self.overlap

    @property
    def actor_options(self) -> dict[str, Any]:
        """Options of every worker and shard actor: the inline size in their environment (a Ray
        process reads ``RAY_<setting>`` when the cluster did not set it; the job's own environment
        variables are kept, Ray merges the two)."""
        return {"runtime_env": {"env_vars": {"RAY_max_direct_call_object_size": str(self.inline_bytes)}}}

    worker_resource_fields: ClassVar[tuple[str, str]] = ("cpus_per_worker", "gpus_per_worker")

    def bundles(self) -> list[dict[str, float]]:
        workers = [bundle(self.cpus_per_worker, self.gpus_per_worker)] * self.num_workers
        return workers + ([bundle(self.cpus_per_shard)] * self.num_shards if self.cpus_per_shard else [])

    def create(self, workload: Workload) -> Engine:
        from skate.engines.ps.engine import ParameterServerEngine

        return ParameterServerEngine(self, workload)
