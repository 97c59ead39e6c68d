"""Gradient clipping, as every engine's replica applies it after backward and before the update."""

from __future__ import annotations

import pytest
import torch

from skate.engines.replica import clip, epoch_order
from skate.errors import SpecError
from skate.spec import load_spec_data


def model_with_gradients(scale: float) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    (model(torch.randn(8, 4)).sum() * scale).backward()
    return model


def grads(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def test_clip_norm_caps_the_gradient_the_optimizer_sees_and_keeps_its_direction() -> None:
    model = model_with_gradients(100.0)
    before = grads(model).clone()
    assert before.norm() > 1.0
    clip(model.parameters(), norm=1.0, value=None)
    after = grads(model)
    assert after.norm() == pytest.approx(1.0, rel=1e-4)
    assert torch.allclose(after / after.norm(), before / before.norm(), atol=1e-6)


def test_a_short_gradient_is_left_alone() -> None:
    model = model_with_gradients(1e-3)
    before = grads(model).clone()
    clip(model.parameters(), norm=1.0, value=None)
    assert torch.equal(grads(model), before)


def test_clip_value_clamps_each_element() -> None:
    model = model_with_gradients(100.0)
    clip(model.parameters(), norm=None, value=0.5)
    after = grads(model)
    assert after.abs().max() == pytest.approx(0.5) and (after.abs() <= 0.5).all()


def test_clipping_is_set_in_the_train_section() -> None:
    spec = load_spec_data({"name": "x", "data": {"source": "digits"}, "model": {"kind": "rnn_classifier"},
                           "train": {"clip_norm": 1.0, "clip_value": 5.0}})
    assert (spec.train.clip_norm, spec.train.clip_value) == (1.0, 5.0)  # type: ignore[union-attr]
    with pytest.raises(SpecError, match="train.clip_norm: expected a number > 0"):
        load_spec_data({"name": "x", "data": {"source": "digits"}, "model": {"kind": "rnn_classifier"},
                        "train": {"clip_norm": 0}})


def test_an_epoch_order_is_a_permutation_of_every_row_by_default() -> None:
    order = epoch_order(100, 1.0, seed=3, epoch=1)
    assert sorted(order.tolist()) == list(range(100))
    assert not (order == epoch_order(100, 1.0, seed=3, epoch=2)).all()


def test_a_fraction_fills_the_epoch_from_one_fixed_subset_of_rows() -> None:
    orders = [epoch_order(100, 0.1, seed=3, epoch=epoch) for epoch in (1, 2)]
    chosen = set(orders[0].tolist())
    assert len(chosen) == 10 and set(orders[1].tolist()) == chosen  # the same labelled rows every epoch
    assert all(len(order) == 100 for order in orders)  # the epoch keeps its steps
    assert all(sorted(order[:10].tolist()) == sorted(chosen) for order in orders)  # each pass sees each row once
    assert set(epoch_order(100, 0.1, seed=4, epoch=1).tolist()) != chosen
    assert len(set(epoch_order(7, 0.01, seed=0, epoch=1).tolist())) == 1  # at least one row
