"""The seed's deep Q-network for Ms. Pac-Man (Hands-On ML, chapter 16), in PyTorch and as an RLlib
RLModule for DQN on the new API stack.

The seed's network: three convolutions with "SAME" padding and ReLU (32 maps 8x8 stride 4, 64 maps
4x4 stride 2, 64 maps 3x3 stride 1), on 88x80x1 frames -> 22x20 -> 11x10 -> 11x10; a dense layer of
512 ReLU units on the 64 * 11 * 10 = 7,040 features; one linear output per action (9). Weights use
the seed's initializer, TF1's ``tf.contrib.layers.variance_scaling_initializer()`` with its defaults
(factor 2.0, fan-in, truncated normal): He initialization, as the seed calls it; biases start at 0.

:class:`SeedQNetwork` is the plain ``torch.nn.Module`` (benchmarkable without Ray);
:class:`SeedDQNTorchRLModule` builds the same layers into RLlib's DQN module.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Sequence

import torch
from torch import nn

from ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module import DefaultDQNTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from ray.rllib.utils.schedules.scheduler import Scheduler

from skate.models.init import he_

CONV_LAYERS: tuple[tuple[int, int, int], ...] = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
"""The seed's convolutions: (output maps, kernel size, stride), all "SAME" padded, ReLU."""

HIDDEN_UNITS = 512
"""Units of the seed's dense ReLU layer."""

DEFAULT_INPUT_SHAPE = (88, 80, 1)
"""The preprocessed Ms. Pac-Man frame (``skate.rl.atari.OBS_SHAPE``), channels last."""

# DQNConfig's own defaults, for a module built from a spec without DQNConfig's model_config.
_DQN_DEFAULTS: dict[str, Any] = {"dueling": False, "double_q": True, "num_atoms": 1, "v_min": -10.0,
                                 "v_max": 10.0, "epsilon": [(0, 1.0), (10000, 0.05)]}


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF's "SAME" padding of one dimension: (before, after), the extra pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _init_seed_weights(module: nn.Module) -> None:
    """The seed's ``variance_scaling_initializer()`` (He, :func:`skate.models.init.he_`) on weights; zero biases."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        he_(module.weight)
        nn.init.zeros_(module.bias)


class _ChannelsFirst(nn.Module):
    """(B, H, W, C) frames, as the env gives them, to the (B, C, H, W) that ``nn.Conv2d`` reads."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.permute(0, 3, 1, 2)


def seed_torso(input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE) -> nn.Sequential:
    """The seed's convolutions and dense layer: (B, H, W, C) frames to (B, 512) features.

    Args:
        input_shape: (height, width, channels) of one frame.

    Raises:
        ValueError: ``input_shape`` is not three positive sizes.
    """
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"seed_torso: input_shape must be (height, width, channels), got {tuple(input_shape)}")
    height, width, channels = (int(size) for size in input_shape)
    layers: list[nn.Module] = [_ChannelsFirst()]
    for maps, kernel, stride in CONV_LAYERS:
        (top, bottom), (left, right) = _same_padding(height, kernel, stride), _same_padding(width, kernel, stride)
        if top == bottom and left == right:
            layers.append(nn.Conv2d(channels, maps, kernel, stride, padding=(top, left)))
        else:
            layers += [nn.ZeroPad2d((left, right, top, bottom)), nn.Conv2d(channels, maps, kernel, stride)]
        layers.append(nn.ReLU())
        height, width, channels = math.ceil(height / stride), math.ceil(width / stride), maps
    layers += [nn.Flatten(), nn.Linear(channels * height * width, HIDDEN_UNITS), nn.ReLU()]
    torso = nn.Sequential(*layers)
    torso.apply(_init_seed_weights)
    return torso


def _linear_head(num_outputs: int) -> nn.Linear:
    """A linear layer on the torso's 512 features, initialised as the seed's."""
    head = nn.Linear(HIDDEN_UNITS, num_outputs)
    _init_seed_weights(head)
    return head


