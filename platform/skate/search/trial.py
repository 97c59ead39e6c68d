"""One trial of a search: the job with the trial's values, run by skate in its own run directory
(``<experiment>/trials/<trial id>/``), reporting each epoch (RL: iteration) and checkpoint to Ray Tune.
A search with storage (a URI) shares no disk with its trials: each works in a folder of its own
node (:func:`scratch`) and mirrors it to ``<storage>/trials/<trial id>``.

A trial's placement group holds one bundle per actor of its job (see :func:`trial_resources`), so
trials never wait on each other's half-placed actors; the job's actors land in it by themselves
because Tune makes a trial's child actors part of its placement group.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from skate.errors import SkateError
from skate.rl.config import new_stack_notice_off
from skate.rl.spec import RLJobSpec
from skate.runs.atomic import write_text_atomic
from skate.runs.checkpoint import BEST, MANIFEST, Checkpointer
from skate.runs.mirror import RunMirror
from skate.runs.remote import cache_root, download, resumed_mirror
from skate.runs.rundir import RunDir, now_iso
from skate.spec import JobSpec, dump_spec, load_spec_data
from skate.search.config import TrialResources
from skate.search.paths import with_values
from skate.uri import join

TRIALS = "trials"
"""The experiment's folder of trial run directories."""

TRIAL_HEAD: dict[str, float] = {}
"""What a trial's own process reserves: nothing, it only drives the job's actors (it still sits in
the trial's placement group). Two 1-CPU trials then fit on 2 CPUs."""

LONE_TRIAL_HEAD = {"memory": 1.0}
"""The reservation of a trial whose job reserves no bundle of its own (allreduce: Ray Train places
its workers): Tune needs one bundle. A byte of memory, not a sliver of CPU: a sliver would leave
1.99 of 2 CPUs, where neither Ray Train's workers nor another trial's 1-CPU workers then fit."""


def trial_spec(base: dict[str, Any], values: dict[str, Any], resources: TrialResources) -> JobSpec | RLJobSpec:
    """The job a trial runs: ``base`` (spec data without ``search``) with the trial's ``values``;
    a supervised trial validates every epoch, so the scheduler can compare trials at any epoch. Not
    gated again: the search's spec was, and its space's values were checked against the job."""
    spec = load_spec_data(with_values(base, values), gate=False)
    if isinstance(spec, RLJobSpec):
        if resources.gpus is not None:
            spec = dataclasses.replace(spec, rl=dataclasses.replace(spec.rl, gpus_per_learner=resources.gpus))
        return spec
    strategy = spec.train.strategy.with_worker_resources(resources.cpus, resources.gpus)
    return dataclasses.replace(spec, train=dataclasses.replace(spec.train, strategy=strategy, eval_every_epochs=1))


def trial_bundles(spec: JobSpec | RLJobSpec) -> list[dict[str, float]]:
    """The placement group a trial of ``spec`` needs: its own process first, then one bundle per actor
    of the job (for RL, what RLlib asks for its learners and env runners)."""
    if isinstance(spec, RLJobSpec):
        if spec.rl.tabular:  # the trial's own process runs the algorithm: one CPU
            return [{"CPU": 1.0}]
        with new_stack_notice_off():
            config = spec.rl.algorithm_config(seed=spec.seed)
            request = config.algo_class.default_resource_request(config)
        return [dict(b) for b in request.bundles] if request.bundles else [dict(LONE_TRIAL_HEAD)]
    strategy = spec.train.strategy
    workers = [] if strategy.own_placement_group else strategy.bundles()
    return [dict(TRIAL_HEAD), *workers] if workers else [dict(LONE_TRIAL_HEAD)]


def trial_resources(config: dict[str, Any], *, base: dict[str, Any], resources: TrialResources) -> Any:
    """The placement group of the trial with the values ``config`` (Tune asks for each trial: a search
    over a strategy's sizes gives each trial its own)."""
    from ray import tune

    return tune.PlacementGroupFactory(trial_bundles(trial_spec(base, config, resources)), strategy="PACK")


