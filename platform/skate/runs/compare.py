"""``skate compare``: runs side by side — where their specs differ, their final metrics, and one PNG
overlaying their curves against progress (epochs, or environment steps for RL) and wall-clock time.

A search's experiment directory stands for its best trial (``trials/<best trial>``), so two searches
(or a search and a run) compare as their best runs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from skate.errors import SkateError
from skate.runs.metrics import read_metrics
from skate.runs.pictures import pyplot
from skate.runs.remote import local_copy
from skate.runs.report import SEARCH_STATE, metric_columns, run_row
from skate.runs.rundir import RunDir
from skate.table import cell, format_table

TRIALS = "trials"
""":data:`skate.search.trial.TRIALS`, not imported from there: that module loads Ray."""
MISSING = "-"
"""How a spec key or a metric that a run does not have is shown."""
_NOT_COMPARED = ("description",)
"""Spec keys left out of the differences: prose, too long for a column and said by the rest."""
_TIME = "time_s"
_RATES = ("perf/samples_per_s", "perf/env_steps_per_s")


@dataclasses.dataclass(frozen=True)
class ComparedRun:
    """One run as compared: its column label, directory, resolved spec, summary and metrics."""

    label: str
    run: RunDir
    spec: dict[str, Any]
    metrics: dict[str, list[Any]]

    @property
    def is_rl(self) -> bool:
        return "rl" in self.spec

    @property
    def progress(self) -> str:
        """The metrics column that counts its progress: epochs, or environment steps for RL."""
        return "env_steps" if self.is_rl else "epoch"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """What ``skate compare`` shows: ``differences`` and ``metrics`` map a row (a dotted spec key, a
    metric) to each run's value by label, a run without it left out."""

    runs: list[ComparedRun]
    differences: dict[str, dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    plot: Path

    def text(self) -> str:
        labels = [run.label for run in self.runs]
        if self.differences:
            spec = (f"spec differences ({len(self.differences)} keys)\n"
                    + _table("key", labels, self.differences, _spec_cell))
        else:
            spec = "spec differences: none, the resolved specs are the same"
        return f"{spec}\n\nfinal metrics\n{_table('metric', labels, self.metrics, cell)}\n\nplot: {self.plot}"

    def as_json(self) -> dict[str, Any]:
        return {"runs": {run.label: str(run.run.path) for run in self.runs}, "differences": self.differences,
                "metrics": self.metrics, "plot": str(self.plot)}


def compare(locations: Sequence[str | Path], *, out: str | Path) -> Comparison:
    """Open the runs at ``locations`` (paths or URIs), tell their differences and final metrics,
    and write the overlay of their curves to ``out``.

    Raises:
        SkateError: fewer than two runs, a run without metrics, RL runs mixed with supervised ones.
    """
    runs = open_runs(locations)
    return Comparison(runs, spec_differences(runs), final_metrics(runs), write_overlay(runs, Path(out)))


def open_runs(locations: Sequence[str | Path]) -> list[ComparedRun]:
    """The runs at ``locations``, each with a distinct label (its directory's name, else the location).

    Raises:
        SkateError: fewer than two, one that is not a run (or a search with a best trial), one without
            metrics yet, or RL runs mixed with supervised ones (naming one of each).
    """
    if len(locations) < 2:
        raise SkateError(f"compare needs at least two runs, got {len(locations)}: {' '.join(map(str, locations))}")
    opened = [_open(location) for location in locations]
    names = [name for name, _ in opened]
    labels = [name if names.count(name) == 1 else str(location) for (name, _), location in zip(opened, locations)]
    labels = [label if labels.count(label) == 1 else f"{label}#{i + 1}" for i, label in enumerate(labels)]
    runs = [ComparedRun(label, run, _spec(run), _metrics(run)) for label, (_, run) in zip(labels, opened)]
    rl = [run for run in runs if run.is_rl]
    if rl and len(rl) < len(runs):
        supervised = next(run for run in runs if not run.is_rl)
        raise SkateError(f"cannot compare an RL run with a supervised one: {rl[0].label} is RL (rl: in its spec), "
                         f"{supervised.label} is supervised; their metrics have nothing in common")
    return runs


def spec_differences(runs: Sequence[ComparedRun]) -> dict[str, dict[str, Any]]:
    """Each dotted spec key (``train.strategy.kind``) whose value is not the same in every run, with each
    run's value; a run without the key is left out of its row. ``description`` is not compared."""
    flat = [flatten(run.spec) for run in runs]
    keys = sorted({key for spec in flat for key in spec} - set(_NOT_COMPARED))
    return {key: {run.label: spec[key] for run, spec in zip(runs, flat) if key in spec}
            for key in keys if len({json.dumps(spec.get(key, MISSING), default=str, sort_keys=True)
                                    for spec in flat}) > 1}


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{"a.b.c": value}``; lists and empty mappings are values."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def final_metrics(runs: Sequence[ComparedRun]) -> dict[str, dict[str, Any]]:
    """Each run's status, progress, wall time, objective metric and its best value, then its final
    metrics (``summary.json``'s, or the last row of the metrics of a run that has not finished)."""
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        row = run_row(run.run)
        summary = run.run.read_summary()
        objective = (summary.get("best") or {}).get("metric")
        fields = {"status": row.status, "progress": row.progress, "duration_s": summary.get("duration_s"),
                  "objective": f"{objective} ({row.mode})" if objective else None, "best": row.val,
                  **dict(sorted(_final(run, summary).items()))}
        for name, value in fields.items():
            if value is not None:
                rows.setdefault(name, {})[run.label] = value
    return rows


def overlay_figure(runs: Sequence[ComparedRun]) -> Any:
    """A matplotlib figure: a row per metric at least two runs share, one line per run (its colour
    the same in every panel) against epochs (RL: environment steps) on the left and wall-clock
    seconds on the right. An RL run's episode return has its min..max shaded."""
    plt = pyplot()
    from matplotlib.ticker import EngFormatter, MaxNLocator

    axes_x = [runs[0].progress] + ([_TIME] if sum(_TIME in run.metrics for run in runs) >= 2 else [])
    panels = shared_metrics(runs)
    if not panels:
        raise SkateError(f"{', '.join(run.label for run in runs)}: no metric that two of them report, nothing to plot")
    fig, axes = plt.subplots(len(panels), len(axes_x), figsize=(5.2 * len(axes_x), 2.9 * len(panels)),
                             squeeze=False)
    for row, metric in zip(axes, panels):
        for ax, x in zip(row, axes_x):
            for index, run in enumerate(runs):
                _draw(ax, run, x, metric, color=f"C{index}")
            ax.set_title(f"{metric} by {'wall time' if x == _TIME else x.replace('_', ' ')}", fontsize="medium")
            ax.grid(alpha=0.3)
            if x == "env_steps":  # 12k rather than 12000, and few enough ticks not to run together
                ax.xaxis.set_major_locator(MaxNLocator(5))
                ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            elif x == "epoch":
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            else:  # from the start of each run: the slower start of one engine shows
                ax.set_xlim(left=0)
            if metric in _RATES:
                ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    for ax, x in zip(axes[-1], axes_x):
        ax.set_xlabel("seconds" if x == _TIME else x.replace("_", " "))
    labels = _legends(runs)
    # as many labels a line as fit the width (about 9 characters an inch, and room for the line drawn)
    columns = max(1, min(len(runs), int(fig.get_figwidth() * 9 // (max(map(len, labels)) + 6))))
    handles = [plt.Line2D([], [], color=f"C{index}", linewidth=2) for index in range(len(runs))]
    fig.legend(handles, labels, loc="upper center", ncol=columns, frameon=False, bbox_to_anchor=(0.5, 1.0))
    legend_in = 0.25 * -(-len(runs) // columns) + 0.1
    fig.set_figheight(fig.get_figheight() + legend_in)
    fig.tight_layout(rect=(0, 0, 1, 1 - legend_in / fig.get_figheight()))
    return fig


def write_overlay(runs: Sequence[ComparedRun], path: Path) -> Path:
    """The :func:`overlay_figure` of ``runs`` as a PNG at ``path`` (its folder made if need be)."""
    fig = overlay_figure(runs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    return path


def shared_metrics(runs: Sequence[ComparedRun]) -> list[str]:
    """The metrics to overlay, in the order of a run's learning curves, that at least two runs have
    values of: train and validation metrics (RL: mean episode return and length, learner losses)
    and the throughput."""
    ordered: list[str] = []
    for run in runs:
        columns = [column for group in metric_columns(run.metrics).values() for column in group]
        for column in columns + [rate for rate in _RATES if rate in run.metrics]:
            if column.startswith("rollout/episode_return_") and not column.endswith("_mean"):
                continue  # drawn as the shade around the mean
            if column not in ordered:
                ordered.append(column)
    return [metric for metric in ordered if sum(bool(_points(run, run.progress, metric)) for run in runs) >= 2]


def _draw(ax: Any, run: ComparedRun, x: str, metric: str, *, color: str) -> None:
    points = _points(run, x, metric)
    if not points:
        return
    xs, ys = zip(*points)
    ax.plot(xs, ys, color=color, marker="." if len(points) < 40 else None, label=run.label)
    low, high = _points(run, x, "rollout/episode_return_min"), _points(run, x, "rollout/episode_return_max")
    if metric == "rollout/episode_return_mean" and low and len(low) == len(high):
        ax.fill_between([p[0] for p in low], [p[1] for p in low], [p[1] for p in high], color=color, alpha=0.12,
                        linewidth=0)


def _points(run: ComparedRun, x: str, metric: str) -> list[tuple[float, float]]:
    if x not in run.metrics or metric not in run.metrics:
        return []
    return [(a, b) for a, b in zip(run.metrics[x], run.metrics[metric]) if a is not None and b is not None]


def _legends(runs: Sequence[ComparedRun]) -> list[str]:
    """Each run's label and, where they differ between the runs, the components it chose
    (``train.strategy.kind`` -> ``allreduce``): what tells engines apart."""
    kinds = [key for key in spec_differences(runs) if key.endswith(".kind") or key == "rl.algorithm"][:2]
    legends = []
    for run in runs:
        flat = flatten(run.spec)
        chosen = ", ".join(str(flat.get(key, MISSING)) for key in kinds)
        legends.append(f"{run.label} ({chosen})" if chosen else run.label)
    return legends


def _final(run: ComparedRun, summary: dict[str, Any]) -> dict[str, Any]:
    final = summary.get("final") or {}
    if final:
        return final
    last = {name: values[-1] for name, values in run.metrics.items() if values}
    return {name: value for name, value in last.items() if "/" in name and value is not None}


def _open(location: str | Path) -> tuple[str, RunDir]:
    """The run's name and directory; an experiment directory's best trial."""
    path = local_copy(location)
    state = path / SEARCH_STATE
    if not state.is_file():
        return path.name, RunDir.open(path)
    trial = (json.loads(state.read_text(encoding="utf-8")).get("best") or {}).get("trial")
    if trial is None or not (path / TRIALS / trial).is_dir():
        raise SkateError(f"{location}: a search without a finished best trial to compare; "
                         f"name one of its runs instead ({path / TRIALS}/<trial>)")
    return f"{path.name}/{trial}", RunDir.open(path / TRIALS / trial)


def _spec(run: RunDir) -> dict[str, Any]:
    try:
        spec = yaml.safe_load(run.spec_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SkateError(f"{run.path}: unreadable {RunDir.SPEC}: {error}") from None
    return spec if isinstance(spec, dict) else {}


def _metrics(run: RunDir) -> dict[str, list[Any]]:
    table = read_metrics(run.metrics_path).to_pydict() if run.metrics_path.is_file() else {}
    if not any(table.values()):
        raise SkateError(f"{run.path}: no metrics yet ({RunDir.METRICS} is missing or empty)")
    return table


def _spec_cell(value: Any) -> str:
    """A spec value as YAML writes it inline (``null``, ``true``, ``[28, 28]``), exact (no rounding)."""
    return yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip().removesuffix("\n...").strip()


def _table(first: str, labels: list[str], rows: dict[str, dict[str, Any]], shown: Callable[[Any], str]) -> str:
    return format_table([first, *labels], [[name, *(shown(values[label]) if label in values else MISSING
                                                    for label in labels)] for name, values in rows.items()])
