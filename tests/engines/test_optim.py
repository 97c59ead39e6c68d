"""The optimizer config: every rule, with weight decay, as torch runs it on every engine (and on the
parameter-server shards)."""

from __future__ import annotations

import pytest
import torch

from skate.engines.optim import OptimizerConfig


def one_step(config: OptimizerConfig, grad: float = 0.0) -> float:
    weight = torch.nn.Parameter(torch.tensor([2.0]))
    optimizer = config.build([weight])
    weight.grad = torch.tensor([grad])
    optimizer.step()
    return float(weight)


def test_sgd_weight_decay_adds_the_l2_penalty_gradient() -> None:
    assert one_step(OptimizerConfig(name="sgd", lr=0.1, weight_decay=0.5), grad=1.0) == pytest.approx(2.0 - 0.1 * (1.0 + 0.5 * 2.0))
    assert one_step(OptimizerConfig(name="sgd", lr=0.1), grad=1.0) == pytest.approx(1.9)


def test_adamw_decays_the_weight_apart_from_the_gradient() -> None:
    # With a zero gradient Adam's own step is zero: only AdamW's decoupled decay moves the weight.
    assert one_step(OptimizerConfig(name="adamw", lr=0.1, weight_decay=0.5)) == pytest.approx(2.0 * (1 - 0.1 * 0.5))
    assert one_step(OptimizerConfig(name="adam", lr=0.1)) == pytest.approx(2.0)
    assert isinstance(OptimizerConfig(name="adamw").build([torch.nn.Parameter(torch.zeros(1))]), torch.optim.AdamW)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "adamw"])
def test_every_rule_builds_torch_s_fused_step_on_the_cpu(name: str) -> None:
    optimizer = OptimizerConfig(name=name).build([torch.nn.Parameter(torch.zeros(3))])
    assert optimizer.defaults["fused"] is True


def test_a_parameter_torch_cannot_fuse_for_gets_the_per_tensor_step() -> None:
    optimizer = OptimizerConfig(name="adam").build([torch.nn.Parameter(torch.zeros(3, device="meta"))])
    assert optimizer.defaults["fused"] is None
