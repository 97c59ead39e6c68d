"""The engines' workers on a CUDA device: `gpus_per_worker` (parameter server, allreduce) and
`num_gpus` (single) put the model and data on the GPU, while what crosses the wire stays numpy;
the results equal those of the same job on the CPU to float32 rounding.

Skipped where torch sees no CUDA device (as in CI); run on a machine with a GPU: ``pytest tests/gpu``.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
import ray
import torch

from skate.data import split_table
from skate.data.sources import DigitsConfig
from skate.engines.allreduce import AllreduceConfig
from skate.engines.base import Engine, Workload
from skate.engines.optim import OptimizerConfig
from skate.engines.ps.config import ParameterServerConfig
from skate.engines.single import SingleStrategyConfig
from skate.models.rnn import RnnClassifierConfig

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
SEED, BATCH, EPOCHS = 5, 32, 2
TOLERANCE = 1e-4
"""Largest parameter difference allowed between GPU and CPU runs after two epochs: float32
rounding of different kernels (cuDNN's RNN against the CPU's), not a different computation."""


@pytest.fixture(scope="module")
def refs() -> Iterator[dict]:
    # TF32 off in every worker, so the GPU computes in full float32 as the CPU does.
    ray.init(num_cpus=4, num_gpus=1, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"NVIDIA_TF32_OVERRIDE": "0"}})
    try:
        tables = split_table(DigitsConfig().load(), validation_fraction=0.15, test_fraction=0.15, seed=0)
        yield {name: ray.put(t) for name, t in tables.items()}
    finally:
        ray.shutdown()


def workload(refs: dict, batch_size: int) -> Workload:
    return Workload(model=RnnClassifierConfig(num_units=24), optimizer=OptimizerConfig(name="sgd", lr=0.1),
                    batch_size=batch_size, seed=SEED, tables=refs, epochs=EPOCHS)


def train(engine: Engine, inspect: Any = None) -> tuple[dict[str, torch.Tensor], Any]:
    """Final weights after EPOCHS epochs, and what ``inspect(engine)`` says before shutdown."""
    try:
        for epoch in range(1, EPOCHS + 1):
            engine.train_epoch(epoch)
        return engine.state()["model"], inspect(engine) if inspect else None
    finally:
        engine.shutdown()


def worst_difference(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> float:
    return max(float((got[name].cpu() - expected[name]).abs().max()) for name in expected)


def devices(actor: Any) -> dict[str, str]:
    """Where an actor's replica keeps its model and data."""
    return ray.get(actor.__ray_call__.remote(lambda worker: {
        "model": str(next(worker.replica.model.parameters()).device),
        "data": str(worker.replica.data["train"][0].device)}))


@pytest.fixture(scope="module")
def cpu_single(refs: dict) -> dict[str, dict[str, torch.Tensor]]:
    """The reference runs on the CPU: batch B and batch 2B."""
    return {f"batch{b}": train(SingleStrategyConfig().create(workload(refs, b)))[0] for b in (BATCH, 2 * BATCH)}


def test_single_on_a_gpu_equals_single_on_the_cpu(refs: dict, cpu_single: dict) -> None:
    weights, where = train(SingleStrategyConfig(num_gpus=1).create(workload(refs, BATCH)),
                           lambda engine: devices(engine._worker))
    assert where == {"model": "cuda:0", "data": "cuda:0"}
    difference = worst_difference(weights, cpu_single[f"batch{BATCH}"])
    print(f"single gpu vs cpu: max abs difference {difference:.2e}")
    assert difference <= TOLERANCE


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_ps_workers_on_a_gpu_compute_there_and_send_numpy(refs: dict, cpu_single: dict, mode: str) -> None:
    config = ParameterServerConfig(mode=mode, num_workers=2, num_shards=2, gpus_per_worker=0.5)

    def inspect(engine: Any) -> tuple[list[dict[str, str]], list[str], str]:
        wire = ray.get(engine.workers[0].__ray_call__.remote(
            lambda worker: type(worker._encoded_grads(worker._buffers())[0]).__name__))
        params = ray.get(engine.workers[0].__ray_call__.remote(lambda worker: str(worker.flat.params.device)))
        return [devices(w) for w in engine.workers], [wire], params

    weights, (where, wire, flat) = train(config.create(workload(refs, BATCH)), inspect)
    assert where == [{"model": "cuda:0", "data": "cuda:0"}] * 2
    assert flat == "cuda:0" and wire == ["ndarray"]
    if mode == "sync":  # two workers at batch B are one process at batch 2B
        difference = worst_difference(weights, cpu_single[f"batch{2 * BATCH}"])
        print(f"ps sync (2 workers on the gpu) vs single cpu at 2B: max abs difference {difference:.2e}")
        assert difference <= TOLERANCE
    else:
        assert all(torch.isfinite(w).all() for w in weights.values())


def test_allreduce_on_a_gpu_equals_single_on_the_cpu(refs: dict, cpu_single: dict) -> None:
    weights, _ = train(AllreduceConfig(num_workers=1, gpus_per_worker=1).create(workload(refs, BATCH)))
    difference = worst_difference(weights, cpu_single[f"batch{BATCH}"])
    print(f"allreduce (1 gpu worker, nccl) vs single cpu: max abs difference {difference:.2e}")
    assert difference <= TOLERANCE


def test_allreduce_workers_sharing_a_gpu_average_by_gloo_and_equal_single_at_twice_the_batch(
        refs: dict, cpu_single: dict) -> None:
    # NCCL refuses two ranks on one GPU; half a GPU each makes the engine average by gloo.
    weights, _ = train(AllreduceConfig(num_workers=2, gpus_per_worker=0.5).create(workload(refs, BATCH)))
    difference = worst_difference(weights, cpu_single[f"batch{2 * BATCH}"])
    print(f"allreduce (2 workers sharing a gpu, gloo) vs single cpu at 2B: max abs difference {difference:.2e}")
    assert difference <= TOLERANCE
