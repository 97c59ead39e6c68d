"""One flat float32 vector for all of a model's parameters, cut into shards at tensor boundaries.

Workers keep their model's parameters and gradients as views into two flat buffers, so what
crosses the wire is a slice of a numpy array (zero-copy through Ray's object store) and setting
fresh parameters is one copy per shard.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import torch
from torch import nn

from skate.engines.ps.config import Compression

# Arrays from Ray's object store are read-only; they are only ever read here (copied into tensors).
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")


@dataclasses.dataclass(frozen=True)
class Slot:
    """Where one named parameter tensor lives in the flat vector."""

    name: str
    shape: tuple[int, ...]
    start: int
    stop: int


@dataclasses.dataclass(frozen=True)
class Layout:
    """The flat vector's tensors and its shards' ``[start, stop)`` ranges."""

    slots: tuple[Slot, ...]
    shards: tuple[tuple[int, int], ...]

    @property
    def size(self) -> int:
        return self.slots[-1].stop if self.slots else 0

    @classmethod
    def of(cls, model: nn.Module, num_shards: int) -> "Layout":
        """The layout of ``model``'s parameters over ``num_shards`` shards balanced by bytes.

        Raises:
            ValueError: when there are more shards than parameter tensors to give them.
        """
        slots, offset = [], 0
        for name, param in model.named_parameters():
            slots.append(Slot(name, tuple(param.shape), offset, offset + param.numel()))
            offset += param.numel()
        if num_shards > len(slots):
            raise ValueError(f"num_shards={num_shards}, but the model has only {len(slots)} parameter tensors "
                             f"to spread over shards (use at most {len(slots)})")
        cuts = balanced_cuts([s.stop - s.start for s in slots], num_shards)
        bounds = [slots[i].start for i in cuts[:-1]] + [offset]
        return cls(tuple(slots), tuple(zip(bounds[:-1], bounds[1:])))

    def flatten(self, tensors: dict[str, torch.Tensor]) -> np.ndarray:
        """A state dict's parameters as one float32 vector."""
        return np.concatenate([tensors[s.name].detach().cpu().float().reshape(-1).numpy() for s in self.slots])

    def unflatten(self, flat: np.ndarray) -> dict[str, torch.Tensor]:
        """The flat vector as named tensors (a state dict of parameters)."""
        return {s.name: torch.from_numpy(np.array(flat[s.start : s.stop])).reshape(s.shape) for s in self.slots}


def balanced_cuts(sizes: list[int], parts: int) -> list[int]:
    """Start indices of ``parts`` contiguous, non-empty groups of ``sizes`` whose largest sum is
    as small as possible (binary search on that sum, greedy packing)."""

    def groups_needed(cap: int) -> int:
        count, load = 1, 0
        for size in sizes:
            if load + size > cap:
                count, load = count + 1, 0
            load += size
        return count

    low, high = max(sizes), sum(sizes)
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if groups_needed(mid) <= parts else (mid + 1, high)
    starts, load = [0], 0
    for i, size in enumerate(sizes):
        # open a new group when this one is full, or when the rest must each get a group of their own
        remaining_groups = parts - len(starts)
        if i > 0 and remaining_groups > 0 and (load + size > low or len(sizes) - i == remaining_groups):
            starts.append(i)
            load = 0
        load += size
    return starts + [len(sizes)]


class FlatModel:
    """A model whose parameters and gradients are views into two flat float32 buffers."""

    def __init__(self, model: nn.Module, layout: Layout) -> None:
        self.layout = layout
        device = next(model.parameters()).device
        self.params = torch.zeros(layout.size, dtype=torch.float32, device=device)
        self.grads = torch.zeros_like(self.params)
        named = dict(model.named_parameters())
        for slot in layout.slots:
            param = named[slot.name]
            self.params[slot.start : slot.stop].copy_(param.detach().reshape(-1))
            param.data = self.params[slot.start : slot.stop].view(slot.shape)
            param.grad = self.grads[slot.start : slot.stop].view(slot.shape)

    def zero_grad(self) -> None:
        self.grads.zero_()

    def grad_slice(self, start: int, stop: int) -> np.ndarray:
        return self.grads[start:stop].cpu().numpy()

    def set_slice(self, start: int, stop: int, values: np.ndarray) -> None:
        self.params[start:stop].copy_(torch.from_numpy(values))


def wire_dtype(compression: Compression) -> np.dtype:
    """The dtype of what :func:`encode` produces."""
    return np.dtype({"none": np.float32, "fp16": np.float16, "bf16": np.int16}[compression])


def encode(values: np.ndarray, compression: Compression) -> np.ndarray:
    """float32 values as they cross the wire: unchanged, float16, or bfloat16 bits (as int16).
    torch converts (vectorised; numpy's float16 casts are several times slower, and far slower still
    on the tiny values gradients hold)."""
    if compression == "none":
        return values
    half = torch.float16 if compression == "fp16" else torch.bfloat16
    encoded = torch.from_numpy(np.ascontiguousarray(values)).to(half)
    return (encoded if compression == "fp16" else encoded.view(torch.int16)).numpy()


def decode(wire: np.ndarray, compression: Compression) -> np.ndarray:
    """The float32 values of what :func:`encode` produced (a new array; ``wire`` is only read)."""
    if compression == "none":
        return wire
    values = torch.from_numpy(wire)
    return (values if compression == "fp16" else values.view(torch.bfloat16)).float().numpy()
