"""What a search leaves in its experiment directory: ``trials.parquet``, ``best.yaml`` and the plot of
every trial's metric over time, all read from the trials' own run directories."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from skate.config.yamlio import dump_yaml
from skate.runs.atomic import atomic_path, write_text_atomic
from skate.runs.metrics import read_metrics
from skate.runs.rundir import RunDir
from skate.spec import load_spec
from skate.spec.io import spec_to_data

TRIALS_TABLE = "trials.parquet"
BEST_SPEC = "best.yaml"
PLOT = "trials.png"


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """One trial as the experiment directory records it."""

    trial: str
    state: str
    values: dict[str, Any]
    iterations: int
    best: float | None
    final: dict[str, float]
    run_dir: Path
    error: str | None = None


def trial_record(run: RunDir, *, trial: str, tune_state: str, values: dict[str, Any], metric: str, mode: str,
                 time_attr: str, error: str | None) -> TrialRecord:
    """A trial's record from its run directory: its progress, its best ``metric`` and, if its job ran to
    the end, the final metrics (test metrics of the best checkpoint)."""
    summary = run.read_summary() if run.summary_path.exists() else {}
    columns = read_metrics(run.metrics_path).to_pydict() if run.metrics_path.exists() else {}
    scores = [v for v in columns.get(metric, []) if v is not None and not math.isnan(v)]
    best = (max(scores) if mode == "max" else min(scores)) if scores else None
    if error is not None:
        state = "error"
    elif summary.get("status") == "completed":
        state = "completed"
    elif tune_state == "TERMINATED":
        state = "stopped"  # ended early by the scheduler
    elif tune_state in ("RUNNING", "PAUSED"):
        state = "interrupted"  # to be continued by --resume
    else:
        state = tune_state.lower()
    steps = columns.get(time_attr, [])
    return TrialRecord(trial=trial, state=state, values=values, iterations=int(steps[-1]) if steps else 0, best=best,
                       final=dict(summary.get("final") or {}), run_dir=run.path, error=error)


def best_record(records: list[TrialRecord], mode: str) -> TrialRecord | None:
    """The trial with the best metric (ties: the first)."""
    scored = [r for r in records if r.best is not None]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda r: r.best)  # type: ignore[arg-type,return-value]


def write_trials_table(records: list[TrialRecord], path: Path, *, metric: str) -> None:
    """``trials.parquet``: a row per trial with its values (``param/<path>``), state, progress, best
    metric (``best/<metric>``) and final metrics."""
    params = sorted({p for r in records for p in r.values})
    finals = sorted({name for r in records for name in r.final})
    table = {
        "trial": [r.trial for r in records],
        "state": [r.state for r in records],
        **{f"param/{p}": [_cell(r.values.get(p)) for r in records] for p in params},
        "iterations": [r.iterations for r in records],
        f"best/{metric}": [r.best for r in records],
        **{name: [r.final.get(name) for r in records] for name in finals},
        "run_dir": [str(r.run_dir) for r in records],
        "error": [r.error for r in records],
    }
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(table), tmp)


def _cell(value: Any) -> Any:
    """A searched value as a column can hold it: choices that mix types become text."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def write_best_spec(record: TrialRecord, path: Path, *, metric: str, source: str) -> None:
    """``best.yaml``: the best trial's job spec, without the search, ready for ``skate run``."""
    spec = load_spec(RunDir(record.run_dir).spec_path, gate=False)
    data = spec_to_data(dataclasses.replace(spec, search=None))
    data.pop("search")
    found = ", ".join(f"{p} = {v!r}" for p, v in record.values.items())
    test = {k: v for k, v in record.final.items() if k.startswith("test/")}
    lines = [f"# The best trial of 'skate tune {source}': {record.trial}, {metric} = {record.best:.4g}",
             f"# values: {found}"]
    if test:
        lines.append("# its test metrics: " + ", ".join(f"{k} = {v:.4g}" for k, v in sorted(test.items())))
    write_text_atomic(path, "\n".join(lines) + "\n" + dump_yaml(data))


def write_trials_plot(records: list[TrialRecord], path: Path, *, metric: str, time_attr: str) -> Path | None:
    """One line per trial: ``metric`` against ``time_attr``; ``None`` when no trial reported it."""
    from skate.runs.pictures import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    drawn = 0
    for record in records:
        run = RunDir(record.run_dir)
        if not run.metrics_path.exists():
            continue
        columns = read_metrics(run.metrics_path).to_pydict()
        points = [(x, y) for x, y in zip(columns.get(time_attr, []), columns.get(metric, [])) if y is not None]
        if points:
            ax.plot(*zip(*points), marker=".", label=f"{record.trial} ({record.state})")
            drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel(time_attr)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} of every trial")
    ax.grid(alpha=0.3)
    if drawn <= 20:
        ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path
