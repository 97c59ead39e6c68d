"""Mixed precision: autocast of the forward pass and fp16's dynamic loss scale."""

from __future__ import annotations

import pytest
import torch

from skate.engines.precision import autocast, LossScaler
from skate.errors import SpecError
from skate.spec import load_spec_data

CPU = torch.device("cpu")


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16),
                                                  ("fp16", torch.float16)])
def test_autocast_runs_the_forward_pass_in_the_chosen_format(precision: str, dtype: torch.dtype) -> None:
    layer = torch.nn.Linear(4, 2)
    with autocast(precision, CPU):  # type: ignore[arg-type]
        out = layer(torch.randn(3, 4))
    assert out.dtype == dtype and layer.weight.dtype == torch.float32


def model_and_loss(scale: float) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    return model, model(torch.randn(8, 4)).pow(2).mean() * scale


def test_a_scaled_backward_leaves_the_true_gradient() -> None:
    model, loss = model_and_loss(1.0)
    loss.backward(retain_graph=True)
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    scaler = LossScaler(True)
    assert scaler.backward(loss, model.parameters())
    for got, want in zip((p.grad for p in model.parameters()), expected):
        torch.testing.assert_close(got, want)


def test_an_overflow_skips_the_step_zeroes_the_gradient_and_halves_the_scale() -> None:
    model, loss = model_and_loss(1e36)  # times 2**16 is past float32's range
    scaler = LossScaler(True)
    assert not scaler.backward(loss, model.parameters())
    assert all(float(p.grad.abs().max()) == 0 for p in model.parameters())
    assert (scaler.scale, scaler.skipped) == (2.0**15, 1)


def test_the_scale_grows_after_good_steps_and_fp32_does_not_scale() -> None:
    scaler = LossScaler(True, scale=4.0, growth_interval=2)
    for _ in range(2):
        model, loss = model_and_loss(1.0)
        scaler.backward(loss, model.parameters())
    assert scaler.scale == 8.0
    plain = LossScaler(False)
    model, loss = model_and_loss(1e36)
    assert plain.backward(loss, model.parameters()) and plain.scale == 2.0**16


def test_precision_is_set_in_the_train_section() -> None:
    base = {"name": "x", "data": {"source": "digits"}, "model": {"kind": "rnn_classifier"}}
    assert load_spec_data({**base, "train": {"precision": "bf16"}}).train.precision == "bf16"
    assert load_spec_data(base).train.precision == "fp32"
    with pytest.raises(SpecError, match="precision"):
        load_spec_data({**base, "train": {"precision": "fp8"}})
