"""``skate report`` and ``skate runs``: a run's summary as text, and its learning curves as PNGs."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from pathlib import Path
from typing import Any

import yaml

from skate.runs.metrics import read_metrics
from skate.runs.rundir import RunDir, shown_status
from skate.table import format_table

CURVES = "learning_curves.png"
_SPLITS = ("train", "val")
_RL_LOSSES = ("policy_loss", "vf_loss", "qf_loss")
_TABLES = {"q": "Q-values", "v": "state values"}
_ERRORS = ("max_error", "max_change")


def metric_columns(table: dict[str, list[Any]]) -> dict[str, list[str]]:
    """Panels of the learning curves -> their columns: metric names shared by splits, e.g.
    ``loss -> [train/loss, val/loss]``; for RL runs the episode return (mean, min, max), the
    episode length and each learner loss; for tabular runs the values (``q/s0_a0`` ...) and how far
    they are from the exact ones."""
    grouped: dict[str, list[str]] = {}
    for column in table:
        split, _, name = column.partition("/")
        if split in _SPLITS and name:
            grouped.setdefault(name, []).append(column)
        elif column.startswith("rollout/episode_return"):
            grouped.setdefault("episode return", []).append(column)
        elif column == "rollout/episode_len_mean" or (split == "learner" and name in _RL_LOSSES):
            grouped[name] = [column]
        elif split in _TABLES and name in _ERRORS:
            grouped.setdefault(f"{split}: max error, max change (log)", []).append(column)
        elif split in _TABLES and name.startswith("s"):
            grouped.setdefault(_TABLES[split], []).append(column)
    return grouped


def write_curves(run: RunDir) -> Path:
    """Plot every train/val metric and the throughput against epochs into ``learning_curves.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter, MaxNLocator

    table = read_metrics(run.metrics_path).to_pydict()
    grouped = metric_columns(table)
    panels = list(grouped.items())
    rate = "perf/samples_per_s" if "perf/samples_per_s" in table else "perf/env_steps_per_s"
    if rate in table:
        panels.append(("samples/s" if rate == "perf/samples_per_s" else "env steps/s", [rate]))
    x = "epoch" if "epoch" in table else "env_steps"
    if x == "env_steps" and not any(table[x]):  # a tabular sweep takes no env steps: its iterations count
        x = "iteration"
    best_epoch = (run.read_summary().get("best") or {}).get("epoch")
    columns_per_row = min(max(len(panels), 1), 4)
    rows = -(-max(len(panels), 1) // columns_per_row)
    fig, axes = plt.subplots(rows, columns_per_row, figsize=(4.5 * columns_per_row, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (name, columns) in zip(axes.flat, panels):
        for column in columns:
            points = [(e, v) for e, v in zip(table[x], table[column]) if v is not None]
            if points:
                xs, ys = zip(*points)
                label = (column.split("/")[0] if x == "epoch" else column.split("/")[-1] if name in _TABLES.values()
                         else column.rsplit("_", 1)[-1])
                ax.plot(xs, ys, marker="." if len(points) < 40 else None, label=label)
        if best_epoch is not None and x == "epoch" and not name.endswith("/s"):
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best (epoch {best_epoch})")
        if name.endswith("(log)"):
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel(x.replace("_", " "))
        if x != "epoch":  # 12k rather than 12000, and few enough ticks not to run together
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(alpha=0.3)
        if len(columns) > 1 or (best_epoch is not None and x == "epoch" and not name.endswith("/s")):
            ax.legend(fontsize="small")
    fig.suptitle(run.name)
    fig.tight_layout()
    path = run.path / CURVES
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_plots(run: RunDir) -> str:
    """Write a run's PNGs (learning curves; for autoencoders also test inputs beside their
    reconstructions) and say where they are, one line each."""
    from skate.runs.pictures import RECONSTRUCTIONS, write_reconstructions
    from skate.runs.trained import load_trained
    from skate.spec import JobSpec, load_spec

    lines = [f"learning curves: {write_curves(run)}"]
    spec = load_spec(run.spec_path, gate=False) if run.spec_path.exists() else None
    if isinstance(spec, JobSpec) and type(spec.model).objective == "reconstruction":
        written = write_reconstructions(load_trained(run), run.path / RECONSTRUCTIONS)
        if written is not None:
            lines.append(f"reconstructions: {written}")
    return "\n".join(lines)


def summary_text(run: RunDir) -> str:
    """The run's status, timing and final metrics as a small table."""
    summary = run.read_summary()
    best = summary.get("best") or {}
    rows: list[list[Any]] = [
        ["run", run.path],
        ["status", shown_status(summary)],
        ["epochs", summary.get("epochs_completed")] if "iterations_completed" not in summary
        else ["iterations", summary["iterations_completed"]],
        ["duration_s", summary.get("duration_s")],
        ["best", _best_text(best)],
    ]
    if summary.get("stopped_because"):
        rows.append(["stopped because", summary["stopped_because"]])
    if summary.get("error"):
        rows.append(["error", summary["error"]])
    final = summary.get("final") or {}
    if not final and run.metrics_path.exists():
        last = read_metrics(run.metrics_path).to_pylist()
        final = {k: v for k, v in (last[-1] if last else {}).items() if "/" in k and v is not None}
    rows += [[name, value] for name, value in sorted(final.items())]
    return format_table(["field", "value"], rows)


def _best_text(best: dict[str, Any]) -> str | None:
    if best.get("value") is None:
        return None
    where = f" at epoch {best['epoch']}" if best.get("epoch") is not None else ""
    return f"{best.get('metric')} = {best['value']:.4g}{where}"


SEARCH_STATE = "experiment.json"
""":data:`skate.search.experiment.STATE`, not imported from there: that module loads Ray."""


@dataclasses.dataclass(frozen=True)
class RunRow:
    """One run or search as ``skate runs`` lists it."""

    name: str
    status: str
    progress: str
    metric: str | None
    """The metric that chose its best checkpoint (or trial), without its split (``accuracy``)."""
    val: float | None
    test: float | None
    mode: str
    description: str
    started: str

    def cells(self) -> list[Any]:
        return [self.name, self.status, self.progress, self.metric, self.val, self.test, self.description, self.started]


RUNS_HEADERS = ["run", "status", "progress", "metric", "val", "test", "description", "started"]


def run_row(run: Any) -> RunRow:
    """A run directory (or a search's experiment directory), local or stored, as a :class:`RunRow`:
    the validation and test columns show the same metric, the one that chose its best."""
    spec = _yaml(run.read_file(RunDir.SPEC))
    search = _json(run.read_file(SEARCH_STATE))
    if search:
        best = search.get("best") or {}
        name = _bare(search.get("metric"))
        trials = search.get("trials")
        progress = "search" if trials is None else f"{trials} trials"
        if best.get("trial"):
            progress += f", best {best['trial']}"
        return RunRow(run.name, search.get("status", "unknown"), progress,
                      name, best.get("value"), (best.get("final") or {}).get(f"test/{name}"), search.get("mode", "max"),
                      _one_line(spec.get("description")), search.get("started_at", ""))
    summary = run.read_summary()
    best = summary.get("best") or {}
    name = _bare(best.get("metric"))
    done = (f"{summary['iterations_completed']} iterations" if "iterations_completed" in summary
            else f"{summary.get('epochs_completed', 0)} epochs")
    return RunRow(run.name, shown_status(summary), done, name, best.get("value"),
                  (summary.get("final") or {}).get(f"test/{name}"), best.get("mode", "max"),
                  _one_line(spec.get("description")), summary.get("started_at", ""))


def runs_table(rows: list[RunRow]) -> str:
    """One line per run or search: name, status, progress, the metric that chose its best, that metric
    on validation (its best) and on test, its description and start."""
    return format_table(RUNS_HEADERS, [row.cells() for row in rows])


def pick_rows(rows: list[RunRow], *, name: str | None = None, status: str | None = None,
              sort: str = "started") -> list[RunRow]:
    """The rows whose name matches ``name`` (a glob, or a part of the name) and whose status is
    ``status``, sorted by start, name, or validation score (the best first)."""
    if name is not None:
        rows = [r for r in rows if fnmatch.fnmatchcase(r.name, name if any(c in name for c in "*?[") else f"*{name}*")]
    if status is not None:
        rows = [r for r in rows if r.status == status]
    if sort == "val":
        scored = [r for r in rows if r.val is not None]
        return sorted(scored, key=lambda r: -r.val if r.mode == "max" else r.val) + [r for r in rows if r.val is None]  # type: ignore[operator]
    return sorted(rows, key=lambda r: r.name if sort == "name" else (r.started, r.name))


def _bare(metric: Any) -> str | None:
    return metric.split("/", 1)[1] if isinstance(metric, str) and "/" in metric else metric


def _one_line(text: Any, width: int = 40) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def _yaml(text: str | None) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) if text else {}
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}