def time_attr(spec: JobSpec | RLJobSpec) -> str:
    """The result field that counts a trial's progress: ``epoch``, or ``iteration`` for RL."""
    return "iteration" if isinstance(spec, RLJobSpec) else "epoch"


def run_trial(config: dict[str, Any], *, base: dict[str, Any], experiment: str, resources: TrialResources,
              metric: str, storage: str | None = None) -> None:
    """Ray Tune's function trainable: run the job with the values in ``config``, reporting ``metric``
    (the one ranking trials) in every result; with ``storage`` (the experiment's URI), its run
    directory is copied to ``<storage>/trials/<trial>`` after every row and at the end.

    A trial restored by Tune (PBT taking another trial's weights, or a resumed search) continues
    from the checkpoint Tune hands it, in the same run directory.
    """
    from ray import tune

    spec = trial_spec(base, config, resources)
    checkpoint = tune.get_checkpoint()
    trial = tune.get_context().get_trial_id()
    path = Path(experiment) / TRIALS / trial if storage is None else scratch(Path(experiment).name, trial)
    mirror = None
    if storage is not None and checkpoint is not None:
        # Its copy in storage is the whole trial: it may have run on other nodes since it was here.
        download(join(storage, TRIALS, trial), path)
        mirror = resumed_mirror(path, join(storage, TRIALS, trial))
    elif storage is not None:
        mirror = RunMirror(path, join(storage, TRIALS, trial))
        mirror.clear()  # a fresh start: what an earlier attempt left there goes, as it goes here
    run = _trial_run(path, spec, fresh=checkpoint is None)
    try:
        _run_trial(spec, run, config, checkpoint=checkpoint, metric=metric, mirror=mirror)
    finally:
        if mirror is not None:
            mirror.sync()


def scratch(experiment: str, trial: str) -> Path:
    """Where a trial of a search with storage keeps its run directory on the node it runs on:
    ``<cache>/trials/<experiment>/<trial>`` (the cache is ``$SKATE_CACHE`` of the node's Ray, default
    ``~/.cache/skate``), never the driver's folder, which another node does not have."""
    return cache_root() / TRIALS / experiment / trial


def _run_trial(spec: JobSpec | RLJobSpec, run: RunDir, config: dict[str, Any], *, checkpoint: Any, metric: str,
               mirror: RunMirror | None) -> None:
    carried: dict[str, Any] = {}
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            carried = _install(Path(folder), run, spec)
        summary = run.read_summary()
        run.update_summary(restores=[*summary.get("restores", []), {"at": now_iso(), "values": config}])
    run.update_summary(placement=placement())
    from skate.runner import execute

    reporter = _Reporter(spec, run, metric=metric, last=carried.get(metric))

    def observe(row: dict[str, Any], saved: str | None) -> None:
        if mirror is not None:  # before the report, at which Tune may stop the trial
            mirror.sync()
        reporter(row, saved)

    try:
        result = execute(spec, run, resume=checkpoint is not None, progress=False, observer=observe)
    except SystemExit:  # how Tune ends a trial its scheduler stops (or pauses, for PBT)
        run.update_summary(status="stopped", error=None, ended_at=now_iso())
        raise
    reporter.finish(result.metrics)


def _trial_run(path: Path, spec: JobSpec | RLJobSpec, *, fresh: bool) -> RunDir:
    """The trial's run directory, made on its first start and reused (with the new values) after; a
    ``fresh`` start (no checkpoint to continue from) drops what an earlier attempt left."""
    path.mkdir(parents=True, exist_ok=True)
    run = RunDir(path)
    if fresh:
        run.metrics_path.unlink(missing_ok=True)
        shutil.rmtree(run.checkpoint_dir, ignore_errors=True)
    write_text_atomic(run.spec_path, dump_spec(spec))
    return run


