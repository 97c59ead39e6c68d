"""The poisoned-gradient guard: a gradient with NaN or Inf, or longer than ``train.refuse_grad_norm``,
is refused and never applied.

Every replica checks its whole gradient before it is used (the single and allreduce engines then
skip the step; under allreduce the gradient is already averaged, so every rank refuses alike; a
parameter-server worker pushes it with no examples, which the shards do not apply; where its wire
carries the gradient as it is, float32 and unclipped, the worker checks the slices it has just
written for the wire, while they are still in its cache, rather than the model's gradients before).
Each shard checks again the slice it receives, so that what a worker did not catch (a gradient that
overflowed on its way in fp16, a worker that skipped the check) still never reaches the parameters.
Refusals are counted in the ``guard/refused_gradients`` metric.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch


def gradient_problem(parameters: Iterable[torch.nn.Parameter], bound: float | None) -> str | None:
    """Why the gradients of ``parameters`` must be refused (``None``: they may be used)."""
    return grads_problem([p.grad for p in parameters if p.grad is not None], bound)


def grads_problem(grads: list[torch.Tensor], bound: float | None) -> str | None:
    """Why the gradient made of the tensors ``grads`` must be refused (``None``: it may be used)."""
    return norm_problem(global_norm(grads), bound)


def global_norm(grads: list[torch.Tensor]) -> float:
    """The L2 norm of all of ``grads`` together (0 for none); NaN or Inf if any holds one."""
    if not grads:
        return 0.0
    if len(grads) == 1:
        return float(torch.linalg.vector_norm(grads[0].detach().float()))
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach().float()) for g in grads])))


def slice_problem(grad: np.ndarray, bound: float | None) -> str | None:
    """Why a shard must refuse a gradient slice (its own norm checked against the bound)."""
    return slices_problem([grad], bound)


def slices_problem(slices: list[np.ndarray], bound: float | None) -> str | None:
    """Why the gradient made of the float32 arrays ``slices`` must be refused: their norm together,
    as numpy's norm of one of them takes it (a dot product, summed in float32). Lighter than a torch
    call where the code paths are cold: in a PS worker right after backward (the seed's classifier,
    ad hoc, medians of 60 steps) 28 us against 39 us."""
    squares = sum(float(np.dot(grad, grad)) for grad in (s.astype(np.float32, copy=False).ravel() for s in slices))
    return norm_problem(math.sqrt(squares), bound)


def norm_problem(norm: float, bound: float | None) -> str | None:
    """Why a gradient of norm ``norm`` must be refused under ``bound`` (``None``: it may be used)."""
    if not np.isfinite(norm):
        return "a NaN or Inf in the gradient"
    if bound is not None and norm > bound:
        return f"gradient norm {norm:.3g} > refuse_grad_norm {bound:g}"
    return None
