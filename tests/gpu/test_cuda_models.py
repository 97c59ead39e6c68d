"""Models on a CUDA device: each computes on the GPU what it computes on the CPU, and a recurrent
stack split over devices by ``layer_devices`` keeps every layer where it was put.

Skipped where torch sees no CUDA device (as in CI); run them on a machine with a GPU:
``pytest tests/gpu``.
"""

from __future__ import annotations

import copy
from typing import Iterator

import pytest
import torch

from skate.data import DatasetInfo
from skate.models.rnn import RnnClassifierConfig
from skate.rl.qnetwork import SeedQNetwork

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DIGITS = DatasetInfo(x_shape=(8, 8), y_shape=(), num_classes=10)


@pytest.fixture(autouse=True)
def full_float32() -> Iterator[None]:
    """TF32 (cuDNN's default for convolutions and RNNs) keeps 10 mantissa bits: off, so the GPU's
    results can be held to float32 rounding against the CPU's."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    """``|got - expected| / |expected|`` in float64 on the CPU."""
    got, expected = got.detach().double().cpu(), expected.detach().double().cpu()
    return float((got - expected).norm() / expected.norm())


def outputs_and_grads(model: torch.nn.Module, *inputs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The model's output on ``inputs`` and the gradients of its mean square."""
    model.zero_grad()
    out = model(*inputs)
    out.square().mean().backward()
    return out, [p.grad.detach().clone() for p in model.parameters()]


def test_the_seed_q_network_computes_on_cuda_what_it_computes_on_the_cpu() -> None:
    torch.manual_seed(0)
    net = SeedQNetwork(9)
    frames = torch.rand(32, 88, 80, 1) * 2 - 1
    cpu_q, cpu_grads = outputs_and_grads(net, frames)
    gpu_q, gpu_grads = outputs_and_grads(copy.deepcopy(net).cuda(), frames.cuda())
    assert gpu_q.device.type == "cuda"
    assert relative_error(gpu_q, cpu_q) < 1e-5
    for got, expected in zip(gpu_grads, cpu_grads):
        assert got.device.type == "cuda"
        assert relative_error(got, expected) < 1e-4


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_layer_devices_keep_each_layer_on_its_device_and_compute_what_the_cpu_does(cell: str) -> None:
    torch.manual_seed(0)
    on_cpu = RnnClassifierConfig(num_units=16, num_layers=2, cell=cell, layer_devices=("cpu", "cpu")).build(DIGITS)
    split = RnnClassifierConfig(num_units=16, num_layers=2, cell=cell, layer_devices=("cpu", "cuda")).build(DIGITS)
    split.load_state_dict(on_cpu.state_dict())
    assert {p.device.type for p in split.rnn.layers[0].parameters()} == {"cpu"}
    assert {p.device.type for p in split.rnn.layers[1].parameters()} == {"cuda"}
    assert {p.device.type for p in split.logits.parameters()} == {"cuda"}
    assert split.to("cpu") is split and {p.device.type for p in split.rnn.layers[1].parameters()} == {"cuda"}
    x = torch.randn(4, 8, 8)
    cpu_out, cpu_grads = outputs_and_grads(on_cpu, x)
    split_out, split_grads = outputs_and_grads(split, x)
    assert split_out.device.type == "cpu"  # results go back to the input's device
    assert relative_error(split_out, cpu_out) < 1e-5
    for got, expected in zip(split_grads, cpu_grads):
        assert relative_error(got, expected) < 1e-4
