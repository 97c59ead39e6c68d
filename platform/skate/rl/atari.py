"""The seed's Ms. Pac-Man (Hands-On ML, chapter 16): ALE's ``MsPacman-v5`` with the seed's
preprocessing, as a gymnasium wrapper and an ``env_config`` factory RLlib can build on any runner.

The preprocessing keeps the seed's steps: crop and downsample to 88x80, greyscale, Ms. Pac-Man's
colour blacked out for contrast, scaled to [-1, 1]; and every game starts after 90 no-op steps.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium
import numpy as np

MSPACMAN_ID = "ALE/MsPacman-v5"
"""The gymnasium id the seed's ``MsPacman-v0`` is played as (see :class:`MsPacmanConfig`)."""

MSPACMAN_COLOR = 210 + 164 + 74
"""Ms. Pac-Man's colour, RGB (210, 164, 74), as the sum of its channels (448), as in the seed.

The sum keeps her apart from the maze walls, RGB (228, 111, 111): 450."""

OBS_SHAPE = (88, 80, 1)
"""The preprocessed observation: 88 rows, 80 columns, one grey channel."""

_FRAME_SHAPE = (210, 160, 3)
_MAX_CHANNEL_SUM = 3 * 255


def preprocess_frame(frame: np.ndarray) -> np.ndarray:
    """The seed's ``preprocess_observation``, with its scaling erratum fixed.

    Steps, as in the seed's listing: crop the score bar and downsample by 2 (``frame[1:176:2, ::2]``);
    greyscale as the sum of the colour channels; Ms. Pac-Man's colour (sum 448) to 0 for contrast;
    normalise. The seed's listing normalises the greyscale mean as ``(img - 128) / 128 - 1``, which
    lands in [-2, 0] (a known erratum); here ``sum / 765 * 2 - 1``, i.e. ``mean / 127.5 - 1``, lies
    in [-1, 1]: black (and Ms. Pac-Man) is -1, white is 1.

    Args:
        frame: an ALE RGB frame, shape (210, 160, 3), dtype uint8.

    Returns:
        The observation, shape (88, 80, 1), dtype float32, values in [-1, 1].

    Raises:
        ValueError: ``frame`` is not a (210, 160, 3) frame.
    """
    if frame.shape != _FRAME_SHAPE:
        raise ValueError(f"preprocess_frame: expected an ALE RGB frame of shape {_FRAME_SHAPE}, "
                         f"got shape {frame.shape}")
    img = frame[1:176:2, ::2].sum(axis=2, dtype=np.int32)
    img[img == MSPACMAN_COLOR] = 0
    scaled = img.astype(np.float32) * np.float32(2.0 / _MAX_CHANNEL_SUM) - np.float32(1.0)
    # Rounding can step a hair past the bounds; the observation space promises [-1, 1] exactly.
    return np.clip(scaled, -1.0, 1.0).reshape(OBS_SHAPE)