class _Reporter:
    """Reports each recorded row to Tune, with the checkpoint written at it as a Tune checkpoint.

    A supervised job's last epoch (the last of ``train.epochs``, or the one early stopping ends on) is
    held back and reported with the job's final (test) metrics: a scheduler whose ``max_t`` is that
    epoch stops the trial at its report, before the test would run.
    A row without ``metric`` (an RL iteration that finished no episode) carries its last value, which
    Tune requires of every result.
    """

    def __init__(self, spec: JobSpec | RLJobSpec, run: RunDir, *, metric: str, last: float | None = None) -> None:
        self.spec, self.run, self.metric, self.last = spec, run, metric, last
        self._held: tuple[dict[str, Any], str | None] | None = None

    def __call__(self, row: dict[str, Any], saved: str | None) -> None:
        if isinstance(self.spec, JobSpec) and (row.get("epoch") == self.spec.train.epochs or self._stops_early(row)):
            self._held = (row, saved)
            return
        self._report(row, saved)

    def _stops_early(self, row: dict[str, Any]) -> bool:
        early = self.spec.train.early_stopping if isinstance(self.spec, JobSpec) else None
        return early is not None and row.get("early_stop/waited", 0) >= early.patience

    def finish(self, final: dict[str, float]) -> None:
        """Report the held last epoch, with the job's final metrics."""
        if self._held is not None:
            row, saved = self._held
            self._report({**row, **{f"final/{k}": v for k, v in final.items()}}, saved)

    def _report(self, row: dict[str, Any], saved: str | None) -> None:
        from ray import tune

        metrics = {k: v for k, v in row.items() if isinstance(v, (int, float))}
        if self.metric in metrics:
            self.last = metrics[self.metric]
        elif isinstance(self.spec, JobSpec):  # validated every epoch: the metric is missing for good
            known = ", ".join(sorted(k for k in metrics if "/" in k))
            raise SkateError(f"search.metric '{self.metric}' is not a metric of this job; it reports: {known}")
        else:
            metrics[self.metric] = math.nan if self.last is None else self.last
        if saved is None:
            tune.report(metrics)
            return
        if isinstance(self.spec, RLJobSpec):
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(saved))
            return
        folder = Path(tempfile.mkdtemp(prefix="skate-trial-"))
        try:
            checkpointer = Checkpointer(self.run.checkpoint_location(self.spec.checkpoint.location))
            for name in (Path(saved).name, BEST):
                if checkpointer.folder.exists(name):
                    (folder / name).write_bytes(checkpointer.folder.read_bytes(name))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _install(folder: Path, run: RunDir, spec: JobSpec | RLJobSpec) -> dict[str, Any]:
    """Make the checkpoint Tune handed over the run's latest, in place of the run's own; returns the
    metrics recorded with it (RL), if any."""
    if isinstance(spec, RLJobSpec):
        from skate.rl.checkpoints import Checkpoints

        checkpoints = Checkpoints(run.checkpoint_dir, keep_last=spec.checkpoint.keep_last)
        for old in checkpoints.all():
            shutil.rmtree(old, ignore_errors=True)
        row = Checkpoints.progress(folder)
        shutil.copytree(folder, run.checkpoint_dir / f"iter-{int(row['iteration']):06d}")
        return row
    checkpointer = Checkpointer(run.checkpoint_location(spec.checkpoint.location))
    for old in checkpointer.resumable():
        checkpointer.delete(old)
    for file in folder.iterdir():
        if file.name != MANIFEST:
            checkpointer.put(file.name, file.read_bytes())
    return {}


def placement() -> list[dict[str, Any]]:
    """Where this trial's placement group put each bundle: the node, the resources and, for a bundle
    with GPUs, the GPU ids Ray assigned it (found by a probe task in the bundle)."""
    import ray
    from ray.util import get_current_placement_group, placement_group_table

    from skate.search.gpus import gpu_ids
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = get_current_placement_group()
    if group is None:
        return []
    table = placement_group_table(group)
    found = []
    for index, bundle in table["bundles"].items():
        entry: dict[str, Any] = {"bundle": int(index), "node": table["bundles_to_node_id"].get(index),
                                 "resources": dict(bundle)}
        if bundle.get("GPU"):
            strategy = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=int(index))
            probe = ray.remote(num_cpus=0, num_gpus=bundle["GPU"])(gpu_ids).options(scheduling_strategy=strategy)
            entry["gpu_ids"] = ray.get(probe.remote())
        found.append(entry)
    return found

