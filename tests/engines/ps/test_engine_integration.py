"""The parameter-server engine on a real local Ray: equal to `single` where it must be, and learning."""

from __future__ import annotations

import time

import pytest
import ray
import torch

from skate.data import split_table
from skate.data.sources import DigitsConfig
from skate.engines.base import Engine, Workload
from skate.engines.optim import OptimizerConfig
from skate.engines.ps.config import ParameterServerConfig
from skate.engines.schedule import CosineSchedule
from skate.engines.single import SingleStrategyConfig
from skate.models.rnn import RnnClassifierConfig

pytestmark = pytest.mark.integration
SEED, BATCH = 5, 32
MODEL = RnnClassifierConfig(num_units=24)


@pytest.fixture(scope="module")
def refs(ray_local: None) -> dict:
    tables = split_table(DigitsConfig().load(), validation_fraction=0.15, test_fraction=0.15, seed=0)
    return {name: ray.put(t) for name, t in tables.items()}


def workload(refs: dict, *, batch_size: int, optimizer: OptimizerConfig) -> Workload:
    return Workload(model=MODEL, optimizer=optimizer, batch_size=batch_size, seed=SEED, tables=refs, epochs=2)


def train(engine: Engine, epochs: int) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]]:
    try:
        metrics = [engine.train_epoch(epoch) for epoch in range(1, epochs + 1)]
        return engine.state()["model"], metrics
    finally:
        engine.shutdown()


@pytest.mark.parametrize("num_shards", [1, 3])
@pytest.mark.parametrize("optimizer", [OptimizerConfig(name="sgd", lr=0.1, schedule=CosineSchedule(warmup_steps=5)),
                                       OptimizerConfig(name="adam", lr=0.01)],
                         ids=["sgd-cosine", "adam"])
def test_sync_with_two_workers_equals_single_with_twice_the_batch(refs: dict, num_shards: int,
                                                                   optimizer: OptimizerConfig) -> None:
    ps = ParameterServerConfig(mode="sync", num_workers=2, num_shards=num_shards)
    ps_weights, ps_metrics = train(ps.create(workload(refs, batch_size=BATCH, optimizer=optimizer)), 2)
    single_weights, single_metrics = train(
        SingleStrategyConfig().create(workload(refs, batch_size=2 * BATCH, optimizer=optimizer)), 2)
    worst = max(float((ps_weights[n] - single_weights[n]).abs().max()) for n in single_weights)
    assert worst <= 1e-5, f"max abs difference {worst}"
    assert ps_metrics[-1]["train/loss"] == pytest.approx(single_metrics[-1]["train/loss"], rel=1e-4)
    assert ps_metrics[0]["perf/epoch_samples"] == single_metrics[0]["perf/epoch_samples"]
    assert ps_metrics[0]["ps/dropped_gradients"] == 0


@pytest.mark.parametrize(
    "config",
    [
        ParameterServerConfig(mode="async", num_workers=2, num_shards=2),
        ParameterServerConfig(mode="async", num_workers=2, stale_policy="scale"),
        ParameterServerConfig(mode="ssp", num_workers=2, staleness=1),
        ParameterServerConfig(mode="sync", num_workers=3, backup_workers=1, num_shards=2, cpus_per_worker=0.5),
        ParameterServerConfig(mode="sync", num_workers=2, compression="bf16"),
    ],
    ids=["async", "async-scale", "ssp", "sync-backup", "sync-bf16"],
)
def test_every_mode_learns(refs: dict, config: ParameterServerConfig) -> None:
    engine = config.create(workload(refs, batch_size=BATCH, optimizer=OptimizerConfig(lr=0.01)))
    try:
        metrics = [engine.train_epoch(epoch) for epoch in range(1, 5)]
        val = engine.evaluate("validation")
    finally:
        engine.shutdown()
    assert metrics[-1]["train/loss"] < 0.6 * metrics[0]["train/loss"]
    assert val["accuracy"] > 0.6  # async and ssp depend on arrival order; 4 short epochs
    if config.mode != "sync":
        # Both workers start an epoch from versions no newer than the shard's, so the second of their
        # first pushes is at least one version stale.
        assert all(m["ps/staleness_mean"] > 0 for m in metrics), metrics
    if config.mode == "ssp":
        # Between a worker's read and its next push, each other worker applies at most 2 x staleness + 1
        # gradients (see test_rules.py), and with overlap the worker's own previous push lands too.
        assert config.staleness is not None
        bound = (config.num_workers - 1) * (2 * config.staleness + 1) + int(config.overlaps)
        assert all(m["ps/staleness_mean"] <= bound for m in metrics), metrics


def test_with_overlap_a_worker_s_own_previous_push_makes_its_gradient_stale(refs: dict) -> None:
    """One async worker computes each gradient while its previous push is applied, so every push but a
    segment's first was computed one version behind the shard (reported as staleness 0 when the worker
    sent the version it installed after computing the gradient)."""
    config = ParameterServerConfig(mode="async", num_workers=1)
    assert config.overlaps
    engine = config.create(workload(refs, batch_size=BATCH, optimizer=OptimizerConfig(lr=0.01)))
    try:
        metrics = engine.train_epoch(1)
    finally:
        engine.shutdown()
    assert 0.5 < metrics["ps/staleness_mean"] <= 1.0, metrics


def test_state_round_trips_through_a_new_engine(refs: dict) -> None:
    config = ParameterServerConfig(mode="sync", num_workers=2, num_shards=2, cpus_per_worker=0.5)  # two engines on 2 CPUs
    opt = OptimizerConfig(name="adam", lr=0.01)
    first = config.create(workload(refs, batch_size=BATCH, optimizer=opt))
    second = config.create(workload(refs, batch_size=BATCH, optimizer=opt))
    try:
        first.train_epoch(1)
        second.load_state(first.state())
        a, b = first.train_epoch(2), second.train_epoch(2)
        assert a["train/loss"] == pytest.approx(b["train/loss"], rel=1e-6)
        sa, sb = first.state(), second.state()
        for name in sa["model"]:
            torch.testing.assert_close(sa["model"][name], sb["model"][name])
    finally:
        first.shutdown()
        second.shutdown()


@pytest.mark.parametrize(("inline_bytes", "inlined"), [(None, True), (0, False)], ids=["default", "off"])
def test_parameters_over_rays_100_kb_default_cross_inline(refs: dict, inline_bytes: int | None, inlined: bool) -> None:
    """A shard's 140 KB of parameters come back in the call's reply, not through the object store
    (where Ray would put anything over 100 KB); ``inline_bytes: 0`` sends everything there."""
    options = {} if inline_bytes is None else {"inline_bytes": inline_bytes}
    config = ParameterServerConfig(mode="sync", num_workers=1, **options)
    wide = Workload(model=RnnClassifierConfig(num_units=170), optimizer=OptimizerConfig(), batch_size=BATCH,
                    seed=SEED, tables=refs)
    engine = config.create(wide)
    try:
        ref = engine.shards[0].pull.remote()
        values, _ = ray.get(ref)
        assert values.nbytes > 100 * 1024
        in_store = ray.experimental.get_object_locations([ref])[ref]["node_ids"]
        for _ in range(20):  # a stored object's location reaches its owner a moment later
            if in_store or inlined:
                break
            time.sleep(0.1)
            in_store = ray.experimental.get_object_locations([ref])[ref]["node_ids"]
        assert (not in_store) == inlined, in_store
    finally:
        engine.shutdown()
