"""``skate report`` and ``skate runs``: a run's summary as text, and its learning curves as PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skate.runs.metrics import read_metrics
from skate.runs.rundir import RunDir, shown_status
from skate.table import format_table

CURVES = "learning_curves.png"
_SPLITS = ("train", "val")


def metric_columns(table: dict[str, list[Any]]) -> dict[str, list[str]]:
    """Metric names shared by splits -> their columns, e.g. ``loss -> [train/loss, val/loss]``."""
    grouped: dict[str, list[str]] = {}
    for column in table:
        split, _, name = column.partition("/")
        if split in _SPLITS and name:
            grouped.setdefault(name, []).append(column)
    return grouped


def write_curves(run: RunDir) -> Path:
    """Plot every train/val metric and the throughput against epochs into ``learning_curves.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = read_metrics(run.metrics_path).to_pydict()
    grouped = metric_columns(table)
    panels = list(grouped.items())
    if "perf/samples_per_s" in table:
        panels.append(("samples/s", ["perf/samples_per_s"]))
    best_epoch = (run.read_summary().get("best") or {}).get("epoch")
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.5 * max(len(panels), 1), 3.6), squeeze=False)
    for ax, (name, columns) in zip(axes[0], panels):
        for column in columns:
            points = [(e, v) for e, v in zip(table["epoch"], table[column]) if v is not None]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="." if len(points) < 40 else None, label=column.split("/")[0])
        if best_epoch is not None and name != "samples/s":
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best (epoch {best_epoch})")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if name != "samples/s":
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
    from skate.spec import load_spec

    lines = [f"learning curves: {write_curves(run)}"]
    if run.spec_path.exists() and type(load_spec(run.spec_path).model).objective == "reconstruction":
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
        ["epochs", summary.get("epochs_completed")],
        ["duration_s", summary.get("duration_s")],
        ["best", f"{best.get('metric')} = {best.get('value'):.4g} at epoch {best.get('epoch')}" if best.get("value") is not None else None],
    ]
    if summary.get("error"):
        rows.append(["error", summary["error"]])
    final = summary.get("final") or {}
    if not final and run.metrics_path.exists():
        last = read_metrics(run.metrics_path).to_pylist()
        final = {k: v for k, v in (last[-1] if last else {}).items() if "/" in k and v is not None}
    rows += [[name, value] for name, value in sorted(final.items())]
    return format_table(["field", "value"], rows)


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
