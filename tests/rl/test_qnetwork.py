"""The seed's Q-network: its layer shapes and parameter count by hand, and its RLlib DQN module."""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
import torch
from torch import nn

from ray.rllib.algorithms.dqn.default_dqn_rl_module import QF_NEXT_PREDS, QF_PREDS, QF_TARGET_NEXT_PREDS
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from skate.rl.atari import OBS_SHAPE
from skate.rl.qnetwork import SeedDQNTorchRLModule, SeedQNetwork, seed_torso

OBS_SPACE = gymnasium.spaces.Box(-1.0, 1.0, OBS_SHAPE, np.float32)
ACTION_SPACE = gymnasium.spaces.Discrete(9)


def _frames(batch: int, *, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((batch, *OBS_SHAPE), generator=generator) * 2 - 1


def _module(**model_config: object) -> SeedDQNTorchRLModule:
    spec = RLModuleSpec(module_class=SeedDQNTorchRLModule, observation_space=OBS_SPACE,
                        action_space=ACTION_SPACE, model_config=dict(model_config))
    module = spec.build()
    module.make_target_networks()  # as DQN's learner does for its (training) copy
    return module


@pytest.mark.parametrize("batch", [1, 5])
def test_q_values_have_one_column_per_action(batch: int) -> None:
    assert SeedQNetwork(9)(_frames(batch)).shape == (batch, 9)


def test_layers_have_the_seeds_shapes() -> None:
    torso = seed_torso()
    shapes = []
    for layer in torso:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            layer.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[1:])))
    torso(_frames(2))
    # "SAME" padding: each size is ceil(size / stride): 88x80 -> 22x20 -> 11x10 -> 11x10.
    assert shapes == [(32, 22, 20), (64, 11, 10), (64, 11, 10), (512,)]
    convs = [layer for layer in torso if isinstance(layer, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, (8, 8), (4, 4)), (64, (4, 4), (2, 2)), (64, (3, 3), (1, 1))]
    # For 88x80 TF's "SAME" padding is symmetric: 2 for the 8x8 kernel at stride 4, then 1 and 1.
    assert [c.padding for c in convs] == [(2, 2), (1, 1), (1, 1)]


def test_same_padding_on_odd_sizes_keeps_ceil_sizes() -> None:
    # 87x81: TF pads one pixel more after than before; the output is still ceil(size / stride).
    torso = seed_torso((87, 81, 1))
    assert any(isinstance(layer, nn.ZeroPad2d) for layer in torso)
    assert torso(torch.zeros(1, 87, 81, 1)).shape == (1, 512)
    dense = [layer for layer in torso if isinstance(layer, nn.Linear)][0]
    assert dense.in_features == 64 * math.ceil(87 / 8) * math.ceil(81 / 8)


def test_parameter_count_by_hand() -> None:
    conv1 = 8 * 8 * 1 * 32 + 32  # 2,080
    conv2 = 4 * 4 * 32 * 64 + 64  # 32,832
    conv3 = 3 * 3 * 64 * 64 + 64  # 36,928
    dense = 64 * 11 * 10 * 512 + 512  # 3,604,992 (the seed's n_hidden_in = 64 * 11 * 10)
    output = 512 * 9 + 9  # 4,617
    total = sum(p.numel() for p in SeedQNetwork(9).parameters())
    assert total == conv1 + conv2 + conv3 + dense + output == 3_681_449


def test_weights_follow_tf1_variance_scaling_with_its_default_factor_2_he() -> None:
    torch.manual_seed(0)
    net = SeedQNetwork(9)
    dense = net.torso[-2]
    std = dense.weight.std().item()
    assert std == pytest.approx(math.sqrt(2 / 7040), rel=0.02)  # He: sqrt(2 / fan_in)
    assert dense.weight.abs().max().item() <= 2 * math.sqrt(1.3 * 2 / 7040) + 1e-7  # TF1 truncates at 2 stddevs
    assert all(torch.all(module.bias == 0) for module in net.modules() if isinstance(module, (nn.Conv2d, nn.Linear)))


