"""``skate report`` and ``skate runs``: a run's summary as text, and its learning curves as PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skate.runs.metrics import read_metrics
from skate.runs.rundir import RunDir, shown_status
from skate.table import format_table

CURVES = "learning_curves.png"
_SPLITS = ("train", "val")
_RL_LOSSES = ("policy_loss", "vf_loss", "qf_loss")


def metric_columns(table: dict[str, list[Any]]) -> dict[str, list[str]]:
    """Panels of the learning curves -> their columns: metric names shared by splits, e.g.
    ``loss -> [train/loss, val/loss]``; for RL runs the episode return (mean, min, max), the
    episode length and each learner loss."""
    grouped: dict[str, list[str]] = {}
    for column in table:
        split, _, name = column.partition("/")
        if split in _SPLITS and name:
            grouped.setdefault(name, []).append(column)
        elif column.startswith("rollout/episode_return"):
            grouped.setdefault("episode return", []).append(column)
        elif column == "rollout/episode_len_mean" or (split == "learner" and name in _RL_LOSSES):
            grouped[name] = [column]
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
                label = column.split("/")[0] if x == "epoch" else column.rsplit("_", 1)[-1]
                ax.plot(xs, ys, marker="." if len(points) < 40 else None, label=label)
        if best_epoch is not None and x == "epoch" and not name.endswith("/s"):
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best (epoch {best_epoch})")
        ax.set_title(name)
        ax.set_xlabel(x.replace("_", " "))
        if x == "env_steps":  # 12k rather than 12000, and few enough ticks not to run together
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
    spec = load_spec(run.spec_path) if run.spec_path.exists() else None
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


def runs_table(runs: list[RunDir]) -> str:
    """One line per run: name, status, epochs, best validation score, test score, start time."""
    rows = []
    for run in runs:
        summary = run.read_summary()
        best = summary.get("best") or {}
        final = summary.get("final") or {}
        test = {k: v for k, v in final.items() if k.startswith("test/") and not k.endswith("loss")}
        rows.append([
            run.name, shown_status(summary), summary.get("epochs_completed"),
            best.get("value"), next(iter(test.values()), None), summary.get("started_at"),
        ])
    return format_table(["run", "status", "epochs", "best val", "test", "started"], rows)
