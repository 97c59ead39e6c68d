"""The optimizer config: every rule, with weight decay, as torch runs it on every engine (and on the
parameter-server shards)."""

from __future__ import annotations

import pytest
import torch

from skate.engines.optim import FlatStep, OptimizerConfig


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


def stepped(name: str, *, flat: bool, steps: int = 30) -> tuple[torch.Tensor, dict]:
    """A flat parameter after ``steps`` steps of ``name`` (weight decay, a rate changed at each step,
    the state saved and loaded back halfway, as a rollback does), by :class:`FlatStep` or by torch's
    own step, and the optimizer's state."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(1000, generator=generator))
    config = OptimizerConfig(name=name, lr=0.01, weight_decay=0.1)
    optimizer = config.build([weight])
    step_of = FlatStep(optimizer) if flat else optimizer.step
    for step in range(steps):
        if step == steps // 2:
            optimizer.load_state_dict(optimizer.state_dict())  # new groups and state
        weight.grad = torch.randn(1000, generator=generator)
        config.set_rate(optimizer, step, steps, scale=1.0 + step / steps)
        step_of()
    return weight.detach(), optimizer.state_dict()


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_the_flat_step_gives_torch_s_adam_to_the_bit(name: str) -> None:
    (flat, flat_state), (torch_s, torch_state) = stepped(name, flat=True), stepped(name, flat=False)
    assert torch.equal(flat, torch_s)
    for key in ("step", "exp_avg", "exp_avg_sq"):
        assert torch.equal(flat_state["state"][0][key], torch_state["state"][0][key])
    assert flat_state["param_groups"] == torch_state["param_groups"]


def test_the_flat_step_calls_the_kernel_itself_once_the_state_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    weight = torch.nn.Parameter(torch.zeros(8))
    optimizer = OptimizerConfig(name="adam").build([weight])
    weight.grad = torch.ones(8)
    calls = []
    monkeypatch.setattr(optimizer, "step", lambda: calls.append("torch") or torch.optim.Adam.step(optimizer))
    step = FlatStep(optimizer)
    step()  # no state yet: torch makes it
    step()
    assert calls == ["torch"] and int(optimizer.state[weight]["step"]) == 2


@pytest.mark.parametrize("build", [
    lambda w: OptimizerConfig(name="sgd").build([w]),
    lambda w: torch.optim.Adam([w], amsgrad=True, fused=True),
    lambda w: torch.optim.Adam([w]),  # not fused
    lambda w: torch.optim.Adam([w, torch.nn.Parameter(torch.zeros(2))], fused=True),
], ids=["sgd", "amsgrad", "unfused", "two_parameters"])
def test_the_flat_step_leaves_every_other_optimizer_to_torch(build, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    weight = torch.nn.Parameter(torch.zeros(8))
    weight.grad = torch.ones(8)
    optimizer = build(weight)
    optimizer.step()  # its state made
    calls = []
    real = optimizer.step
    monkeypatch.setattr(optimizer, "step", lambda: calls.append("torch") or real())
    FlatStep(optimizer)()
    assert calls == ["torch"]