class SeedQNetwork(nn.Module):
    """The seed's Q-network: (B, 88, 80, 1) channels-last frames to (B, num_actions) Q-values.

    Args:
        num_actions: outputs, one Q-value per action (9 for Ms. Pac-Man).
        input_shape: (height, width, channels) of one frame.

    Raises:
        ValueError: ``num_actions`` < 1 or a bad ``input_shape``.
    """

    def __init__(self, num_actions: int, *, input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE) -> None:
        super().__init__()
        if num_actions < 1:
            raise ValueError(f"SeedQNetwork: num_actions must be >= 1, got {num_actions}")
        self.torso = seed_torso(input_shape)
        self.head = _linear_head(num_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values, shape (B, num_actions), of frames of shape (B, H, W, C)."""
        return self.head(self.torso(obs))


class _ObsEncoder(nn.Module):
    """RLlib's encoder contract around the torso: ``{obs: frames}`` -> ``{ENCODER_OUT: features}``."""

    def __init__(self, torso: nn.Module) -> None:
        super().__init__()
        self.net = torso

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {ENCODER_OUT: self.net(batch[Columns.OBS])}


class SeedDQNTorchRLModule(DefaultDQNTorchRLModule):
    """RLlib DQN's torch module with the seed's network in place of RLlib's catalog-built one.

    Use it as ``RLModuleSpec(module_class=SeedDQNTorchRLModule)`` in ``DQNConfig().rl_module(...)``.
    Only :meth:`setup` differs from ``DefaultDQNTorchRLModule``: the encoder is the seed's torso
    (:func:`seed_torso`) and the Q head its linear output layer, so a plain DQN module computes
    exactly :class:`SeedQNetwork` (``encoder.net`` is its ``torso``, ``af`` its ``head``).
    Everything DQN's learner calls is inherited: ``compute_q_values`` (``QNetAPI``),
    ``make_target_networks``, ``get_target_network_pairs`` and ``forward_target``
    (``TargetNetworkAPI``), and ``_forward_train``'s ``qf_preds``, ``qf_next_preds`` (double Q) and
    ``qf_target_next_preds``. DQN's ``dueling`` (a second linear head, the value stream) and
    ``num_atoms`` (distributional Q: ``num_actions * num_atoms`` outputs) stay available. RLlib's
    ``conv_filters`` (a warning when set), ``fcnet_*`` and ``head_fcnet_*`` settings are not used.

    Raises:
        ValueError: a ``catalog_class`` is given (the networks are built here, not by a catalog),
            or the spaces are not image frames and discrete actions.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        catalog_class = kwargs.pop("catalog_class", None)
        if catalog_class is not None:
            raise ValueError(f"SeedDQNTorchRLModule builds its own networks; remove catalog_class={catalog_class!r} "
                             "from its RLModuleSpec")
        # Skip DefaultDQNTorchRLModule.__init__, which would build a DQNCatalog (and fail on 88x80 frames).
        TorchRLModule.__init__(self, *args, **kwargs)

    def setup(self) -> None:
        """Build the seed's torso and Q head (and the value head when dueling) from the spaces."""
        given = self.model_config or {}
        if dataclasses.is_dataclass(given):
            given = dataclasses.asdict(given)
        config = {**_DQN_DEFAULTS, **{key: value for key, value in given.items() if value is not None}}
        if config.get("conv_filters"):
            warnings.warn(f"SeedDQNTorchRLModule ignores conv_filters={config['conv_filters']!r}: it builds the "
                          "seed's convolutions", stacklevel=2)
        obs_shape = getattr(self.observation_space, "shape", None)
        num_actions = getattr(self.action_space, "n", None)
        if obs_shape is None or len(obs_shape) != 3 or num_actions is None:
            raise ValueError("SeedDQNTorchRLModule needs (height, width, channels) frames and discrete actions, got "
                             f"observation space {self.observation_space} and action space {self.action_space}")
        self.uses_dueling = bool(config["dueling"])
        self.uses_double_q = bool(config["double_q"])
        self.num_atoms = int(config["num_atoms"])
        if self.num_atoms > 1:
            self.v_min, self.v_max = float(config["v_min"]), float(config["v_max"])
        self.epsilon_schedule = Scheduler(fixed_value_or_schedule=config["epsilon"], framework=self.framework)
        self.action_dist_cls = TorchCategorical
        seed = SeedQNetwork(int(num_actions) * self.num_atoms, input_shape=obs_shape)
        self.encoder = _ObsEncoder(seed.torso)
        self.af = seed.head
        if self.uses_dueling:
            self.vf = _linear_head(1)
