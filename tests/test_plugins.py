"""Plugins registered in code: a spec can name them, their fields are checked, mistakes are clear."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Iterator

import pytest
import torch
from torch import nn

import skate
from skate.config.fields import param
from skate.data.base import DATA_SOURCES, DatasetInfo
from skate.engines.base import Workload
from skate.engines.optim import OptimizerConfig
from skate.errors import SkateError, SpecError
from skate.models.base import MODELS, ModelConfig
from skate.objectives import OBJECTIVES
from skate.reported import BEST_METRIC, REPORTED
from skate.plugins import PluginObjective, registered
from skate.rl.envs import SKATE_ENVS
from skate.spec import load_spec_data


def hinge(outputs: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    margin = outputs.gather(1, targets[:, None]).squeeze(1) - outputs.max(dim=1).values
    return {"loss": (1 - margin).clamp(min=0), "accuracy": (outputs.argmax(1) == targets).float()}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TinyNetConfig(ModelConfig):
    """A dense net on flattened inputs."""

    kind: str = "tiny_net"
    objective: ClassVar[str] = "test_hinge"
    width: int = param(8, doc="hidden units", gt=0)

    def build(self, info: DatasetInfo) -> nn.Module:
        assert info.num_classes is not None
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(self.width), nn.ReLU(), nn.Linear(self.width, info.num_classes))


@pytest.fixture
def plugins() -> Iterator[None]:
    """Registers the test's objective and model, and takes them out again."""
    skate.register_objective("test_hinge", PluginObjective(hinge, best_metric="val/accuracy", best_mode="max"))
    skate.register_model(TinyNetConfig)
    try:
        yield
    finally:
        MODELS._classes.pop("tiny_net", None)
        OBJECTIVES.pop("test_hinge", None)
        BEST_METRIC.pop("test_hinge", None)
        REPORTED.pop("test_hinge", None)


JOB = {"name": "plugged", "data": {"source": "digits"}, "model": {"kind": "tiny_net", "width": 16}}


def test_a_registered_model_is_named_by_a_spec_and_its_fields_are_checked(plugins: None) -> None:
    spec = load_spec_data(JOB)
    assert isinstance(spec.model, TinyNetConfig) and spec.model.width == 16  # type: ignore[union-attr]
    with pytest.raises(SpecError) as caught:
        load_spec_data({**JOB, "model": {"kind": "tiny_net", "widht": 16}})
    assert "model.widht: unknown key (did you mean 'width'?); expected one of: kind, init, width" in caught.value.problems[0]
    with pytest.raises(SpecError, match="model.width: expected an integer > 0, got 0"):
        load_spec_data({**JOB, "model": {"kind": "tiny_net", "width": 0}})


def test_an_unregistered_kind_gets_a_did_you_mean_listing_the_registered_ones(plugins: None) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_data({**JOB, "model": {"kind": "tiny_nett"}})
    (problem,) = caught.value.problems
    assert "unknown model 'tiny_nett' (did you mean 'tiny_net'?); known: " in problem
    assert "rnn_classifier" in problem and "tiny_net" in problem


def test_the_models_objective_travels_with_the_workload(plugins: None) -> None:
    workload = Workload(model=TinyNetConfig(), optimizer=OptimizerConfig(), batch_size=4, seed=0, tables={})
    assert workload.objective is hinge
    values = workload.objective(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.zeros(2), torch.tensor([0, 0]))
    assert values["loss"].tolist() == [1.0, 2.0] and values["accuracy"].tolist() == [1.0, 0.0]
    assert BEST_METRIC["test_hinge"] == ("val/accuracy", "max")


def test_skate_plugins_lists_each_registration_and_its_origin(plugins: None) -> None:
    found = {(r.family, r.name): r.origin for r in registered()}
    assert found[("model", "tiny_net")] == f"{__name__} (registered in code)"
    assert found[("objective", "test_hinge")] == f"{__name__} (registered in code)"
    assert found[("model", "rnn_classifier")] == "skate" and found[("data source", "digits")] == "skate"


def test_an_environment_factory_is_registered_by_name() -> None:
    skate.register_env("test_pole", lambda config: None)
    try:
        assert ("environment", "test_pole") in {(r.family, r.name) for r in registered()}
        with pytest.raises(SkateError, match="environment 'mspacman' is already registered by skate"):
            skate.register_env("mspacman", lambda config: None)
    finally:
        SKATE_ENVS.pop("test_pole")


def test_bad_registrations_are_clear_errors(plugins: None) -> None:
    with pytest.raises(SkateError, match="must be a dataclass subclassing ModelConfig"):
        skate.register_model(nn.Linear)  # type: ignore[arg-type]

    class NotADataclass(ModelConfig):
        kind = "not_a_dataclass"

    with pytest.raises(SkateError, match="must be a dataclass subclassing ModelConfig"):
        skate.register_model(NotADataclass)

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Clash(ModelConfig):
        kind: str = "rnn_classifier"

    with pytest.raises(SkateError, match="model 'rnn_classifier' is already registered by skate"):
        skate.register_model(Clash)

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class NoObjective(ModelConfig):
        kind: str = "no_objective"
        objective: ClassVar[str] = "nowhere"

    with pytest.raises(SkateError, match="unknown objective 'nowhere'"):
        skate.register_model(NoObjective)
    assert "not_a_dataclass" not in MODELS and "no_objective" not in MODELS and "digits" in DATA_SOURCES
