"""One flat float32 vector for all of a model's parameters, cut into shards at tensor boundaries.

Workers keep their model's parameters as views into one flat buffer, so that setting fresh
parameters is one copy per shard, and write their gradients into a shard's slice of the same layout
(:meth:`FlatModel.write_grads`), so that what crosses the wire is one numpy array per shard.
"""

from __future__ import annotations

import bisect
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
        return self.unflatten_shards([flat], starts=[0])

    def unflatten_shards(self, slices: list[np.ndarray], *, starts: list[int] | None = None) -> dict[str, torch.Tensor]:
        """The shards' slices, in order, as named tensors (each value copied once: no concatenation
        first). ``starts``: where each slice begins in the flat vector (default: the shards')."""
        starts = [lo for lo, _ in self.shards] if starts is None else starts

        def values(slot: Slot) -> np.ndarray:
            i = bisect.bisect_right(starts, slot.start) - 1
            return slices[i][slot.start - starts[i] : slot.stop - starts[i]]

        return {s.name: torch.from_numpy(np.array(values(s))).reshape(s.shape) for s in self.slots}


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


Part = tuple[torch.nn.Parameter, torch.Tensor]
"""A parameter and the view its gradient is written into (:meth:`FlatModel.write_grads`)."""


class FlatModel:
    """A model whose parameters are views into one flat float32 buffer (fresh parameters are one copy
    per shard; a shard's slice may live in memory of its own, see :meth:`move`), and whose gradients
    are written into a shard's slice of that layout when pushed.

    The gradients stay the backward pass's own tensors (set to ``None`` before each), each written
    once, converted to the wire format as it goes, where the push reads it (the shared pages, a
    socket's buffer): gradients kept as views into a flat buffer would cost zeroing that buffer and
    adding each new gradient into it, two more passes over the model at every step.
    """

    def __init__(self, model: nn.Module, layout: Layout) -> None:
        self.layout = layout
        device = next(model.parameters()).device
        self.params = torch.zeros(layout.size, dtype=torch.float32, device=device)
        named = dict(model.named_parameters())
        self.parameters = [named[slot.name] for slot in layout.slots]
        self._moved: dict[tuple[int, int], torch.Tensor] = {}  # slices that live elsewhere (see move)
        self._parts: dict[tuple[int, int], tuple[np.ndarray, Compression, list[Part]]] = {}  # see _grad_parts
        self._homes: dict[tuple[int, int], np.ndarray] = {}  # the arrays the moved slices live in
        for slot, param in zip(layout.slots, self.parameters):
            self.params[slot.start : slot.stop].copy_(param.detach().reshape(-1))
            param.data = self.params[slot.start : slot.stop].view(slot.shape)

    def move(self, start: int, stop: int, home: np.ndarray) -> None:
        """Keep the parameters ``[start, stop)`` (a shard's slice) in ``home`` from now on, with their
        values: float32 memory of that size on the parameters' device (on one node, the shared pages
        the shard writes its reply into, so that taking the reply copies nothing)."""
        target = torch.from_numpy(home)
        if target.dtype != torch.float32 or target.shape != (stop - start,) or self.params.device.type != "cpu":
            raise ValueError(f"parameters [{start}, {stop}) need {stop - start} float32 values on "
                             f"{self.params.device}, not {tuple(target.shape)} {target.dtype} on the CPU")
        target.copy_(self._slice(start, stop))
        for slot, param in zip(self.layout.slots, self.parameters):
            if start <= slot.start and slot.stop <= stop:
                param.data = target[slot.start - start : slot.stop - start].view(slot.shape)
        self._moved[(start, stop)] = target
        self._homes[(start, stop)] = home

    def _slice(self, start: int, stop: int) -> torch.Tensor:
        """Where the parameters ``[start, stop)`` live (within one shard's slice)."""
        for (lo, hi), home in self._moved.items():
            if lo <= start and stop <= hi:
                return home[start - lo : stop - lo]
        return self.params[start:stop]

    def zero_grad(self) -> None:
        for param in self.parameters:
            param.grad = None

    def write_grads(self, start: int, stop: int, out: np.ndarray, compression: Compression) -> np.ndarray:
        """The gradient of the parameters in ``[start, stop)`` (a shard's slice, whose bounds are
        tensors') written into ``out`` in the wire format of ``compression`` (:func:`wire_dtype`;
        zero for a parameter with no gradient); returns ``out``."""
        parts, grads = [], []
        for param, part in self._grad_parts(start, stop, out, compression):
            if param.grad is None:
                part.zero_()
            else:
                parts.append(part)
                grads.append(param.grad)
        if grads and all(grad.device == parts[0].device for grad in grads):
            torch._foreach_copy_(parts, grads)  # one call for the slice's tensors
        else:
            for part, grad in zip(parts, grads):
                part.copy_(grad)
        return out

    def _grad_parts(self, start: int, stop: int, out: np.ndarray, compression: Compression) -> list[Part]:
        """The parameters of ``[start, stop)``, each with the view of ``out`` (in the wire format) its
        gradient is written into; kept for the last ``out`` of each slice, which a worker writes at
        every step (its link's payload). Right after a backward pass, torch's cost per call is most
        of a small model's write: on the seed's classifier in a PS worker (ad hoc, medians of 60
        steps), the views made and a copy a tensor took 85 us, one copy of them all into views kept
        46 us."""
        kept = self._parts.get((start, stop))
        if kept is None or kept[0] is not out or kept[1] != compression:
            target = wire_tensor(out, compression)
            parts = [(param, target[slot.start - start : slot.stop - start].view(slot.shape))
                     for slot, param in zip(self.layout.slots, self.parameters) if start <= slot.start and slot.stop <= stop]
            kept = self._parts[(start, stop)] = (out, compression, parts)
        return kept[2]

    def set_slice(self, start: int, stop: int, wire: np.ndarray, compression: Compression = "none") -> None:
        """Take the parameters ``[start, stop)`` from ``wire`` (in the wire format of ``compression``,
        converted as they are copied; only read). Nothing is copied when ``wire`` is where they live
        (:meth:`move`)."""
        if self._homes.get((start, stop)) is wire:
            return  # a reply in the pages the parameters live in: installed by its arrival
        target, source = self._slice(start, stop), wire_tensor(wire, compression)
        if source.data_ptr() == target.data_ptr() and source.dtype == target.dtype:
            return
        target.copy_(source)


def wire_tensor(values: np.ndarray, compression: Compression) -> torch.Tensor:
    """The wire-format array ``values`` (:func:`wire_dtype`) as a tensor of its real dtype, sharing
    its memory: copying into it or out of it converts from or to float32 in the same pass."""
    tensor = torch.from_numpy(values)
    return tensor.view(torch.bfloat16) if compression == "bf16" else tensor


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


def decode(wire: np.ndarray, compression: Compression, *, out: np.ndarray | None = None) -> np.ndarray:
    """The float32 values of what :func:`encode` produced (``wire`` is only read): ``wire`` itself
    uncompressed, else written into ``out`` (float32, the same length) or a new array."""
    if compression == "none":
        return wire
    if out is None:
        return wire_tensor(wire, compression).float().numpy()
    torch.from_numpy(out).copy_(wire_tensor(wire, compression))
    return out
