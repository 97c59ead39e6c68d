"""Rollout throughput of skate's RL jobs against what one process can do, measured in one run.

For CartPole (PPO's MLP policy) and Ms. Pac-Man (the seed's preprocessing and Q-network):
- ``limit``: one process stepping a gymnasium vector env while the same network picks actions
  (no Ray, no RLlib): the most one core's worth of sampling gives;
- ``runners_1`` / ``runners_2``: env steps/s that the env runners of skate's RLlib algorithm
  sample in parallel (``EnvRunner.sample``, no learning), with 1 and 2 runners.

Each figure is also given as a ratio: runners_1 / limit and runners_2 / (2 x limit). Then the
seed's Ms. Pac-Man DQN trains for a while: env steps/s and learner updates/s while it learns.

    .venv/bin/python benchmarks/rl_rollouts.py [--seconds 10] [--envs 8]

Prints one JSON line per environment, the last line a summary (env steps/s):
{"cartpole": {"limit": .., "runners_1": .., "runners_2": ..}, "mspacman": {...}}
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch

from skate.rl.config import DQNSettings, PPOSettings, RLConfig
from skate.rl.envs import make_env
from skate.rl.runner import transitions_trained

ENVS: dict[str, RLConfig] = {
    "cartpole": PPOSettings(env="CartPole-v1"),
    "mspacman": DQNSettings(env="mspacman", learning_starts=10**9),  # sampling only: never learns
}


def policy_network(name: str, env: Any) -> torch.nn.Module:
    """The network skate's job would act with: PPO's 64x64 MLP, or the seed's Q-network."""
    if name == "mspacman":
        from skate.rl.qnetwork import SeedQNetwork

        return SeedQNetwork(int(env.single_action_space.n))
    size = int(np.prod(env.single_observation_space.shape))
    return torch.nn.Sequential(torch.nn.Linear(size, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
                               torch.nn.Linear(64, int(env.single_action_space.n)))


@torch.no_grad()
def limit(name: str, config: RLConfig, *, num_envs: int, seconds: float) -> float:
    """Env steps/s of one process: a vector env stepped with the network's greedy actions."""
    import gymnasium

    env = gymnasium.vector.SyncVectorEnv([lambda: make_env(config.env, dict(config.env_config))] * num_envs)
    net = policy_network(name, env)
    observations, _ = env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        actions = net(torch.as_tensor(observations, dtype=torch.float32)).argmax(dim=-1).numpy()
        observations, *_ = env.step(actions)
        steps += num_envs
    env.close()
    return steps / (time.perf_counter() - start)


def runners(config: RLConfig, *, num_runners: int, num_envs: int, seconds: float) -> float:
    """Env steps/s that ``num_runners`` env runners of the RLlib algorithm sample together."""
    import dataclasses

    spec = dataclasses.replace(config, num_env_runners=num_runners, num_envs_per_env_runner=num_envs)
    algo = spec.algorithm_config(seed=0).build_algo()
    try:
        group = algo.env_runner_group
        group.foreach_env_runner(lambda r: r.sample(num_timesteps=num_envs * 20), local_env_runner=False)  # warm up
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            batches = group.foreach_env_runner(lambda r: sum(len(e) for e in r.sample(num_timesteps=num_envs * 50)),
                                               local_env_runner=False)
            steps += sum(batches)
        return steps / (time.perf_counter() - start)
    finally:
        algo.stop()


def dqn_training(*, seconds: float) -> dict[str, float]:
    """Ms. Pac-Man DQN (the seed's preprocessing and Q-network, DeepMind-style settings) training in the
    algorithm's process (as jobs/mspacman_dqn.yaml, learning from the start): env steps/s sampled and
    learner updates/s while it learns."""
    import dataclasses

    from skate.spec import load_spec

    spec = load_spec(Path(__file__).resolve().parents[1] / "jobs" / "mspacman_dqn.yaml")
    rl = dataclasses.replace(spec.rl, learning_starts=spec.rl.train_batch_size * 4)
    algo = rl.algorithm_config(seed=0).build_algo()
    try:
        algo.train()  # fills the replay memory past learning_starts; not timed
        first = algo.train()
        start = time.perf_counter()
        last = first
        while time.perf_counter() - start < seconds:
            last = algo.train()
        elapsed = time.perf_counter() - start
    finally:
        algo.stop()

    sampled = last["num_env_steps_sampled_lifetime"] - first["num_env_steps_sampled_lifetime"]
    updates = (transitions_trained(last) - transitions_trained(first)) / rl.train_batch_size
    return {"env_steps_per_s": round(sampled / elapsed, 1), "updates_per_s": round(updates / elapsed, 1),
            "training_intensity": rl.training_intensity or 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time of each figure")
    parser.add_argument("--envs", type=int, default=8, help="vectorised envs per process / env runner")
    parser.add_argument("--only", nargs="*", default=list(ENVS), choices=list(ENVS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    summary: dict[str, dict[str, float]] = {}
    for name in args.only:
        config = ENVS[name]
        figures = {"limit": limit(name, config, num_envs=args.envs, seconds=args.seconds)}
        for n in (1, 2):
            figures[f"runners_{n}"] = runners(config, num_runners=n, num_envs=args.envs, seconds=args.seconds)
        ratios = {"runners_1_over_limit": figures["runners_1"] / figures["limit"],
                  "runners_2_over_2x_limit": figures["runners_2"] / (2 * figures["limit"])}
        print(json.dumps({"env": name, **{k: round(v, 1) for k, v in figures.items()},
                          **{k: round(v, 3) for k, v in ratios.items()}}), flush=True)
        summary[name] = {k: round(v, 1) for k, v in figures.items()}
    if "mspacman" in args.only:
        print(json.dumps({"mspacman_dqn_training": dqn_training(seconds=args.seconds * 3)}), flush=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
