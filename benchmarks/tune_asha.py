"""ASHA against FIFO on the same search: the best trial each finds and the training epochs each spends.

The job's search (jobs/tune_digits_rnn.yaml: the digits RNN classifier) runs twice in one process on
one local Ray, with the same num_samples and the same search seed, so both draw the same trials:
- ``fifo``: every trial runs all its epochs;
- ``asha``: the job's scheduler, which stops the worst trials at each rung.

Trials are ranked on the search's metric (validation accuracy). ``epochs`` is the training epochs all
trials ran together. The target: ASHA's best within 0.5 points of FIFO's, on <= 40% of FIFO's epochs.
Wall times are context only: trials share the machine's cores with whatever else runs on it.

    .venv/bin/python benchmarks/tune_asha.py [--num-samples 16] [--epochs 30] [--root DIR]

Prints one JSON line per search, the last line the comparison:
{"fifo": {"best_accuracy": .., "epochs": .., "wall_s": ..}, "asha": {...}, "epochs_ratio": ..,
 "accuracy_gap_points": ..}
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from skate.cluster import ray_session
from skate.spec import load_spec
from skate.search.experiment import SearchResult, objective_of, run_search

JOB = Path(__file__).resolve().parents[1] / "jobs" / "tune_digits_rnn.yaml"


def overrides(args: argparse.Namespace, *, has_max_t: bool) -> list[str]:
    """The job's settings both searches change: the trials drawn, and the epochs of each trial (with
    the scheduler's max_t, so that its last rung is the trial's last epoch)."""
    changes = []
    if args.num_samples is not None:
        changes.append(f"search.num_samples={args.num_samples}")
    if args.epochs is not None:
        changes.append(f"train.epochs={args.epochs}")
        if has_max_t:
            changes.append(f"search.scheduler.max_t={args.epochs}")
    return changes


def search(job: Path, changes: list[str], *, scheduler: str, root: Path) -> dict[str, Any]:
    """Run the search with ``scheduler`` (``fifo``, or ``job`` for the job's own) and sum it up."""
    if scheduler == "fifo":
        changes = changes + ["search.scheduler={kind: fifo}"]
    spec = load_spec(job, changes)
    metric, _ = objective_of(spec)
    start = time.perf_counter()
    result = run_search(spec, root=root, progress=False)
    wall_s = time.perf_counter() - start
    return summary(result, scheduler=spec.search.scheduler.kind, metric=metric, wall_s=wall_s)


def summary(result: SearchResult, *, scheduler: str, metric: str, wall_s: float) -> dict[str, Any]:
    """One search's figures: its best trial, the epochs all trials ran, how the trials ended."""
    states: dict[str, int] = {}
    for record in result.trials:
        states[record.state] = states.get(record.state, 0) + 1
    best = result.best
    test_metric = "test/" + metric.removeprefix("val/")
    figures: dict[str, Any] = {
        "scheduler": scheduler,
        "status": result.status,
        "num_trials": len(result.trials),
        "states": states,
        "metric": metric,
        "best_accuracy": None if best is None else round(best.best, 4),
        "epochs": sum(r.iterations for r in result.trials),
        "wall_s": round(wall_s, 1),
        "trial_epochs": sorted((r.iterations for r in result.trials), reverse=True),
        "best_trial": None if best is None else best.trial,
        "best_values": None if best is None else best.values,
        "path": str(result.path),
        # which trials were drawn, to check that both searches drew the same
        "_drawn": sorted(json.dumps(r.values, sort_keys=True) for r in result.trials),
    }
    if best is not None and test_metric in best.final:
        figures["best_test_accuracy"] = round(best.final[test_metric], 4)
    errors = [f"{r.trial}: {r.error}" for r in result.trials if r.error]
    if errors:
        figures["errors"] = errors
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", type=Path, default=JOB, help="a job spec with a search: section using asha")
    parser.add_argument("--num-samples", type=int, default=None, help="trials per search (default: the job's)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of each trial, also ASHA's max_t (default: the job's)")
    parser.add_argument("--root", type=Path, default=None,
                        help="where the experiment directories go, kept (default: a temporary directory)")
    args = parser.parse_args()
    job = load_spec(args.job)
    if job.search is None or job.search.scheduler.kind == "fifo":
        parser.error(f"{args.job}: needs a search: section with a scheduler other than fifo to compare with fifo")
    changes = overrides(args, has_max_t=hasattr(job.search.scheduler, "max_t"))
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="skate-tune-asha-") as scratch:
        root = args.root or Path(scratch)
        # "local": a Ray of our own, never a cluster that `ray start` left running on this machine
        with ray_session("local", quiet=True):
            for name, scheduler in (("fifo", "fifo"), ("asha", "job")):
                results[name] = search(args.job, changes, scheduler=scheduler, root=root)
                print(json.dumps({"search": name, **{k: v for k, v in results[name].items() if k != "_drawn"}}),
                      flush=True)
                if "errors" in results[name]:
                    raise SystemExit(f"{name}: {len(results[name]['errors'])} trials failed (see above); "
                                     "no comparison")
    fifo, asha = results["fifo"], results["asha"]
    same = fifo["_drawn"] == asha["_drawn"]
    if not same:
        print(json.dumps({"warning": "the two searches drew different trials; the comparison is not like for like"}))
    last: dict[str, Any] = {}
    for name, figures in results.items():
        last[name] = {k: figures[k] for k in ("best_accuracy", "epochs", "wall_s")}
        if "best_test_accuracy" in figures:
            last[name]["best_test_accuracy"] = figures["best_test_accuracy"]
    last["epochs_ratio"] = round(asha["epochs"] / fifo["epochs"], 3) if fifo["epochs"] else None
    scored = fifo["best_accuracy"] is not None and asha["best_accuracy"] is not None
    last["accuracy_gap_points"] = round(100 * (fifo["best_accuracy"] - asha["best_accuracy"]), 2) if scored else None
    print(json.dumps(last))


if __name__ == "__main__":
    main()
