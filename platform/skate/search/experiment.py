"""``skate tune``: a search over a job with Ray Tune, in an experiment directory.

``runs/tune-<name>-<timestamp>/`` holds ``spec.yaml`` (the job and its search), ``experiment.json``
(status, metric, best trial), ``trials/<trial id>/`` (each trial's run directory), ``tune/`` (Ray
Tune's own state, which ``--resume`` restores once its signature checks out: see
:mod:`skate.search.signed_state`), and at the end ``trials.parquet``, ``best.yaml`` and
``trials.png``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import posixpath
import re
import time
import warnings
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import ray

from skate.capacity import room_for
from skate.errors import SkateError
from skate.reported import BEST_METRIC
from skate.spec.gate import admit
from skate.rl.spec import RLJobSpec
from skate.runs.atomic import write_text_atomic
from skate.runs.mirror import RunMirror, mirrored
from skate.runs.ray_log import keep_in
from skate.runs.remote import download, resumable_copy, resumed_mirror
from skate.runs.rundir import DEFAULT_ROOT, RunDir, now_iso
from skate.spec import JobSpec, dump_spec, load_spec
from skate.uri import is_uri, join, open_location
from skate.search.paths import explicit_data
from skate.search.signed_state import TUNER_STATE, StateSigner, check_state
from skate.search.tune_state import trial_states
from skate.search.config import SearchConfig
from skate.search.results import (BEST_SPEC, PLOT, TRIALS_TABLE, TrialRecord, best_record, trial_record,
                                write_best_spec, write_trials_plot, write_trials_table)
from skate.search.trial import TRIALS, run_trial, time_attr, trial_bundles, trial_resources, trial_spec

STATE = "experiment.json"
TUNE_DIR = "tune"


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """How a search ended.

    Attributes:
        path: the experiment directory.
        status: ``completed`` or ``interrupted``.
        trials: every trial's record, as in ``trials.parquet``.
        best: the best trial, if any trial reported the metric.
        best_spec: ``best.yaml``, runnable by ``skate run``, if there is a best trial.
    """

    path: Path
    status: str
    trials: list[TrialRecord]
    best: TrialRecord | None
    best_spec: Path | None


def objective_of(spec: JobSpec | RLJobSpec) -> tuple[str, str]:
    """The metric ranking trials and its mode: the search's, else the job's validation metric (RL: the
    mean episode return)."""
    search = spec.search
    assert search is not None
    if isinstance(spec, RLJobSpec):
        default_metric, default_mode = "rollout/episode_return_mean", "max"
    else:
        default_metric, default_mode = BEST_METRIC[type(spec.model).objective]
    metric = search.metric or default_metric
    if search.mode is not None:
        return metric, search.mode
    if metric == default_metric:
        return metric, default_mode
    return metric, "min" if metric.endswith("loss") else "max"


def run_search(spec: JobSpec | RLJobSpec, *, root: str | Path = DEFAULT_ROOT, progress: bool = True,
               source: str = "", name: str | None = None, storage: str | None = None) -> SearchResult:
    """Search ``spec.search`` over ``spec`` in a new experiment directory under ``root``, named
    ``name`` (default: ``tune-``, the job's name and the time). Ray must be initialised (see
    :func:`skate.cluster.ray_session`).

    ``storage``: a local folder to hold the experiment directory instead of ``root``, or a URI
    (``s3://bucket/skate``) it is copied to as it grows, its trials' run directories included.

    Raises:
        SkateError: when the job has no search, or its trials cannot be placed on the cluster.
    """
    check_search(spec)
    if storage is not None and not is_uri(storage):
        root, storage = storage, None
    run = RunDir.create(root, name or f"tune-{spec.name}", dump_spec(spec), exact=name is not None)
    _save_state(run.path, {"name": spec.name, "status": "running", "started_at": now_iso(), "source": source})
    if storage is None:
        return _search(spec, run.path, restore=False, progress=progress)
    with mirrored(RunMirror(run.path, join(storage, run.name), skip=(TRIALS,))) as mirror:
        return _search(spec, run.path, restore=False, progress=progress, storage=mirror.location)


def resume_search(path: str | Path, *, progress: bool = True) -> SearchResult:
    """Continue an interrupted search: finished trials are kept, unfinished ones continue from their last
    checkpoint, and the search algorithm's state is restored. A URI is downloaded first (see
    :mod:`skate.runs.remote`), and the search goes on mirroring to it."""
    if is_uri(path):
        local = resumable_copy(path, leave=(TUNE_DIR, TRIALS))  # read in storage, by Tune and by the trials
        with mirrored(resumed_mirror(local, str(path).rstrip("/"), skip=(TRIALS,))) as mirror:
            return _resume_search(local, progress=progress, storage=mirror.location)
    return _resume_search(Path(path), progress=progress)


def _resume_search(path: Path, *, progress: bool, storage: str | None = None) -> SearchResult:
    state = _read_state(path)
    if state.get("status") == "completed":
        raise SkateError(f"{path}: the search already completed; its best job is {path / BEST_SPEC}")
    filesystem, tune_dir = _tune_location(path, storage)
    if filesystem.get_file_info(posixpath.join(tune_dir, TUNER_STATE)).type != pafs.FileType.File:
        raise SkateError(f"{storage or path}: no Ray Tune state to resume ({TUNE_DIR}/{TUNER_STATE} is missing): "
                         f"the search never started")
    check_state(filesystem, tune_dir)
    spec = load_spec(RunDir.open(path).spec_path)
    _save_state(path, {**state, "status": "running"})
    return _search(spec, path, restore=True, progress=progress, storage=storage)


def _search(spec: JobSpec | RLJobSpec, path: Path, *, restore: bool, progress: bool,
            storage: str | None = None) -> SearchResult:
    """The search in ``path``; with ``storage`` (the experiment's URI) each trial mirrors its run
    directory to ``<storage>/trials/<trial>`` from whichever node it runs on, and they are brought
    back here before the trials' table is made. Ray's messages go to its ``ray.log`` when the CLI keeps
    them off the terminal (:mod:`skate.runs.ray_log`)."""
    keep_in(path)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own console output: off, with verbose=0
    warnings.filterwarnings("ignore", message="Consider boosting PBT performance")  # class trainables only
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")  # save the search's state often: a killed driver
    # then reruns no trial that finished more than 2 s before
    from ray import tune

    search = spec.search
    assert search is not None
    metric, mode = objective_of(spec)
    base, first = _base_and_first(spec)
    bundles = trial_bundles(first)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, base=base, experiment=str(path.resolve()), resources=search.resources_per_trial,
                             metric=metric, storage=storage),
        functools.partial(trial_resources, base=base, resources=search.resources_per_trial))
    attr = time_attr(first)
    LiveTable.shown = progress
    table = LiveTable(paths=list(search.space), metric=metric, mode=mode, time_attr=attr)
    started = time.monotonic()
    # The room for one trial before Tune starts any (a trial Tune cannot place waits without a word);
    # the autoscaler's request for it stands while the search runs.
    try:
        with room_for([one for one in bundles if one], what="search: a trial") as room:
            room.remove()
            grid = _fit(trainable, spec, _tune_location(path, storage), restore=restore, first=first, metric=metric,
                        mode=mode, attr=attr, table=table)
    except KeyboardInterrupt:
        _save_state(path, {**_read_state(path), "status": "interrupted", "ended_at": now_iso()})
        raise
    if storage is not None:  # the trials wrote their run directories there, from the nodes they ran on
        download(join(storage, TRIALS), path / TRIALS)
    records = _records(grid, path, metric=metric, mode=mode, attr=attr, tune_at=_tune_location(path, storage))
    interrupted = any(r.state in ("pending", "interrupted") for r in records)
    best = best_record(records, mode)
    write_trials_table(records, path / TRIALS_TABLE, metric=metric)
    write_trials_plot(records, path / PLOT, metric=metric, time_attr=attr)
    state = _read_state(path)
    best_spec = None
    if best is not None:
        best_spec = path / BEST_SPEC
        write_best_spec(best, best_spec, metric=metric, source=state.get("source") or spec.name)
    status = "interrupted" if interrupted else "completed"
    _save_state(path, {**state, "status": status, "ended_at": now_iso(), "metric": metric, "mode": mode,
                       "trials": len(records), "duration_s": state.get("duration_s", 0.0) + time.monotonic() - started,
                       "best": None if best is None else {"trial": best.trial, "value": best.best, "final": best.final}})
    return SearchResult(path, status, records, best, best_spec)


def _tune_location(path: Path, storage: str | None) -> tuple[pafs.FileSystem, str]:
    """Where Tune keeps the search's state and the trials' Tune checkpoints: ``<experiment>/tune``, in
    storage when the search has some (then every node reaches it: Ray refuses a trial's checkpoint
    on a node that cannot see the folder)."""
    filesystem, root = open_location(storage if storage is not None else path)
    return filesystem, posixpath.join(root, TUNE_DIR)


def _fit(trainable: Any, spec: JobSpec | RLJobSpec, tune_at: tuple[pafs.FileSystem, str], *, restore: bool,
         first: JobSpec | RLJobSpec, metric: str, mode: str, attr: str, table: Any) -> Any:
    """Tune's run of the search: a new one, or the one saved at ``tune_at`` continued."""
    from ray import tune

    search = spec.search
    assert search is not None
    filesystem, tune_dir = tune_at
    if restore:
        tuner = tune.Tuner.restore(tune_dir, trainable=trainable, resume_unfinished=True, resume_errored=True,
                                   storage_filesystem=filesystem)
    else:
        tuner = tune.Tuner(trainable, param_space={p: d.to_tune() for p, d in search.space.items()},
                           tune_config=_tune_config(search, first, metric=metric, mode=mode, attr=attr),
                           run_config=tune.RunConfig(name=TUNE_DIR, storage_path=posixpath.dirname(tune_dir),
                                                     storage_filesystem=filesystem, verbose=0,
                                                     callbacks=[table, StateSigner()],
                                                     checkpoint_config=tune.CheckpointConfig(num_to_keep=4)))
    return tuner.fit()


def summary_lines(result: SearchResult) -> list[str]:
    """What ``skate tune`` prints at the end: the counts, the best trial and where everything is."""
    counts: dict[str, int] = {}
    for record in result.trials:
        counts[record.state] = counts.get(record.state, 0) + 1
    lines = [f"search {result.status}: {len(result.trials)} trials (" + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")"]
    for record in result.trials:
        if record.error:
            lines.append(f"  trial {record.trial} failed: {record.error}")
    if result.best is not None:
        values = ", ".join(f"{p} = {v!r}" for p, v in result.best.values.items())
        lines.append(f"best trial {result.best.trial}: {result.best.best:.4g} ({values})")
        test = {k: v for k, v in result.best.final.items() if k.startswith("test/")}
        if test:
            lines.append("  test: " + ", ".join(f"{k} = {v:.4g}" for k, v in sorted(test.items())))
        lines.append(f"best job: {result.best_spec}  (skate run {result.best_spec})")
    lines.append(f"experiment directory: {result.path}")
    if result.status != "completed":
        lines.append(f"continue with: skate tune --resume {result.path}")
    return lines


def _tune_config(search: SearchConfig, first: JobSpec | RLJobSpec, *, metric: str, mode: str, attr: str) -> Any:
    from ray import tune

    limit = concurrency(search, first)
    algorithm = search_algorithm(search, metric=metric, mode=mode, max_concurrent=limit)
    return tune.TuneConfig(
        metric=metric, mode=mode, num_samples=search.num_samples,
        max_concurrent_trials=limit if isinstance(algorithm, tune.search.Searcher) else None, search_alg=algorithm,
        scheduler=search.scheduler.create(time_attr=attr, space=search.space, seed=search.seed),
        trial_name_creator=_trial_name, trial_dirname_creator=_trial_name)


def _trial_name(trial: Any) -> str:
    return str(trial.trial_id)


def search_algorithm(search: SearchConfig, *, metric: str, mode: str, max_concurrent: int | None = None) -> Any:
    """Ray Tune's search algorithm for ``search.algorithm``, seeded. ``max_concurrent`` goes to the
    random and grid generator itself: Tune applies ``max_concurrent_trials`` to searchers only, and
    ignores it (with a log line) for that generator."""
    if search.algorithm == "optuna":
        try:
            from ray.tune.search.optuna import OptunaSearch
            import optuna  # noqa: F401  (OptunaSearch only fails later without it)
        except ImportError:
            raise SkateError("search.algorithm optuna needs the optuna package: pip install optuna") from None
        return OptunaSearch(metric=metric, mode=mode, seed=search.seed)
    from skate.search.variants import LimitedVariantGenerator

    return LimitedVariantGenerator(random_state=search.seed, max_concurrent=max_concurrent or 0)


def concurrency(search: SearchConfig, spec: JobSpec | RLJobSpec) -> int | None:
    """How many trials may run at once: the search's limit and, for an engine that places its workers in a
    placement group of its own (allreduce), what the cluster holds of those, so trials queue in Tune
    rather than half-start."""
    limit = search.max_concurrent_trials
    if isinstance(spec, RLJobSpec) or not spec.train.strategy.own_placement_group:
        return limit
    demand = spec.train.strategy.resources()
    have = ray.cluster_resources()
    fits = min(math.floor(have.get(name, 0.0) / amount + 1e-9) for name, amount in demand.items() if amount > 0)
    return max(1, min(fits, limit or fits))


def check_search(spec: JobSpec | RLJobSpec) -> None:
    """Refuse a job without a search, and one the gate refuses (a spec made in code rather than
    loaded through :func:`skate.spec.load_spec`, which gates it).

    Raises:
        SkateError: naming what to change.
    """
    if spec.search is None:
        raise SkateError(f"job '{spec.name}' has no search: section; add one (see 'skate schema') to tune it")
    admit(spec)


def _base_and_first(spec: JobSpec | RLJobSpec) -> tuple[dict[str, Any], JobSpec | RLJobSpec]:
    """The job every trial starts from (its data spelled out), and the first trial's spec."""
    search = spec.search
    assert search is not None
    base = explicit_data(dataclasses.replace(spec, search=None))
    return base, trial_spec(base, {}, search.resources_per_trial)


def _records(grid: Any, path: Path, *, metric: str, mode: str, attr: str,
             tune_at: tuple[pafs.FileSystem, str]) -> list[TrialRecord]:
    """Every trial's record, its state as the search's saved state has it: after Ctrl-C, Tune ends the
    trials in flight but saves them as unfinished, for ``--resume``."""
    saved = saved_states(*tune_at)
    records = []
    for trial in grid._experiment_analysis.trials:  # ResultGrid offers no trial states of its own
        error = None
        if trial.status == "ERROR":
            error = _one_line(trial.error_file)
        records.append(trial_record(RunDir(path / TRIALS / trial.trial_id), trial=trial.trial_id,
                                    tune_state=saved.get(trial.trial_id, trial.status), values=dict(trial.config),
                                    metric=metric, mode=mode, time_attr=attr, error=error))
    return sorted(records, key=lambda r: r.trial)


def saved_states(filesystem: pafs.FileSystem, tune_dir: str) -> dict[str, str]:
    """Each trial's status in the newest experiment state Tune saved (``TERMINATED``, ``RUNNING``...)."""
    infos = filesystem.get_file_info(pafs.FileSelector(tune_dir, allow_not_found=True))
    found = sorted((info for info in infos if re.fullmatch(r"experiment_state-.*\.json", info.base_name)),
                   key=lambda info: info.mtime_ns or 0)
    if not found:
        return {}
    with filesystem.open_input_stream(found[-1].path) as stream:
        return trial_states(stream.read().decode())


def _one_line(error_file: str | None) -> str:
    """The last line of a trial's error (its exception), from the file Tune wrote it to."""
    try:
        lines = Path(error_file).read_text().strip().splitlines() if error_file else []
    except OSError:
        lines = []
    return lines[-1] if lines else "the trial failed (no error file)"


def _save_state(path: Path, state: dict[str, Any]) -> None:
    write_text_atomic(path / STATE, json.dumps(state, indent=2, default=str))


def _read_state(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / STATE).read_text())
    except FileNotFoundError:
        raise SkateError(f"{path}: not a skate search directory (no {STATE})") from None


from skate.search.display import LiveTable  # noqa: E402  (imports Ray Tune; kept after the light imports)
