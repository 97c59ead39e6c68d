"""skate from Python: the objects and steps the CLI uses, for scripts and notebooks.

    import skate

    spec = skate.load_spec("jobs/digits_rnn.yaml", overrides=["train.epochs=5"])
    result = skate.run(spec)                      # an embedded local Ray, started and stopped
    print(result.run_dir, result.metrics["test/accuracy"], result.best_checkpoint)

    search = skate.tune("jobs/tune_digits_rnn.yaml", overrides=["search.num_samples=4"])
    print(search.best.values, search.best_spec)   # best.yaml: run it with skate.run
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from skate.rl.spec import RLJobSpec
    from skate.runner import RunResult
    from skate.spec import JobSpec
    from skate.search.experiment import SearchResult

SpecLike = Union["JobSpec", "RLJobSpec", str, Path]
"""A job spec, or the path of its YAML file."""


def load_spec(path: str | Path, overrides: list[str] | None = None) -> "JobSpec | RLJobSpec":
    """Load and check a job spec file, with optional ``dotted.key=value`` overrides as ``--set`` takes.

    Raises:
        SpecError: naming the file, line and dotted key of every problem.
    """
    from skate.spec import load_spec as load

    return load(path, overrides)


def _spec(spec: SpecLike, overrides: list[str] | None) -> "JobSpec | RLJobSpec":
    if isinstance(spec, (str, Path)):
        return load_spec(spec, overrides)
    if overrides:
        raise ValueError("overrides apply to a spec file; change a loaded spec with dataclasses.replace")
    return spec


def run(spec: SpecLike, *, overrides: list[str] | None = None, root: str | Path = "runs",
        address: str | None = None, progress: bool = True, storage: str | None = None) -> "RunResult":
    """Train a job (supervised or RL) in a new run directory under ``root``, as ``skate run`` does.

    Args:
        spec: a loaded spec, or the path of a spec file (then ``overrides`` apply).
        root: the folder of run directories.
        address: a Ray cluster to join (default: ``RAY_ADDRESS``, else an embedded local Ray for the call;
            a Ray already initialised in this process is used as it is).
        progress: show the progress bar.
        storage: a folder for the run directory in place of ``root``, or a URI (``s3://bucket/skate``)
            the run directory is copied to as it grows.

    Returns:
        The run directory, its status, the final metrics (``test/*``, ``val/*``) and the best checkpoint.
    """
    from skate.cluster import ray_session
    from skate.runner import run_job

    loaded = _spec(spec, overrides)
    with ray_session(address):
        return run_job(loaded, root=root, progress=progress, storage=storage)


def resume(run_dir: str | Path, *, address: str | None = None, progress: bool = True) -> "RunResult":
    """Continue an interrupted or failed run from its last checkpoint, as ``skate run --resume`` does."""
    from skate.cluster import ray_session
    from skate.runner import resume_job

    with ray_session(address):
        return resume_job(run_dir, progress=progress)


def tune(spec: SpecLike, *, overrides: list[str] | None = None, root: str | Path = "runs",
         address: str | None = None, progress: bool = True) -> "SearchResult":
    """Search a job's hyperparameters (its ``search:`` section) with Ray Tune, as ``skate tune`` does.

    Returns:
        The experiment directory, every trial's record, the best trial and ``best.yaml``.
    """
    from skate.cluster import ray_session
    from skate.search.experiment import run_search

    loaded = _spec(spec, overrides)
    with ray_session(address, quiet=True):
        return run_search(loaded, root=root, progress=progress, source=str(spec) if isinstance(spec, (str, Path)) else "")


def resume_tune(experiment: str | Path, *, address: str | None = None, progress: bool = True) -> "SearchResult":
    """Continue an interrupted search, as ``skate tune --resume`` does."""
    from skate.cluster import ray_session
    from skate.search.experiment import resume_search

    with ray_session(address, quiet=True):
        return resume_search(experiment, progress=progress)


def submit(spec_file: str | Path, *, overrides: list[str] | None = None, address: str | None = None,
           working_dir: str | Path = ".", storage: str | None = None, follow: bool = False) -> str:
    """Submit a job spec to a Ray cluster as ``skate submit`` does: validated here, then run there by
    ``skate run`` with the working directory (which must hold the spec) and skate's own package.

    Args:
        spec_file: the job spec, inside ``working_dir``.
        address: the cluster's dashboard (default: ``RAY_ADDRESS``, else the user config's ``cluster.address``).
        storage: where the run directory goes on the cluster (a path there, or a URI).
        follow: print the job's logs to the end and wait for it.

    Returns:
        The job id; with ``follow``, once the job has ended (:func:`skate.launch.jobs.status_of` tells how).
    """
    from skate.launch import jobs
    from skate.launch.connect import jobs_client

    submission = jobs.prepare(spec_file, list(overrides or []), working_dir=working_dir, storage=storage)
    client = jobs_client(address)
    job_id = jobs.submit(client, submission)
    if follow:
        jobs.follow(client, job_id)
    return job_id
