"""A trial's job: the search's values filled in, the resources it reserves, what counts its progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skate.rl.spec import RLJobSpec
from skate.spec import JobSpec
from skate.search.config import TrialResources
from skate.runs.rundir import RunDir
from skate.search.trial import _Reporter, LONE_TRIAL_HEAD, TRIAL_HEAD, time_attr, trial_bundles, trial_resources, trial_spec

BASE: dict[str, Any] = {
    "name": "tiny",
    "data": {"source": "digits"},
    "model": {"kind": "rnn_classifier", "num_units": 8},
    "train": {"epochs": 4, "eval_every_epochs": 2},
}


def test_a_trial_runs_the_job_with_its_values_and_validates_every_epoch() -> None:
    spec = trial_spec(BASE, {"model.num_units": 32, "train.optimizer.lr": 0.01}, TrialResources())
    assert isinstance(spec, JobSpec)
    assert spec.model.num_units == 32 and spec.train.optimizer.lr == 0.01  # type: ignore[attr-defined]
    assert spec.train.eval_every_epochs == 1 and spec.train.epochs == 4


@pytest.mark.parametrize("strategy, bundles", [
    ({"kind": "single"}, [{"CPU": 1.0}]),
    ({"kind": "single", "num_gpus": 0.5}, [{"CPU": 1.0, "GPU": 0.5}]),
    ({"kind": "parameter_server", "num_workers": 3, "gpus_per_worker": 1, "cpus_per_worker": 0.5},
     [{"CPU": 0.5, "GPU": 1.0}] * 3),
    ({"kind": "parameter_server", "num_workers": 2, "num_shards": 2, "cpus_per_shard": 0.25},
     [{"CPU": 1.0}] * 2 + [{"CPU": 0.25}] * 2),
])
def test_a_trial_reserves_one_bundle_per_actor_after_its_own(strategy: dict[str, Any],
                                                             bundles: list[dict[str, float]]) -> None:
    spec = trial_spec({**BASE, "train": {"strategy": strategy}}, {}, TrialResources())
    assert TRIAL_HEAD == {} and trial_bundles(spec) == [{}, *bundles]  # the trial's own process reserves nothing


def test_an_allreduce_trial_reserves_a_sliver_ray_train_places_its_workers() -> None:
    spec = trial_spec({**BASE, "train": {"strategy": {"kind": "allreduce", "num_workers": 2}}}, {}, TrialResources())
    assert trial_bundles(spec) == [LONE_TRIAL_HEAD] and "CPU" not in LONE_TRIAL_HEAD and "GPU" not in LONE_TRIAL_HEAD


def test_resources_per_trial_replace_each_workers_own() -> None:
    single = trial_spec(BASE, {}, TrialResources(cpus=2, gpus=0.5))
    assert trial_bundles(single) == [TRIAL_HEAD, {"CPU": 2.0, "GPU": 0.5}]
    ps = trial_spec({**BASE, "train": {"strategy": {"kind": "parameter_server", "num_workers": 2}}}, {},
                    TrialResources(gpus=1))
    assert trial_bundles(ps) == [TRIAL_HEAD, {"CPU": 1.0, "GPU": 1.0}, {"CPU": 1.0, "GPU": 1.0}]


def test_an_rl_trial_reserves_what_rllib_asks_and_counts_iterations() -> None:
    rl = {"name": "pole", "rl": {"algorithm": "ppo", "env": "CartPole-v1", "num_env_runners": 2}}
    spec = trial_spec(rl, {"rl.lr": 0.001}, TrialResources(gpus=0.25))
    assert isinstance(spec, RLJobSpec) and spec.rl.lr == 0.001 and spec.rl.gpus_per_learner == 0.25
    bundles = trial_bundles(spec)
    assert len(bundles) == 3 and bundles[0].get("GPU") == 0.25  # the local learner, then two env runners
    assert all(b.get("CPU", 0) >= 1 for b in bundles[1:])
    assert time_attr(spec) == "iteration" and time_attr(trial_spec(BASE, {}, TrialResources())) == "epoch"


def test_each_trial_gets_the_placement_group_of_its_own_values() -> None:
    base = {**BASE, "train": {"strategy": {"kind": "parameter_server", "num_workers": 2}}}
    for workers in (2, 3):
        group = trial_resources({"train.strategy.num_workers": workers}, base=base, resources=TrialResources())
        assert group.bundles == [{"CPU": 1.0}] * workers and group.strategy == "PACK"


def test_the_epoch_early_stopping_ends_on_is_reported_with_the_final_metrics(monkeypatch: pytest.MonkeyPatch,
                                                                            tmp_path: Path) -> None:
    from ray import tune

    reported: list[dict[str, Any]] = []
    monkeypatch.setattr(tune, "report", lambda metrics, **_: reported.append(metrics))
    spec = trial_spec({**BASE, "train": {"epochs": 10, "early_stopping": {"patience": 2}}}, {}, TrialResources())
    reporter = _Reporter(spec, RunDir(tmp_path), metric="val/accuracy")
    reporter({"epoch": 1, "val/accuracy": 0.5, "early_stop/waited": 0.0}, None)
    reporter({"epoch": 2, "val/accuracy": 0.4, "early_stop/waited": 1.0}, None)
    reporter({"epoch": 3, "val/accuracy": 0.4, "early_stop/waited": 2.0}, None)
    assert [row["epoch"] for row in reported] == [1, 2]
    reporter.finish({"test/accuracy": 0.45})
    assert reported[-1]["epoch"] == 3 and reported[-1]["final/test/accuracy"] == 0.45
