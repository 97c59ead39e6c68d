from __future__ import annotations

from typing import Any

import pytest

from skate.errors import SkateError, SpecError
from skate.rl.config import DQNSettings, PPOSettings
from skate.rl.envs import check_env
from skate.rl.runner import ITERATION, _Stop, build_algorithm, metrics_row
from skate.rl.spec import RLJobSpec
from skate.spec import dump_spec, load_spec, load_spec_data

from conftest import JOBS


def rl_job(**rl: Any) -> dict[str, Any]:
    return {"name": "x", "rl": {"algorithm": "ppo", "env": "CartPole-v1", **rl}}


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as error:
        load_spec_data(data)
    return error.value.problems


def test_an_rl_section_makes_an_rl_job_with_typed_hyperparameters() -> None:
    spec = load_spec_data(rl_job(num_env_runners=2, clip_param=0.3, stop={"episode_return_mean": 450}))
    assert isinstance(spec, RLJobSpec) and isinstance(spec.rl, PPOSettings)
    assert spec.rl.clip_param == 0.3 and spec.rl.num_env_runners == 2 and spec.rl.stop.episode_return_mean == 450
    assert load_spec_data(__import__("yaml").safe_load(dump_spec(spec))) == spec


def test_dqn_defaults_take_the_seeds_discount_and_exploration_and_rllibs_loss() -> None:
    rl = load_spec_data(rl_job(algorithm="dqn")).rl
    assert isinstance(rl, DQNSettings)
    assert (rl.gamma, rl.epsilon_start, rl.epsilon_end, rl.epsilon_steps) == (0.95, 1.0, 0.05, 50_000)
    assert (rl.loss, rl.grad_clip) == ("huber", 40.0)
    config = rl.algorithm_config(seed=0)
    assert (config.td_error_loss_fn, config.grad_clip) == ("huber", 40.0)


# The seed's Ms. Pac-Man listing (chapter 16), as it writes each value.
SEED_DQN = {"replay_memory_size": 10000, "training_start": 1000, "training_interval": 3, "copy_steps": 25,
            "discount_rate": 0.95, "skip_start": 90, "batch_size": 50, "n_steps": 100000, "eps_min": 0.05,
            "eps_max": 1.0, "eps_decay_steps": 50000}


def test_the_seed_dqn_job_has_the_seeds_settings_in_env_steps() -> None:
    spec = load_spec(JOBS / "mspacman_dqn_seed.yaml")
    rl, seed = spec.rl, SEED_DQN
    assert isinstance(rl, DQNSettings) and rl.env == "mspacman"
    every = seed["training_interval"]  # env steps per training step
    assert rl.replay_capacity == seed["replay_memory_size"] and rl.learning_starts == seed["training_start"]
    assert rl.train_batch_size == seed["batch_size"] and rl.training_intensity * every == pytest.approx(seed["batch_size"])
    assert rl.rollout_fragment_length == every and rl.target_update == seed["copy_steps"] * every
    assert (rl.gamma, rl.epsilon_start, rl.epsilon_end) == (seed["discount_rate"], seed["eps_max"], seed["eps_min"])
    assert rl.epsilon_steps == seed["training_start"] + seed["eps_decay_steps"] * every
    assert rl.stop.env_steps == seed["training_start"] + seed["n_steps"] * every
    assert (rl.loss, rl.grad_clip, rl.double_q, rl.dueling, rl.n_step) == ("mse", None, False, False, 1)
    assert rl.env_config["skip_start_steps"] == seed["skip_start"]
    config = rl.algorithm_config(seed=0)
    assert (config.td_error_loss_fn, config.grad_clip, config.target_network_update_freq) == ("mse", None, 75)


@pytest.mark.parametrize("rl, expected", [
    ({"num_env_runners": -1}, "rl.num_env_runners: expected an integer >= 0, got -1"),
    ({"algorithm": "ppoo"}, "rl.algorithm: unknown algorithm 'ppoo' (did you mean 'ppo'?)"),
    ({"epsilon_steps": 5}, "rl.epsilon_steps: a field of algorithm 'dqn', not of 'ppo' (set algorithm: dqn"),  # a dqn field on ppo
    ({"env_config": {"level": [1, 2]}}, "rl.env_config.level"),
])
def test_bad_rl_settings_are_named(rl: dict[str, Any], expected: str) -> None:
    assert any(expected in problem for problem in problems(rl_job(**rl))), problems(rl_job(**rl))


def test_an_unknown_env_lists_close_matches() -> None:
    with pytest.raises(ValueError, match=r"unknown environment 'CartPol-v1' \(did you mean 'CartPole-v1'"):
        check_env("CartPol-v1")


def test_dqn_on_continuous_actions_is_refused() -> None:
    with pytest.raises(ValueError, match="algorithm dqn needs discrete actions; Pendulum-v1 has Box"):
        DQNSettings(env="Pendulum-v1").check_env()
    PPOSettings(env="Pendulum-v1").check_env()


