"""The search driver's decisions: the metric, whether trials fit the cluster, how many run at once."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest

from skate.errors import SkateError
from skate.spec import load_spec_data
from skate.search import experiment
from skate.search.config import SearchConfig
from skate.search.experiment import (concurrency, objective_of, saved_states,
                                     search_algorithm)
from skate.search.space import Choice

SPACE = {"model.num_units": {"type": "choice", "values": [8, 16]}}
JOB: dict[str, Any] = {"name": "tiny", "data": {"source": "digits"}, "model": {"kind": "rnn_classifier"},
                       "train": {"epochs": 5}, "search": {"space": SPACE}}


def with_search(**search: Any) -> Any:
    return load_spec_data({**JOB, "search": {"space": SPACE, **search}})


def test_the_metric_defaults_to_the_jobs_validation_metric() -> None:
    assert objective_of(with_search()) == ("val/accuracy", "max")
    assert objective_of(with_search(metric="val/loss")) == ("val/loss", "min")
    assert objective_of(with_search(metric="val/loss", mode="max")) == ("val/loss", "max")
    ae = load_spec_data({**JOB, "model": {"kind": "stacked_ae"},
                         "search": {"space": {"model.tied": {"type": "choice", "values": [True, False]}}}})
    assert objective_of(ae)[1] == "min"
    rl = load_spec_data({"name": "pole", "rl": {"algorithm": "ppo", "env": "CartPole-v1"},
                         "search": {"space": {"rl.lr": {"type": "loguniform", "min": 1e-4, "max": 1e-3}}}})
    assert objective_of(rl) == ("rollout/episode_return_mean", "max")


def test_allreduce_trials_run_no_more_at_once_than_the_cluster_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(experiment.ray, "cluster_resources", lambda: {"CPU": 5.0})
    allreduce = load_spec_data({**JOB, "train": {"strategy": {"kind": "allreduce", "num_workers": 2}}})
    assert concurrency(allreduce.search, allreduce) == 2
    assert concurrency(SearchConfig(space={"x": Choice(values=[1])}, max_concurrent_trials=1), allreduce) == 1
    assert concurrency(with_search().search, with_search()) is None  # placement groups hold the others back


def test_the_random_generator_holds_the_concurrency_limit_itself() -> None:
    """Tune applies max_concurrent_trials to searchers only; the random and grid generator would run
    every trial at once."""
    from ray.tune.search import Searcher

    spec = with_search(algorithm="random", max_concurrent_trials=1)
    config = experiment._tune_config(spec.search, spec, metric="val/accuracy", mode="max", attr="epoch")
    assert not isinstance(config.search_alg, Searcher) and config.search_alg.max_concurrent == 1
    optuna = with_search(algorithm="optuna", max_concurrent_trials=1)
    assert experiment._tune_config(optuna.search, optuna, metric="val/accuracy", mode="max",
                                   attr="epoch").max_concurrent_trials == 1


def test_optuna_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray.tune.search.optuna  # noqa: F401  (imported with optuna present, as it would be)

    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    with pytest.raises(SkateError, match="search.algorithm optuna needs the optuna package: pip install optuna"):
        search_algorithm(with_search(algorithm="optuna").search, metric="val/accuracy", mode="max")


def test_saved_states_read_the_newest_experiment_state(tmp_path: Path) -> None:
    old, new = tmp_path / "experiment_state-1.json", tmp_path / "experiment_state-2.json"
    old.write_text(json.dumps({"trial_data": [[json.dumps({"trial_id": "a", "status": "PENDING"}), "{}"]]}))
    new.write_text(json.dumps({"trial_data": [[json.dumps({"trial_id": "a", "status": "RUNNING"}), "{}"],
                                              [json.dumps({"trial_id": "b", "status": "TERMINATED"}), "{}"]]}))
    os.utime(old, (1, 1))
    local = pafs.LocalFileSystem()
    assert saved_states(local, str(tmp_path)) == {"a": "RUNNING", "b": "TERMINATED"}
    assert saved_states(local, str(tmp_path / "none")) == {}
