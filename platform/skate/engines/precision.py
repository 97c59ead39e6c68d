"""Mixed precision: the forward pass in bf16 or fp16 under autocast, the weights and their updates
in fp32, and for fp16 a dynamic loss scale so that small gradients survive half precision.

Every engine's replica uses the same two pieces, so ``train.precision`` means the same on all of
them: :func:`autocast` around the forward pass and :class:`LossScaler` for the backward pass.
A step whose scaled gradients overflowed is skipped by all replicas alike (under allreduce the
gradients are already averaged, so every rank sees the same overflow), and the scale halves.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager, Iterable, Literal

import torch

Precision = Literal["fp32", "bf16", "fp16"]
DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: Precision, device: torch.device) -> ContextManager[object]:
    """The context a forward pass runs in: autocast to bf16 or fp16 on ``device`` (CPU or CUDA),
    or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


class LossScaler:
    """Dynamic loss scaling (fp16 only; otherwise a plain backward).

    Args:
        enabled: whether to scale (``precision == "fp16"``).
        scale: the first scale.
        growth_interval: good steps in a row after which the scale doubles.
    """

    def __init__(self, enabled: bool, *, scale: float = 2.0**16, growth_interval: int = 2000) -> None:
        self.enabled = enabled
        self.scale = scale
        self.growth_interval = growth_interval
        self.good_steps = 0
        self.skipped = 0

    def backward(self, loss: torch.Tensor, parameters: Iterable[torch.nn.Parameter]) -> bool:
        """Backward from ``loss``, leaving true (unscaled) gradients; returns ``False`` when they
        overflowed: the gradients are then zeroed, the step must be skipped and the scale halves."""
        if not self.enabled:
            loss.backward()
            return True
        (loss * self.scale).backward()
        grads = [p.grad for p in parameters if p.grad is not None]
        if grads and not bool(torch.isfinite(torch.stack([g.abs().max() for g in grads])).all()):
            for g in grads:
                g.zero_()
            self.scale /= 2
            self.good_steps = 0
            self.skipped += 1
            return False
        torch._foreach_div_(grads, self.scale)
        self.good_steps += 1
        if self.good_steps % self.growth_interval == 0:
            self.scale *= 2
        return True
