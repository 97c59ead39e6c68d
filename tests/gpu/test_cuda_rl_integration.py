"""RLlib's learner on a CUDA device through ``rl.gpus_per_learner``: DQN with the seed's Q-network
on Ms. Pac-Man learns on the GPU while its env runner plays on the CPU.

Skipped where torch sees no CUDA device (as in CI); run on a machine with a GPU: ``pytest tests/gpu``.
"""

from __future__ import annotations

import math
from typing import Iterator

import pytest
import ray
import torch

pytest.importorskip("ale_py")
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

from ray.rllib.core import DEFAULT_MODULE_ID  # noqa: E402
from ray.rllib.utils.metrics import LEARNER_RESULTS  # noqa: E402

from skate.rl.qnetwork import SeedDQNTorchRLModule  # noqa: E402
from skate.rl.runner import build_algorithm  # noqa: E402
from skate.spec import load_spec_data  # noqa: E402


@pytest.fixture(scope="module")
def ray_gpu() -> Iterator[None]:
    ray.init(num_cpus=4, num_gpus=1, logging_level="ERROR", log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_dqn_learns_the_seed_network_on_the_gpu_and_plays_on_the_cpu(ray_gpu: None) -> None:
    spec = load_spec_data({"name": "mspacman_gpu", "seed": 0, "rl": {
        "algorithm": "dqn", "env": "mspacman", "gpus_per_learner": 1, "train_batch_size": 32,
        "training_intensity": 8, "learning_starts": 64, "replay_capacity": 2000, "target_update": 256}})
    algo = build_algorithm(spec)
    try:
        learner_module = algo.learner_group._learner.module[DEFAULT_MODULE_ID]
        assert isinstance(learner_module, SeedDQNTorchRLModule)
        assert {p.device.type for p in learner_module.parameters()} == {"cuda"}
        before = {k: v.detach().cpu().clone() for k, v in learner_module.state_dict().items()}
        results = [algo.train() for _ in range(3)]
        player = algo.get_module()
        assert {p.device.type for p in player.parameters()} == {"cpu"}
    finally:
        algo.stop()
    assert math.isfinite(results[-1][LEARNER_RESULTS][DEFAULT_MODULE_ID]["qf_loss"])
    after = learner_module.state_dict()
    assert any(not torch.equal(before[k], after[k].cpu()) for k in before), "the GPU learner changed no weight"
    # the env runner plays with the weights the GPU learner trained
    played = player.state_dict()
    assert all(torch.equal(played[k], after[k].cpu()) for k in played)