class MsPacmanPreprocessing(gymnasium.ObservationWrapper, gymnasium.utils.RecordConstructorArgs):
    """The seed's preprocessing (see :func:`preprocess_frame`) and its skipped start of each game.

    On reset, the first ``skip_start_steps`` steps of the inner env (90 in the seed: "it's just
    waiting time") are played with action 0 (NOOP); the observation after them is the first one
    returned, with the info of the last of them.

    Args:
        env: an ALE env with RGB frames of shape (210, 160, 3).
        skip_start_steps: no-op steps of ``env`` played at the start of each game.

    Raises:
        ValueError: ``env`` has another observation space, or ``skip_start_steps`` is negative.
    """

    def __init__(self, env: gymnasium.Env, *, skip_start_steps: int = 90) -> None:
        # Recorded so that ``env.spec`` can remake the wrapped env (gymnasium's env checker does).
        gymnasium.utils.RecordConstructorArgs.__init__(self, skip_start_steps=skip_start_steps)
        gymnasium.ObservationWrapper.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, gymnasium.spaces.Box) or space.shape != _FRAME_SHAPE:
            raise ValueError(f"MsPacmanPreprocessing needs RGB frames of shape {_FRAME_SHAPE} "
                             f"(ALE's obs_type='rgb'), got observation space {space}")
        if skip_start_steps < 0:
            raise ValueError(f"MsPacmanPreprocessing: skip_start_steps must be >= 0, got {skip_start_steps}")
        self.skip_start_steps = skip_start_steps
        self.observation_space = gymnasium.spaces.Box(-1.0, 1.0, shape=OBS_SHAPE, dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the inner env, play the skipped start, and return the first preprocessed frame.

        Raises:
            RuntimeError: the game ended during the skipped start.
        """
        frame, info = self.env.reset(seed=seed, options=options)
        for step in range(self.skip_start_steps):
            frame, _reward, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                raise RuntimeError(f"MsPacmanPreprocessing: the game ended at no-op step {step + 1} of "
                                   f"the {self.skip_start_steps} skipped at its start; lower skip_start_steps")
        return self.observation(frame), info

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """The preprocessed frame (:func:`preprocess_frame`)."""
        return preprocess_frame(observation)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MsPacmanConfig:
    """Settings of :func:`make_mspacman` (the ``env_config`` of an ``mspacman`` job).

    The defaults are ALE v5's: 4 frames per step and sticky actions (the previous action repeats
    with probability 0.25), as Machado et al. (2018) recommend. The seed's ``MsPacman-v0`` had
    sticky actions at 0.25 too but a random 2-4 frames per step; v5 fixes it at 4, so its 90 skipped
    steps are 360 frames (about 6 s of play), where v0's were about 270.
    """

    skip_start_steps: int = 90
    """No-op steps played at the start of each game (the seed's ``skip_start``)."""
    frameskip: int = 4
    """Emulator frames per env step (the action repeats over them; the last frame is returned)."""
    repeat_action_probability: float = 0.25
    """Probability that the emulator repeats the previous action instead of the chosen one."""
    max_num_frames_per_episode: int = 108_000
    """Emulator frames after which ALE truncates a game (108,000: 30 minutes of play)."""

    @classmethod
    def from_env_config(cls, env_config: dict[str, Any]) -> "MsPacmanConfig":
        """Read ``env_config``, strictly.

        Raises:
            ValueError: an unknown key (with the closest known one), a value of the wrong type or
                out of range.
        """
        from skate.config.loader import suggest

        fields = {field.name: field for field in dataclasses.fields(cls)}
        for key in env_config:
            if key not in fields:
                raise ValueError(f"mspacman env_config: unknown key '{key}'{suggest(key, fields)}; "
                                 f"known keys: {', '.join(fields)}")
        config = cls(**env_config)
        for name in ("skip_start_steps", "frameskip", "max_num_frames_per_episode"):
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"mspacman env_config: {name}: expected an integer, got {value!r}")
        if config.skip_start_steps < 0 or config.frameskip < 1 or config.max_num_frames_per_episode < 1:
            raise ValueError(f"mspacman env_config: need skip_start_steps >= 0, frameskip >= 1 and "
                             f"max_num_frames_per_episode >= 1, got {config}")
        probability = config.repeat_action_probability
        if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
            raise ValueError(f"mspacman env_config: repeat_action_probability: expected a number in "
                             f"[0, 1], got {probability!r}")
        return config


def make_mspacman(env_config: dict[str, Any], *, render_mode: str | None = None) -> gymnasium.Env:
    """ALE's Ms. Pac-Man with the seed's preprocessing: 88x80x1 float32 frames in [-1, 1], 9 actions.

    Registered with Ray Tune (``register_env(name, make_mspacman)``) so that RLlib's env runners
    can build it from the job's ``env_config``.

    Args:
        env_config: the settings of :class:`MsPacmanConfig` (a plain dict or RLlib's ``EnvContext``).
        render_mode: gymnasium's, e.g. ``rgb_array`` to watch the (unprocessed) game.

    Raises:
        ImportError: ale-py is not installed (the message names the install command).
        ValueError: ``env_config`` has an unknown key or a bad value.
    """
    config = MsPacmanConfig.from_env_config(dict(env_config))
    try:
        import ale_py
    except ImportError as error:
        raise ImportError('the Ms. Pac-Man env needs ale-py (it ships the Atari ROMs): '
                          'pip install "skate[atari]" (or pip install "ale-py>=0.9")') from error
    gymnasium.register_envs(ale_py)
    env = gymnasium.make(MSPACMAN_ID, frameskip=config.frameskip,
                         repeat_action_probability=config.repeat_action_probability,
                         max_num_frames_per_episode=config.max_num_frames_per_episode, render_mode=render_mode)
    return MsPacmanPreprocessing(env, skip_start_steps=config.skip_start_steps)


__all__ = ["MSPACMAN_COLOR", "MSPACMAN_ID", "OBS_SHAPE", "MsPacmanConfig", "MsPacmanPreprocessing",
           "make_mspacman", "preprocess_frame"]
