"""The seed's Ms. Pac-Man preprocessing: checked pixel by pixel against the seed's steps on real frames."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from skate.rl.atari import (
    MSPACMAN_ID,
    OBS_SHAPE,
    MsPacmanPreprocessing,
    make_mspacman,
    preprocess_frame,
)

MSPACMAN_RGB = (210, 164, 74)
WALL_RGB = (228, 111, 111)


@pytest.fixture
def ale() -> Any:
    """ale-py, with its envs registered (tests that play the game skip without it)."""
    ale_py = pytest.importorskip("ale_py")
    gymnasium.register_envs(ale_py)
    return ale_py


class _Recorder(gymnasium.Wrapper):
    """Counts the inner env's steps and keeps its actions and last raw frame."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        self.actions: list[int] = []
        self.frame: np.ndarray | None = None

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        self.frame, info = self.env.reset(**kwargs)
        return self.frame, info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.actions.append(int(action))
        self.frame, reward, terminated, truncated, info = self.env.step(action)
        return self.frame, reward, terminated, truncated, info


def _seed_by_hand(frame: np.ndarray) -> np.ndarray:
    """The seed's steps one pixel at a time: every other row from 1 to 175 and every other column;
    the sum of R, G, B; Ms. Pac-Man's colour to 0; then the sum scaled from [0, 765] to [-1, 1]."""
    out = np.empty((88, 80), dtype=np.float64)
    for row in range(88):
        for col in range(80):
            r, g, b = (int(channel) for channel in frame[1 + 2 * row, 2 * col])
            total = 0 if (r, g, b) == MSPACMAN_RGB else r + g + b
            out[row, col] = total / 765 * 2 - 1
    return out


def _played(ale: Any, *, skip_start_steps: int = 90) -> tuple[MsPacmanPreprocessing, _Recorder]:
    recorder = _Recorder(gymnasium.make(MSPACMAN_ID))
    return MsPacmanPreprocessing(recorder, skip_start_steps=skip_start_steps), recorder


def test_preprocessing_matches_the_seed_on_a_real_frame(ale: Any) -> None:
    env, recorder = _played(ale)
    obs, _ = env.reset(seed=0)
    frame = recorder.frame
    assert obs.shape == (88, 80, 1) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[..., 0], _seed_by_hand(frame), atol=1e-6)

    # Ms. Pac-Man is on screen after the skipped start, and every one of her pixels is black (-1).
    kept = frame[1:176:2, ::2]
    her = np.all(kept == MSPACMAN_RGB, axis=-1)
    assert her.sum() > 5
    assert np.all(obs[..., 0][her] == -1.0)
    # The walls, one step brighter in channel sum (450 vs 448), keep their grey.
    walls = np.all(kept == WALL_RGB, axis=-1)
    assert walls.any() and np.allclose(obs[..., 0][walls], 450 / 765 * 2 - 1)
    assert env.observation_space.contains(obs)

    obs, *_ = env.step(3)
    np.testing.assert_allclose(obs[..., 0], _seed_by_hand(recorder.frame), atol=1e-6)


def test_scaling_spans_minus_one_to_one_not_the_seeds_minus_two_to_zero() -> None:
    black, white = np.zeros((210, 160, 3), np.uint8), np.full((210, 160, 3), 255, np.uint8)
    assert np.all(preprocess_frame(black) == -1.0)
    assert np.all(preprocess_frame(white) == 1.0)
    grey = np.full((210, 160, 3), 128, np.uint8)
    np.testing.assert_allclose(preprocess_frame(grey), 384 / 765 * 2 - 1, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(210, 160, 3\)"):
        preprocess_frame(black[:100])


def test_reset_skips_the_first_90_steps_with_noops(ale: Any) -> None:
    env, recorder = _played(ale)
    _, info = env.reset(seed=1)
    assert recorder.actions == [0] * 90
    assert info["episode_frame_number"] == 90 * 4  # v5 plays 4 frames per step
    env.step(2)
    env.reset(seed=2)
    assert recorder.actions == [0] * 90 + [2] + [0] * 90


def test_the_start_differs_from_an_unskipped_one(ale: Any) -> None:
    skipped, _ = _played(ale)
    unskipped, _ = _played(ale, skip_start_steps=0)
    assert not np.array_equal(skipped.reset(seed=3)[0], unskipped.reset(seed=3)[0])


def test_a_game_that_ends_during_the_skip_is_an_error(ale: Any) -> None:
    short = gymnasium.make(MSPACMAN_ID, max_episode_steps=10)
    with pytest.raises(RuntimeError, match="no-op step 10 of the 90"):
        MsPacmanPreprocessing(short).reset(seed=0)


def test_make_mspacman_passes_gymnasiums_env_checker(ale: Any) -> None:
    env = make_mspacman({})
    assert env.observation_space == gymnasium.spaces.Box(-1.0, 1.0, (88, 80, 1), np.float32)
    assert env.action_space == gymnasium.spaces.Discrete(9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    # The checker's one complaint is that it was handed a wrapped env (checking the wrapper is the point).
    messages = [str(warning.message) for warning in caught]
    assert all("is different from the unwrapped version" in message for message in messages), messages


def test_make_mspacman_passes_v5_settings_through(ale: Any) -> None:
    env = make_mspacman({"frameskip": 2, "repeat_action_probability": 0.0, "skip_start_steps": 5})
    assert env.spec.kwargs["frameskip"] == 2 and env.spec.kwargs["repeat_action_probability"] == 0.0
    _, info = env.reset(seed=0)
    assert info["episode_frame_number"] == 5 * 2


@pytest.mark.parametrize(
    ("env_config", "message"),
    [
        ({"frame_skip": 3}, "unknown key 'frame_skip' (did you mean 'frameskip'?)"),
        ({"frameskip": 2.5}, "frameskip: expected an integer, got 2.5"),
        ({"skip_start_steps": -1}, "skip_start_steps >= 0"),
        ({"repeat_action_probability": 1.5}, "repeat_action_probability: expected a number in [0, 1]"),
    ],
)
def test_make_mspacman_rejects_bad_env_config(env_config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as error:
        make_mspacman(env_config)
    assert message in str(error.value)


def test_make_mspacman_without_ale_py_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ale_py", None)  # makes `import ale_py` raise ImportError
    with pytest.raises(ImportError, match=r'pip install "skate\[atari\]"'):
        make_mspacman({})


def test_the_wrapper_rejects_other_observations() -> None:
    with pytest.raises(ValueError, match="RGB frames of shape"):
        MsPacmanPreprocessing(gymnasium.make("CartPole-v1"))


def test_the_game_renders_whole_frames_to_watch_while_the_policy_sees_preprocessed_ones() -> None:
    from skate.rl.envs import make_env

    env = make_env("mspacman", {"skip_start_steps": 2}, render_mode="rgb_array")
    observation, _ = env.reset(seed=0)
    frame = env.render()
    env.close()
    assert observation.shape == OBS_SHAPE and frame.shape == (210, 160, 3) and frame.dtype == np.uint8
