from __future__ import annotations

import numpy as np
import pytest
import torch

from skate.data import DatasetInfo
from skate.engines.ps.layout import FlatModel, Layout, balanced_cuts, decode, encode
from skate.models.rnn import RnnClassifierConfig

DIGITS = DatasetInfo(x_shape=(8, 8), y_shape=(), num_classes=10)


@pytest.mark.parametrize(
    ("sizes", "parts", "expected"),
    [
        ([1200, 22500, 150, 150, 1500, 10], 3, [0, 1, 2, 6]),
        ([1, 1, 1, 1], 4, [0, 1, 2, 3, 4]),
        ([5, 1, 1, 1, 1, 1], 2, [0, 1, 6]),
        ([1, 1, 1, 1, 100], 2, [0, 4, 5]),
        ([3, 3, 3], 1, [0, 3]),
    ],
)
def test_cuts_are_contiguous_nonempty_and_balanced(sizes: list[int], parts: int, expected: list[int]) -> None:
    assert balanced_cuts(sizes, parts) == expected


def test_layout_covers_every_parameter_once_and_round_trips() -> None:
    model = RnnClassifierConfig().build(DIGITS)
    layout = Layout.of(model, 3)
    assert layout.size == sum(p.numel() for p in model.parameters())
    assert layout.shards[0][0] == 0 and layout.shards[-1][1] == layout.size
    assert all(a[1] == b[0] for a, b in zip(layout.shards, layout.shards[1:]))
    state = dict(model.named_parameters())
    back = layout.unflatten(layout.flatten(state))
    for name, tensor in state.items():
        torch.testing.assert_close(back[name], tensor.detach())


def test_more_shards_than_tensors_is_a_clear_error() -> None:
    model = RnnClassifierConfig().build(DIGITS)
    with pytest.raises(ValueError, match="num_shards=7, but the model has only 6 parameter tensors"):
        Layout.of(model, 7)


def test_flat_model_parameters_and_gradients_are_views() -> None:
    torch.manual_seed(0)
    model = RnnClassifierConfig(num_units=4).build(DIGITS)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    layout = Layout.of(model, 2)
    flat = FlatModel(model, layout)
    for name, tensor in before.items():  # wrapping keeps the values
        torch.testing.assert_close(dict(model.named_parameters())[name].detach(), tensor)
    model(torch.randn(3, 8, 8)).sum().backward()
    assert float(flat.grads.abs().sum()) > 0
    grad_of_logits = model.logits.bias.grad.clone()
    slot = next(s for s in layout.slots if s.name == "logits.bias")
    torch.testing.assert_close(flat.grads[slot.start : slot.stop], grad_of_logits)
    flat.set_slice(0, layout.size, np.zeros(layout.size, dtype=np.float32))
    assert all(float(p.detach().abs().sum()) == 0 for p in model.parameters())


@pytest.mark.parametrize(("compression", "tolerance", "dtype"), [("none", 0.0, np.float32), ("fp16", 1e-3, np.float16), ("bf16", 1e-2, np.int16)])
def test_compression_halves_the_bytes_and_keeps_values_close(compression: str, tolerance: float, dtype: type) -> None:
    values = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    wire = encode(values, compression)  # type: ignore[arg-type]
    assert wire.dtype == dtype
    assert np.abs(decode(wire, compression) - values).max() <= tolerance * np.abs(values).max()  # type: ignore[arg-type]


def test_fp16_on_the_wire_rounds_as_ieee_half_precision_down_to_the_subnormals() -> None:
    # Gradients hold tiny values: those below 6.1e-5 are float16 subnormals, which numpy's cast is
    # slow on (190 ms for 3.2M values here); torch casts them the same, bit for bit.
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(500), rng.standard_normal(500) * 1e-6]).astype(np.float32)
    wire = encode(values, "fp16")
    assert wire.view(np.uint16).tolist() == values.astype(np.float16).view(np.uint16).tolist()
    read_only = wire.copy()
    read_only.setflags(write=False)  # as arrays from Ray's object store come
    assert decode(read_only, "fp16").tolist() == values.astype(np.float16).astype(np.float32).tolist()
