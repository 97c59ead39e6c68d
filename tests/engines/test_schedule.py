"""Learning-rate schedules: the rates of every step, as torch's own schedulers give them."""

from __future__ import annotations

import pytest
import torch

from skate.engines.optim import OptimizerConfig
from skate.engines.schedule import ConstantSchedule, CosineSchedule, ExponentialSchedule, StepSchedule
from skate.errors import SpecError
from skate.spec import load_spec_data


def torch_rates(scheduler_of, steps: int, lr: float = 0.1) -> list[float]:
    """The rate of each of ``steps`` steps under a torch scheduler stepped once per step."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = scheduler_of(optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def rates(schedule, steps: int, lr: float = 0.1) -> list[float]:
    return [schedule.rate(lr, step, steps) for step in range(steps)]


def test_cosine_gives_torchs_cosine_annealing_rates() -> None:
    expected = torch_rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=50, eta_min=0.001), 50)
    assert rates(CosineSchedule(min_lr=0.001), 50) == pytest.approx(expected, rel=1e-6)
    assert rates(CosineSchedule(), 50)[25] == pytest.approx(0.05)


def test_step_gives_torchs_step_lr_rates() -> None:
    expected = torch_rates(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5), 30)
    assert rates(StepSchedule(every_steps=7, gamma=0.5), 30) == pytest.approx(expected)


def test_exponential_shrinks_by_decay_rate_every_decay_steps() -> None:
    schedule = ExponentialSchedule(decay_rate=0.1, decay_steps=20)
    assert schedule.rate(0.1, 0, 100) == pytest.approx(0.1)
    assert schedule.rate(0.1, 20, 100) == pytest.approx(0.01)
    assert schedule.rate(0.1, 10, 100) == pytest.approx(0.1 * 0.1 ** 0.5)


def test_warm_up_climbs_linearly_then_the_schedule_runs_over_the_rest() -> None:
    schedule = CosineSchedule(warmup_steps=4)
    assert rates(schedule, 4 + 10)[:5] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])
    assert schedule.rate(0.1, 4 + 5, 14) == pytest.approx(0.05)
    assert ConstantSchedule(warmup_steps=2).rate(0.1, 0, 10) == pytest.approx(0.05)


def test_set_rate_gives_every_param_group_the_scaled_rate() -> None:
    config = OptimizerConfig(name="sgd", lr=0.2, schedule=CosineSchedule())
    optimizer = config.build([torch.nn.Parameter(torch.zeros(1))])
    assert config.set_rate(optimizer, 5, 10, scale=0.5) == pytest.approx(0.05)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_the_schedule_is_set_in_the_optimizer_section() -> None:
    base = {"name": "x", "data": {"source": "digits"}, "model": {"kind": "rnn_classifier"}}
    spec = load_spec_data({**base, "train": {"optimizer": {"lr": 0.01, "schedule": {"kind": "cosine", "warmup_steps": 10}}}})
    assert spec.train.optimizer.schedule == CosineSchedule(warmup_steps=10)
    assert load_spec_data(base).train.optimizer.schedule == ConstantSchedule()
    with pytest.raises(SpecError, match="every_steps"):
        load_spec_data({**base, "train": {"optimizer": {"schedule": {"kind": "step"}}}})
    with pytest.raises(SpecError, match="cosine"):
        load_spec_data({**base, "train": {"optimizer": {"schedule": {"kind": "cosin"}}}})
