"""The search: section: distributions, schedulers, and a space checked against the job it searches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

from skate.errors import SpecError
from skate.spec import JobSpec, load_spec, load_spec_data, spec_schema
from skate.search.config import ASHAConfig, PBTConfig, SearchConfig
from skate.search.paths import field_problem, with_values
from skate.search.space import Choice, Grid, Integer, LogUniform, Uniform

JOB = {
    "name": "tiny",
    "data": {"source": "digits"},
    "model": {"kind": "rnn_classifier", "num_units": 8},
    "train": {"epochs": 4},
}


def spec_with(search: dict[str, Any]) -> JobSpec:
    spec = load_spec_data({**JOB, "search": search})
    assert isinstance(spec, JobSpec)
    return spec


def problems_of(search: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec_data({**JOB, "search": search})
    return caught.value.problems


def test_every_distribution_loads_into_its_config_and_tune_domain() -> None:
    spec = spec_with({"space": {
        "train.optimizer.lr": {"type": "loguniform", "min": 1e-4, "max": 1e-2},
        "model.dropout": {"type": "uniform", "min": 0.0, "max": 0.3},
        "model.num_layers": {"type": "int", "min": 1, "max": 3},
        "model.cell": {"type": "choice", "values": ["gru", "lstm"]},
        "train.batch_size": {"type": "grid", "values": [16, 32]},
    }})
    space = spec.search.space  # type: ignore[union-attr]
    assert [type(d) for d in space.values()] == [LogUniform, Uniform, Integer, Choice, Grid]
    lr = space["train.optimizer.lr"].to_tune()
    assert (lr.lower, lr.upper) == (1e-4, 1e-2)
    layers = space["model.num_layers"].to_tune()
    assert (layers.lower, layers.upper) == (1, 4)  # randint's upper bound is exclusive; max is included
    assert space["model.cell"].to_tune().categories == ["gru", "lstm"]
    assert space["train.batch_size"].to_tune() == tune.grid_search([16, 32])


def test_defaults_are_random_search_with_fifo() -> None:
    search = spec_with({"space": {"model.num_units": {"type": "choice", "values": [8, 16]}}}).search
    assert search is not None and search.algorithm == "random" and search.num_samples == 8
    assert search.scheduler.kind == "fifo" and search.metric is None


@pytest.mark.parametrize("distribution, message", [
    ({"type": "uniform", "min": 0.5, "max": 0.1}, "min (0.5) must be less than max (0.1)"),
    ({"type": "loguniform", "min": 0.0, "max": 0.1}, "min (0) must be > 0 for a loguniform distribution"),
    ({"type": "int", "min": 3, "max": 3}, "min (3) must be less than max (3)"),
    ({"type": "choice", "values": []}, "values: give at least one value"),
    ({"type": "gaussian", "mean": 0}, "unknown distribution 'gaussian'"),
    ({"type": "unifrom", "min": 0, "max": 1}, "did you mean 'uniform'?"),
    ({"type": "uniform", "min": 0}, "max: missing required key"),
])
def test_a_bad_distribution_is_one_clear_line(distribution: dict[str, Any], message: str) -> None:
    (problem,) = problems_of({"space": {"model.dropout": distribution}})
    assert "search.space.model.dropout" in problem and message in problem, problem


def test_an_empty_space_is_refused() -> None:
    (problem,) = problems_of({"space": {}})
    assert "space: empty" in problem


@pytest.mark.parametrize("path, message", [
    ("train.optimizer.lrr", "'train.optimizer' has no 'lrr' (did you mean 'lr'?)"),
    ("modle.num_units", "the job spec has no 'modle' (did you mean 'model'?)"),
    ("train", "'train' is a section"),
    ("train.epochs.value", "'train.epochs' is a value, not a section"),
    ("search.num_samples", "'search' cannot be searched"),
])
def test_a_path_that_is_not_a_value_of_the_job_is_refused(path: str, message: str) -> None:
    (problem,) = problems_of({"space": {path: {"type": "choice", "values": [1]}}})
    assert f"search.space.{path}" in problem and message in problem, problem


def test_a_value_that_does_not_fit_the_field_is_refused() -> None:
    problems = problems_of({"space": {
        "model.num_units": {"type": "uniform", "min": 8, "max": 64},
        "model.cell": {"type": "choice", "values": ["gru", "lsmt"]},
    }})
    assert any("model.num_units" in p and "expected an integer, got 8.0" in p for p in problems), problems
    assert any("model.cell" in p and "'lsmt'" in p and "did you mean 'lstm'?" in p for p in problems), problems


def test_problems_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("name: tiny\ndata: {source: digits}\nmodel: {kind: rnn_classifier}\nsearch:\n  space:\n"
                    "    train.optimizer.lr: {type: loguniform, min: 1.0e-4, max: 1.0e-2}\n"
                    "    model.units: {type: choice, values: [8]}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}:7: search.space.model.units: not a field of the job spec"), problem


def test_grid_algorithm_needs_grid_distributions_and_optuna_none() -> None:
    with pytest.raises(ValueError, match="these are not: model.dropout"):
        SearchConfig(algorithm="grid", space={"model.dropout": Uniform(min=0.0, max=0.5)})
    with pytest.raises(ValueError, match="optuna cannot search grid"):
        SearchConfig(algorithm="optuna", space={"model.num_units": Grid(values=[8, 16])})


def test_schedulers_become_tune_schedulers() -> None:
    space = {"train.optimizer.lr": LogUniform(min=1e-4, max=1e-2)}
    asha = ASHAConfig(max_t=9, grace_period=1, reduction_factor=3).create(time_attr="epoch", space=space, seed=0)
    assert isinstance(asha, ASHAScheduler) and asha._max_t == 9 and asha._time_attr == "epoch"
    pbt = PBTConfig(perturbation_interval=2).create(time_attr="iteration", space=space, seed=0)
    assert isinstance(pbt, PopulationBasedTraining) and set(pbt._hyperparam_mutations) == {"train.optimizer.lr"}
    assert isinstance(SearchConfig(space=space).scheduler.create(time_attr="epoch", space=space, seed=0), FIFOScheduler)
    with pytest.raises(ValueError, match="grace_period"):
        ASHAConfig(max_t=2, grace_period=3)


def test_pbt_mutations_are_checked_against_the_job() -> None:
    problems = problems_of({"scheduler": {"kind": "pbt", "mutations": {"train.optimizer.lrr": {
        "type": "uniform", "min": 0.1, "max": 0.2}}}, "space": {"model.dropout": {"type": "uniform", "min": 0, "max": 0.2}}})
    assert any("search.scheduler.mutations.train.optimizer.lrr" in p and "did you mean 'lr'?" in p for p in problems)


def test_with_values_sets_dotted_paths_on_a_copy() -> None:
    data = {"model": {"kind": "rnn_classifier"}, "train": {"epochs": 3}}
    out = with_values(data, {"model.num_units": 64, "train.optimizer.lr": 0.01})
    assert out == {"model": {"kind": "rnn_classifier", "num_units": 64}, "train": {"epochs": 3, "optimizer": {"lr": 0.01}}}
    assert data == {"model": {"kind": "rnn_classifier"}, "train": {"epochs": 3}}


def test_field_problem_accepts_values_of_the_chosen_variants() -> None:
    spec = spec_with({"space": {"model.num_units": {"type": "choice", "values": [8]}}})
    assert field_problem(spec, "model.num_units") is None
    assert field_problem(spec, "train.strategy.num_cpus") is None
    assert "has no 'num_workers'" in (field_problem(spec, "train.strategy.num_workers") or "")


def test_the_schema_documents_the_search_section() -> None:
    text = str(spec_schema())
    assert "SearchConfig" in text and "loguniform" in text and "reduction_factor" in text
