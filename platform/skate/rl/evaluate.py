"""``skate evaluate RUN_DIR``: the greedy policy of an RL run's last checkpoint, played and measured;
``skate evaluate --policy basic``: a hard-coded policy (:mod:`skate.rl.baselines`) to put beside it.

The policy network is built from the run's spec and given the checkpoint's weights; it plays
whole episodes in one process, always taking its most likely (or highest-valued) action.
``record`` renders one episode to a GIF or an MP4 (:mod:`skate.rl.recording`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from skate.errors import SkateError
from skate.rl.envs import make_env
from skate.rl.checkpoints import Checkpoints, private_copy
from skate.rl.recording import check_recording_path, write_recording
from skate.rl.spec import RLJobSpec
from skate.runs.rundir import RunDir
from skate.spec import load_spec

_MODULE_PATH = ("learner_group", "learner", "rl_module", "default_policy")


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Returns of the greedy policy over ``episodes`` episodes, and where a recording went."""

    returns: list[float]
    checkpoint: str
    """What played: a checkpoint's name, or ``policy <name>`` for a hard-coded one."""
    recording: Path | None = None

    def summary(self) -> dict[str, float]:
        values = np.asarray(self.returns, dtype=np.float64)
        return {"episodes": float(len(values)), "return_mean": float(values.mean()), "return_std": float(values.std()),
                "return_min": float(values.min()), "return_max": float(values.max())}


def load_policy(spec: RLJobSpec, checkpoint: Path, env: Any) -> Any:
    """The run's RLModule, built from its spec for ``env``'s spaces, with the checkpoint's weights."""
    config = spec.rl.algorithm_config(seed=spec.seed)
    module = config.get_rl_module_spec(env=env).build()
    module.restore_from_path(str(checkpoint.joinpath(*_MODULE_PATH)))
    module.eval()
    return module


@torch.no_grad()
def greedy_action(module: Any, observation: np.ndarray) -> Any:
    """The module's deterministic action for one observation."""
    from ray.rllib.core.columns import Columns

    batch = {Columns.OBS: torch.as_tensor(np.asarray(observation)[None], dtype=torch.float32)}
    out = module.forward_inference(batch)
    if Columns.ACTIONS in out:
        return np.asarray(out[Columns.ACTIONS])[0]
    dist = module.get_inference_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS]).to_deterministic()
    return dist.sample().numpy()[0]


def evaluate(run_dir: str | Path, *, episodes: int = 10, seed: int = 0, record: str | Path | None = None,
             max_steps: int = 100_000) -> Evaluation:
    """Play ``episodes`` greedy episodes with the last checkpoint of the RL run at ``run_dir``.

    Raises:
        SkateError: the run is not an RL run or has no checkpoint yet, or ``record`` names a format
            that cannot be written (checked before any episode is played).
    """
    if record is not None:
        record = check_recording_path(record)
    run = RunDir.open(run_dir)
    spec = load_spec(run.spec_path, gate=False)
    if not isinstance(spec, RLJobSpec):
        raise SkateError(f"{run.path} is a supervised run; skate evaluate plays RL runs (see skate report)")
    if spec.rl.tabular:
        raise SkateError(f"{run.path} is a tabular run ({spec.rl.algorithm}): its values and greedy policy are in "
                         f"summary.json's final (see skate report)")
    latest = Checkpoints(run.checkpoint_dir, keep_last=1).latest()  # checked against its manifest
    if latest is None:
        raise SkateError(f"{run.path}: no checkpoint yet (checkpoints/iter-*)")
    path = latest[0]
    env = _env(spec.rl.env, dict(spec.rl.env_config), record)
    try:
        with private_copy(path) as (copy, _):  # loads what was checked
            module = load_policy(spec, copy, env)
        return _play(env, lambda observation: greedy_action(module, observation), episodes=episodes, seed=seed,
                     record=record, max_steps=max_steps, name=path.name)
    finally:
        env.close()


def run_env(run_dir: str | Path) -> str:
    """The environment the RL run at ``run_dir`` plays."""
    spec = load_spec(RunDir.open(run_dir).spec_path, gate=False)
    if not isinstance(spec, RLJobSpec):
        raise SkateError(f"{run_dir} is a supervised run; skate evaluate plays RL runs (see skate report)")
    return spec.rl.env


def evaluate_baseline(policy: str, env_id: str, *, episodes: int = 10, seed: int = 0,
                      record: str | Path | None = None, max_steps: int = 100_000) -> Evaluation:
    """Play ``episodes`` episodes of ``env_id`` with the hard-coded ``policy`` (see :mod:`skate.rl.baselines`).

    Raises:
        SkateError: an unknown policy, one that does not play ``env_id``, or an unknown environment.
    """
    from skate.rl.baselines import baseline

    if record is not None:
        record = check_recording_path(record)
    try:
        act = baseline(policy, env_id)
        env = _env(env_id, {}, record)
    except ValueError as error:
        raise SkateError(str(error)) from error
    try:
        return _play(env, act, episodes=episodes, seed=seed, record=record, max_steps=max_steps, name=f"policy {policy}")
    finally:
        env.close()


def _env(env_id: str, env_config: dict[str, Any], record: Path | None) -> Any:
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # pygame renders without a sound card
    return make_env(env_id, env_config, render_mode="rgb_array" if record is not None else None)


def _play(env: Any, act: Callable[[np.ndarray], Any], *, episodes: int, seed: int, record: Path | None,
          max_steps: int, name: str) -> Evaluation:
    """Whole episodes of ``env`` with ``act`` choosing each action; the first rendered if ``record``."""
    returns, frames = [], []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        total, done, steps = 0.0, False, 0
        while not done and steps < max_steps:
            if record is not None and episode == 0:
                frames.append(env.render())
            observation, reward, terminated, truncated, _ = env.step(act(observation))
            total, done, steps = total + float(reward), terminated or truncated, steps + 1
        returns.append(total)
    recording = write_recording(frames, record) if record is not None else None
    return Evaluation(returns=returns, checkpoint=name, recording=recording)