def test_rl_module_computes_exactly_the_seed_network() -> None:
    module = _module()
    net = SeedQNetwork(9)
    net.torso.load_state_dict(module.encoder.net.state_dict())
    net.head.load_state_dict(module.af.state_dict())
    frames = _frames(4)
    q = module.compute_q_values({Columns.OBS: frames})[QF_PREDS]
    torch.testing.assert_close(q, net(frames))
    # A fresh target network is a copy of the online one.
    torch.testing.assert_close(module.forward_target({Columns.OBS: frames})[QF_PREDS], q)


def test_forward_passes_give_what_dqn_needs() -> None:
    module = _module(epsilon=[(0, 0.0)])
    frames, next_frames = _frames(6), _frames(6, seed=1)
    with torch.no_grad():
        q = module.compute_q_values({Columns.OBS: frames})[QF_PREDS]
        greedy = q.argmax(dim=-1)
        assert torch.equal(module.forward_inference({Columns.OBS: frames})[Columns.ACTIONS], greedy)
        # Epsilon 0: exploration is greedy too.
        assert torch.equal(module.forward_exploration({Columns.OBS: frames}, t=0)[Columns.ACTIONS], greedy)

    out = module.forward_train({Columns.OBS: frames, Columns.NEXT_OBS: next_frames})
    assert {key: tuple(value.shape) for key, value in out.items()} == {
        QF_PREDS: (6, 9), QF_NEXT_PREDS: (6, 9), QF_TARGET_NEXT_PREDS: (6, 9)}
    torch.testing.assert_close(out[QF_PREDS], q)
    out[QF_PREDS].sum().backward()
    assert module.encoder.net[1].weight.grad is not None
    # Only the online networks learn; the learner copies them into the targets.
    pairs = module.get_target_network_pairs()
    assert [(main, target) for main, target in pairs] == [
        (module.encoder, module._target_encoder), (module.af, module._target_af)]
    assert not any(p.requires_grad for _, target in pairs for p in target.parameters())


def test_exploration_with_epsilon_one_is_uniform_over_the_nine_actions() -> None:
    module = _module(epsilon=[(0, 1.0)])
    torch.manual_seed(0)
    with torch.no_grad():
        actions = module.forward_exploration({Columns.OBS: _frames(1).expand(450, *OBS_SHAPE)}, t=0)[Columns.ACTIONS]
    counts = torch.bincount(actions, minlength=9)
    assert counts.min() > 25 and counts.max() < 75  # 50 each, give or take 7


def test_dueling_and_distributional_variants_build() -> None:
    frames = _frames(3)
    dueling = _module(dueling=True)
    assert dueling.vf.out_features == 1
    assert dueling.compute_q_values({Columns.OBS: frames})[QF_PREDS].shape == (3, 9)
    distributional = _module(num_atoms=5, v_min=-1.0, v_max=1.0)
    assert distributional.af.out_features == 9 * 5
    assert distributional.compute_q_values({Columns.OBS: frames})[QF_PREDS].shape == (3, 9)


def test_inference_only_module_has_no_targets() -> None:
    spec = RLModuleSpec(module_class=SeedDQNTorchRLModule, observation_space=OBS_SPACE,
                        action_space=ACTION_SPACE, inference_only=True)
    module = spec.build()
    assert not hasattr(module, "_target_encoder")
    assert module.forward_inference({Columns.OBS: _frames(2)})[Columns.ACTIONS].shape == (2,)


def test_bad_spaces_and_catalogs_are_errors() -> None:
    with pytest.raises(ValueError, match="frames and discrete actions"):
        RLModuleSpec(module_class=SeedDQNTorchRLModule, observation_space=gymnasium.spaces.Box(-1, 1, (4,)),
                     action_space=ACTION_SPACE).build()
    from ray.rllib.algorithms.dqn.dqn_catalog import DQNCatalog

    with pytest.raises(ValueError, match="builds its own networks"):
        RLModuleSpec(module_class=SeedDQNTorchRLModule, observation_space=OBS_SPACE, action_space=ACTION_SPACE,
                     catalog_class=DQNCatalog).build()
    with pytest.raises(ValueError, match="num_actions must be >= 1"):
        SeedQNetwork(0)


def test_rllib_conv_filters_are_ignored_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="ignores conv_filters"):
        module = _module(conv_filters=[[16, 4, 2]])
    convs = [layer for layer in module.encoder.modules() if isinstance(layer, nn.Conv2d)]
    assert [conv.out_channels for conv in convs] == [32, 64, 64]  # the seed's filters, not the ones asked for
