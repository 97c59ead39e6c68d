from __future__ import annotations

import numpy as np
import pytest
import torch

from skate.data import DatasetInfo
from skate.engines.ps.layout import FlatModel, Layout, balanced_cuts, decode, encode, wire_dtype
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


def test_flat_model_parameters_are_views_and_fresh_values_reach_the_model() -> None:
    torch.manual_seed(0)
    model = RnnClassifierConfig(num_units=4).build(DIGITS)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    layout = Layout.of(model, 2)
    flat = FlatModel(model, layout)
    for name, tensor in before.items():  # wrapping keeps the values
        torch.testing.assert_close(dict(model.named_parameters())[name].detach(), tensor)
    flat.set_slice(0, layout.size, np.zeros(layout.size, dtype=np.float32))
    assert all(float(p.detach().abs().sum()) == 0 for p in model.parameters())
    lo, hi = layout.shards[1]
    flat.set_slice(lo, hi, encode(np.full(hi - lo, 0.5, np.float32), "bf16"), "bf16")  # decoded as it is copied
    assert float(flat.params[lo:hi].min()) == float(flat.params[lo:hi].max()) == 0.5


def test_a_moved_slice_lives_in_its_new_home_with_its_values() -> None:
    torch.manual_seed(0)
    model = RnnClassifierConfig(num_units=4).build(DIGITS)
    layout = Layout.of(model, 2)
    flat = FlatModel(model, layout)
    lo, hi = layout.shards[1]
    before = flat.params[lo:hi].clone()
    home = np.zeros(hi - lo, np.float32)
    flat.move(lo, hi, home)
    np.testing.assert_array_equal(home, before.numpy())  # the values came along
    home[:] = 2.0  # as a shard's reply lands there
    moved = [p for s, p in zip(layout.slots, model.parameters()) if lo <= s.start]
    assert moved and all(float(p.detach().min()) == 2.0 for p in moved)
    flat.set_slice(lo, hi, home)  # a reply already in place: nothing to do
    flat.set_slice(lo, hi, np.full(hi - lo, 3.0, np.float32))  # any other values are copied in
    assert home.min() == home.max() == 3.0
    with pytest.raises(ValueError, match=f"need {hi - lo} float32 values"):
        flat.move(lo, hi, np.zeros(hi - lo, np.float16))


@pytest.mark.parametrize("compression", ["none", "fp16", "bf16"])
def test_a_shard_s_gradient_is_written_at_its_slots_in_the_wire_format(compression: str) -> None:
    torch.manual_seed(0)
    model = RnnClassifierConfig(num_units=4).build(DIGITS)
    layout = Layout.of(model, 2)
    flat = FlatModel(model, layout)
    model(torch.randn(3, 8, 8)).sum().backward()
    model.logits.bias.grad = None  # a parameter without a gradient is written as zeros
    for lo, hi in layout.shards:
        out = np.full(hi - lo, 7, wire_dtype(compression))  # type: ignore[arg-type]
        assert flat.write_grads(lo, hi, out, compression) is out  # type: ignore[arg-type]
        for slot in layout.slots:
            if lo <= slot.start and slot.stop <= hi:
                grad = dict(model.named_parameters())[slot.name].grad
                expected = np.zeros(slot.stop - slot.start, np.float32) if grad is None else grad.reshape(-1).numpy()
                got = decode(out[slot.start - lo : slot.stop - lo], compression)  # type: ignore[arg-type]
                np.testing.assert_array_equal(got, decode(encode(expected, compression), compression))  # type: ignore[arg-type]
    flat.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_a_payload_written_at_every_step_holds_that_step_s_gradient() -> None:
    """The views of a worker's payload are kept from step to step; each step still writes its own
    gradient there, zeros where a parameter has none, and a new payload is written, not the old."""
    torch.manual_seed(0)
    model = RnnClassifierConfig(num_units=4).build(DIGITS)
    layout = Layout.of(model, 1)
    flat = FlatModel(model, layout)
    out = np.full(layout.size, 7, np.float32)

    def expected() -> np.ndarray:
        return np.concatenate([np.zeros(p.numel(), np.float32) if p.grad is None else p.grad.reshape(-1).numpy()
                               for p in flat.parameters])

    for step, without in enumerate([None, model.logits.bias, None]):
        flat.zero_grad()
        model(torch.randn(3, 8, 8)).sum().mul(step + 1).backward()
        if without is not None:
            without.grad = None
        np.testing.assert_array_equal(flat.write_grads(0, layout.size, out, "none"), expected())
    other = np.full(layout.size, 7, np.float32)
    flat.write_grads(0, layout.size, other, "none")
    np.testing.assert_array_equal(other, expected())
    model.logits.bias.grad = torch.full_like(model.logits.bias, 5.0)
    flat.write_grads(0, layout.size, out, "none")
    np.testing.assert_array_equal(out, expected())  # back to the first payload


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


def test_the_shards_slices_unflatten_as_the_flat_vector_does() -> None:
    model = RnnClassifierConfig(num_units=4).build(DIGITS)
    layout = Layout.of(model, 3)
    flat = np.arange(layout.size, dtype=np.float32)
    joined = layout.unflatten_shards([flat[lo:hi] for lo, hi in layout.shards])
    expected = layout.unflatten(flat)
    assert list(joined) == list(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(joined[name], tensor)


@pytest.mark.parametrize("compression", ["fp16", "bf16"])
def test_a_16_bit_wire_decodes_into_a_given_buffer(compression: str) -> None:
    values = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    wire = encode(values, compression)  # type: ignore[arg-type]
    out = np.empty(100, np.float32)
    assert decode(wire, compression, out=out) is out  # type: ignore[arg-type]
    np.testing.assert_array_equal(out, decode(wire, compression))  # type: ignore[arg-type]
