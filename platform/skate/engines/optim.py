"""The optimizer config, shared by every engine (the parameter server runs it on its shards)."""

from __future__ import annotations

import dataclasses
from typing import Any, TYPE_CHECKING, Iterable, Literal

from skate.config.fields import Unused, param
from skate.engines.schedule import ScheduleConfig, ConstantSchedule

if TYPE_CHECKING:
    import torch


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimizerConfig:
    """Gradient descent rule and its hyperparameters."""

    name: Literal["sgd", "momentum", "adam", "adamw"] = param(
        "adam", doc="sgd, momentum (SGD with momentum), adam, or adamw (Adam with decoupled weight decay)")
    lr: float = param(0.001, doc="learning rate", gt=0)
    momentum: float = param(0.9, doc="momentum coefficient (momentum only)", ge=0, lt=1)
    beta1: float = param(0.9, doc="Adam's first-moment decay", ge=0, lt=1)
    beta2: float = param(0.999, doc="Adam's second-moment decay", ge=0, lt=1)
    eps: float = param(1e-8, doc="Adam's denominator guard", gt=0)
    weight_decay: float = param(0.0, doc="weight decay: an L2 penalty's gradient for sgd, momentum and adam; "
                                         "decoupled from the gradient for adamw", ge=0)
    schedule: ScheduleConfig = param(doc="how the learning rate changes over the run's gradient steps",
                                     default_factory=ConstantSchedule)

    def unused_fields(self) -> Unused:
        """Fields the chosen rule leaves unused (see :data:`skate.config.fields.Unused`)."""
        unused: Unused = {}
        if self.name != "momentum":
            unused["momentum"] = (f"only the momentum optimizer uses it, and name is {self.name}", ("name",))
        if self.name not in ("adam", "adamw"):
            for field in ("beta1", "beta2", "eps"):
                unused[field] = (f"only adam and adamw use it, and name is {self.name}", ("name",))
        return unused

    def build(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """A torch optimizer over ``params``: torch's fused implementation (one kernel a step) where
        every parameter allows it, its per-tensor loop elsewhere.

        Fused, an Adam step on a 6.4M-float vector took 6.7 ms instead of 43 ms on one core of the
        2-core VM, and on the seed's 28.5k floats 0.10 ms instead of 0.17 (``benchmarks/optimizer_step.py``):
        on a parameter-server shard that step is on every synchronous step's path. The two differ in
        rounding only (7e-9 apart after 100 steps).
        """
        import torch

        params = list(params)
        fused = fusable(params) or None
        if self.name in ("adam", "adamw"):
            adam = torch.optim.AdamW if self.name == "adamw" else torch.optim.Adam
            return adam(params, lr=self.lr, betas=(self.beta1, self.beta2), eps=self.eps,
                        weight_decay=self.weight_decay, fused=fused)
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum if self.name == "momentum" else 0.0,
                               weight_decay=self.weight_decay, fused=fused)

    def set_rate(self, optimizer: torch.optim.Optimizer, step: int, total_steps: int, *, scale: float = 1.0) -> float:
        """Give ``optimizer`` the scheduled rate of gradient step ``step`` (from 0) of ``total_steps``,
        times ``scale``; returns that rate."""
        rate = self.schedule.rate(self.lr, step, total_steps) * scale
        for group in optimizer.param_groups:
            group["lr"] = rate
        return rate


def fusable(params: list[torch.nn.Parameter]) -> bool:
    """Whether torch has fused optimizer kernels for every one of ``params``: floating point, on a
    device it fuses for (the CPU and CUDA among them)."""
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    devices = _get_fused_kernels_supported_devices()
    return bool(params) and all(p.is_floating_point() and p.device.type in devices for p in params)


class FlatStep:
    """``optimizer.step()``, with torch's fused Adam or AdamW kernel called directly where the
    optimizer holds one parameter (a parameter-server shard's flat slice) whose state is made: the
    same kernel, with the arguments torch's own step passes it, so the results are the same to the
    bit (``tests/engines/test_optim.py``). torch's step spends most of its time in Python around
    that kernel: on a shard of the seed's classifier between synchronous steps (ad hoc, in the
    shard, medians of 60 steps), torch's step took 76 us and this one 43 us (the kernel alone 21
    us), on the path every worker of a sync step waits on.

    Every other optimizer and option is left to torch's step: another rule, several parameters or
    groups, amsgrad, maximize, capturable, differentiable, a learning rate held in a tensor, hooks,
    a parameter with no gradient or no state yet (its first step)."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self._group: dict[str, Any] | None = None
        self._plan()

    def _plan(self) -> None:
        """The kernel for the optimizer's group as it is now (``load_state_dict`` makes new groups)."""
        import torch

        optimizer = self.optimizer
        self._kernel: Any = None
        self._group = optimizer.param_groups[0] if optimizer.param_groups else None
        if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW) or len(optimizer.param_groups) != 1:
            return
        group = optimizer.param_groups[0]
        if len(group["params"]) != 1 or not group.get("fused"):
            return
        if any(group.get(option) for option in ("amsgrad", "maximize", "capturable", "differentiable")):
            return
        decoupled = type(optimizer) is torch.optim.AdamW or group.get("decoupled_weight_decay", False)
        self._kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
        self._param = group["params"][0]

    def __call__(self) -> None:
        import torch

        if not self.optimizer.param_groups or self.optimizer.param_groups[0] is not self._group:
            self._plan()
        state = self._direct_state()
        if state is None:
            self.optimizer.step()
            return
        group, param = self._group, self._param
        assert group is not None
        with torch.no_grad():
            state["step"].add_(1)
            self._kernel([param], [param.grad], [state["exp_avg"]], [state["exp_avg_sq"]], [], [state["step"]],
                         amsgrad=False, lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1],
                         weight_decay=group["weight_decay"], eps=group["eps"], maximize=False, grad_scale=None,
                         found_inf=None)

    def _direct_state(self) -> dict[str, Any] | None:
        """The parameter's state where this step may call the kernel itself, else ``None``."""
        import torch
        import torch.optim.optimizer as hooks

        if self._kernel is None or self._group is None:
            return None
        grad = self._param.grad
        if grad is None or grad.dtype != self._param.dtype or isinstance(self._group["lr"], torch.Tensor):
            return None
        optimizer = self.optimizer
        if (optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
                or getattr(hooks, "_global_optimizer_pre_hooks", None) or getattr(hooks, "_global_optimizer_post_hooks", None)):
            return None
        state = optimizer.state.get(self._param)
        return state if state and "exp_avg_sq" in state else None
