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
        address: str | None = None, progress: bool = True) -> "RunResult":
    """Train a job (supervised or RL) in a new run directory under ``root``, as ``skate run`` does.

    Args:
        spec: a loaded spec, or the path of a spec file (then ``overrides`` apply).
        root: the folder of run directories.
        address: a Ray cluster to join (default: ``RAY_ADDRESS``, else an embedded local Ray for the call;
            a Ray already initialised in this process is used as it is).
        progress: show the progress bar.

    Returns:
        The run directory, its status, the final metrics (``test/*``, ``val/*``) and the best checkpoint.
    """
    from skate.cluster import ray_session
    from skate.runner import run_job

    loaded = _spec(spec, overrides)
    with ray_session(address):
        return run_job(loaded, root=root, progress=progress)


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
