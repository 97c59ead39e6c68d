"""The seed's hard-coded CartPole policy, played through `skate evaluate --policy basic`."""

from __future__ import annotations

import numpy as np
import pytest

from skate.cli import main
from skate.errors import SkateError
from skate.rl.baselines import baseline, basic_policy
from skate.rl.evaluate import evaluate_baseline


def test_basic_pushes_the_way_the_pole_leans() -> None:
    assert basic_policy(np.array([0.0, 0.0, -0.01, 0.0])) == 0  # leaning left: accelerate left
    assert basic_policy(np.array([0.0, 0.0, 0.01, 0.0])) == 1
    assert basic_policy(np.array([0.0, 0.0, 0.0, 0.0])) == 1  # the seed's `0 if angle < 0 else 1`


def test_basic_on_cartpole_v0_scores_as_the_seed_reports() -> None:
    """The seed: over 500 episodes, mean 42.1, std 9.1, min 24, max 68. Its episodes' starts came from
    another random stream, so the mean is held to 42.1 +- 3 (7 standard errors of a 500-episode mean)."""
    summary = evaluate_baseline("basic", "CartPole-v0", episodes=500).summary()
    assert abs(summary["return_mean"] - 42.1) < 3.0, summary
    assert 6.0 < summary["return_std"] < 12.0 and summary["return_min"] >= 15 and summary["return_max"] <= 100, summary


def test_the_command_plays_it_on_the_seeds_cartpole_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--policy", "basic", "--episodes", "5"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "5 episodes each, from seed 0: policy basic" and "out of date" not in err


def test_a_policy_for_another_environment_or_nothing_to_play_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="policy 'basic' plays CartPole"):
        baseline("basic", "Pendulum-v1")
    with pytest.raises(SkateError, match="policy 'basic' plays CartPole"):
        evaluate_baseline("basic", "Pendulum-v1")
    assert main(["evaluate"]) == 1
    assert "give a RUN_DIR to play its policy, or --policy basic" in capsys.readouterr().err