def test_a_metrics_row_from_rllibs_result() -> None:
    result = {
        "env_runners": {"episode_return_mean": 21.5, "episode_return_min": 9.0, "episode_return_max": 50.0,
                        "episode_len_mean": 21.5, "num_episodes": 10, "num_env_steps_sampled": 400},
        "learners": {"default_policy": {"policy_loss": 0.1, "vf_loss": 2.0, "entropy": 0.6, "weights_seq_no": 3},
                     "__all_modules__": {"num_env_steps_trained_lifetime": 2400, "num_module_steps_trained_lifetime": 800,
                                         "guard_refused_gradients": 2}},
        "num_env_steps_sampled_lifetime": 1200, "time_this_iter_s": 2.0, "time_total_s": 6.0,
    }
    row = metrics_row(result, 3)
    assert row == {ITERATION: 3, "env_steps": 1200.0, "time_s": 6.0, "perf/env_steps_per_s": 200.0,
                   "learner/env_steps_trained": 800.0, "guard/refused_gradients": 2.0,
                   "rollout/episode_return_mean": 21.5,
                   "rollout/episode_return_min": 9.0, "rollout/episode_return_max": 50.0,
                   "rollout/episode_len_mean": 21.5, "rollout/num_episodes": 10.0,
                   "learner/policy_loss": 0.1, "learner/vf_loss": 2.0, "learner/entropy": 0.6}


def test_an_iteration_without_finished_episodes_has_no_return() -> None:
    row = metrics_row({"env_runners": {"episode_return_mean": float("nan")}}, 1)
    assert "rollout/episode_return_mean" not in row


@pytest.mark.parametrize("stop, row, reason", [
    ({"episode_return_mean": 450}, {"rollout/episode_return_mean": 460.0}, "episode_return_mean 460.0 >= 450"),
    ({"episode_return_mean": 450}, {"rollout/episode_return_mean": 400.0}, None),
    ({"env_steps": 1000}, {"env_steps": 1000.0}, "env_steps 1000 >= 1000"),
    ({"time_s": 60}, {"time_s": 61.0}, "time_s 61 >= 60"),
    ({"iterations": 3}, {ITERATION: 3}, "iterations 3 >= 3"),
])
def test_the_first_stop_condition_met_ends_the_run(stop: dict[str, Any], row: dict[str, float], reason: str | None) -> None:
    spec = load_spec_data(rl_job(stop=stop))
    assert _Stop(spec).reason({ITERATION: 1, "env_steps": 0.0, "time_s": 0.0, **row}) == reason


@pytest.mark.parametrize("rl, expected", [
    ({"algorithm": "ppo", "clip_param": 0.3, "num_epochs": 4},
     {"clip_param": 0.3, "num_epochs": 4, "train_batch_size_per_learner": 2000}),
    ({"algorithm": "dqn", "target_update": 777, "n_step": 3, "prioritized_replay": True},
     {"target_network_update_freq": 777, "n_step": 3, "gamma": 0.95, "epsilon": [(0, 1.0), (50_000, 0.05)]}),
    ({"algorithm": "pg", "episodes_per_iteration": 7}, {"num_episodes_per_train_batch": 7, "lr": 0.01}),
    ({"algorithm": "appo", "vtrace": False, "num_env_runners": 3}, {"vtrace": False, "num_env_runners": 3}),
])
def test_each_algorithm_hands_its_typed_fields_to_rllib(rl: dict[str, Any], expected: dict[str, Any]) -> None:
    spec = load_spec_data(rl_job(num_envs_per_env_runner=4, hidden=[32], **rl))
    config = spec.rl.algorithm_config(seed=7)
    assert {name: getattr(config, name) for name in expected} == expected
    assert (config.env, config.num_envs_per_env_runner, config.seed) == ("CartPole-v1", 4, 7)
    assert config.model_config["fcnet_hiddens"] == [32]
    if rl["algorithm"] == "dqn":
        assert config.replay_buffer_config["type"] == "PrioritizedEpisodeReplayBuffer"


def test_runners_and_gpu_learners_reach_the_resource_request() -> None:
    spec = load_spec_data(rl_job(num_env_runners=2, num_learners=2, gpus_per_learner=0.5))
    config = spec.rl.algorithm_config(seed=0)
    bundles = config.algo_class.default_resource_request(config).bundles
    # the algorithm's own process, one bundle per env runner, then one per learner
    assert bundles == [{"CPU": 1.0}, {"CPU": 1.0}, {"CPU": 1.0}, {"GPU": 0.5}, {"GPU": 0.5}]


def test_a_gpu_learner_in_this_process_without_cuda_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^gpus_per_learner: 1 GPU for the learner in this process, but torch .* "
                                         r"sees no CUDA device here \(set rl.gpus_per_learner: 0"):
        load_spec_data(rl_job(gpus_per_learner=1), gate=False).rl.check_devices()
    with pytest.raises(SpecError, match=r"^<spec>: rl\.gpus_per_learner: 1 GPU"):  # the gate: before Ray starts
        load_spec_data(rl_job(gpus_per_learner=1))
    load_spec_data(rl_job(gpus_per_learner=1), here=False)  # submitted: the GPU is the cluster's to have
    with pytest.raises(SkateError, match=r"^rl\.gpus_per_learner: 1 GPU"):  # and again before any actor starts
        build_algorithm(load_spec_data(rl_job(gpus_per_learner=1), gate=False))
    # learner actors get their GPUs from Ray's scheduling; no GPU asked for: nothing to check
    load_spec_data(rl_job(num_learners=2, gpus_per_learner=1)).rl.check_devices()
    load_spec_data(rl_job()).rl.check_devices()
