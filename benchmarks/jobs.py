"""The figures of docs/jobs.md, every one from one command: each job in ``jobs/`` run again, and a few variants.

A row per job file in ``jobs/`` (found when the benchmark starts, so a new job gets a row without an
edit here): ``skate run jobs/<job>.yaml``, or ``skate tune jobs/<job>.yaml`` for a spec with a
``search:`` section. Then the :data:`VARIANTS`: a job run with overrides, e.g. the pretrained
classifier trained from scratch. Each row runs in a fresh process, in a run directory of its own
(``<root>/<row>``), and its figures are read from that directory's ``summary.json`` (a search's
``experiment.json`` and ``trials.parquet``): the final metrics (the test metrics of the best
checkpoint for a supervised job, the last iteration's for an RL job, the Q-values and policy for
the MDP jobs), the run's ``duration_s`` (its training loop's time only: no Ray or data start-up,
no test) and the process's wall time.

Long, and not in CI: every row takes tens of minutes together on a 2-core machine, and
``mspacman_dqn`` and ``mspacman_dqn_seed`` take hours on a CPU (usually skipped with
``--skip mspacman_dqn mspacman_dqn_seed``).

    .venv/bin/python benchmarks/jobs.py [--only ROW ...] [--skip ROW ...] [--set KEY=VALUE ...]
                                        [--keep DIR] [--list]

``--set`` goes to every row (e.g. ``--set train.epochs=1`` to try it out on supervised rows);
``--keep DIR`` keeps the run directories in DIR (default: a temporary folder, removed at the end);
``--list`` prints each row's command and exits. Prints a JSON line per row: {"row": .., "job": ..,
"overrides": [..], "command": "skate run ...", "status": "completed", "wall_s": .., "duration_s": ..,
"stopped_because": .., "best": {"metric": .., "value": ..}, "final": {metric: value}} (a search's
row adds "best_trial" and "trial_best": {trial: its best metric}, and its "final" is the best
trial's; a failed row has "rc" and "stderr_tail"; a row of :data:`PLAYED` has "evaluation"), then a summary: {"benchmark": "jobs", "machine":
.., "rows": {row: {"status": .., "wall_s": .., "duration_s": .., "best": .., figure: value}}}.
Exits 1 if any row failed.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import yaml

REPO = Path(__file__).resolve().parents[1]
JOBS = REPO / "jobs"
FIGURES = ("test/*", "rollout/episode_return_mean", "env_steps", "q_values", "policy")
"""The final metrics a row's summary reports (patterns): the test metrics of a supervised job (a
search's best trial), an RL job's mean return and env steps, an MDP job's Q-values and policy."""


class Row(NamedTuple):
    """A row of the benchmark: ``job`` (a file stem in ``jobs/``) run with ``overrides``."""

    name: str
    job: str
    overrides: tuple[str, ...] = ()
    figures: tuple[str, ...] = FIGURES


PLAYED = {"cartpole_pg_seed": (100, "basic", 500)}
"""RL rows whose run is then played as ``skate evaluate`` plays it: (greedy episodes, a hard-coded
policy played beside it on the run's env, its episodes). The seed plays its basic CartPole policy
500 times (mean 42.1)."""


VARIANTS = (
    Row("pretrained_classifier_scratch_all_labels", "pretrained_classifier",
        ("model.pretrain_epochs=0", "model.freeze_encoder=false", "model.labelled_fraction=1.0")),
    Row("pretrained_classifier_scratch_10pct", "pretrained_classifier",
        ("model.pretrain_epochs=0", "model.freeze_encoder=false")),
    Row("pretrained_classifier_fine_tuned", "pretrained_classifier", ("model.freeze_encoder=false",)),
)
"""The seed's Exercise 8 question: the same classifier trained from scratch on the full training set
and on the job's 10% of labels, and the pretrained one fine-tuned rather than frozen."""


def rows(jobs: Path = JOBS) -> list[Row]:
    """A row per job file in ``jobs``, then the :data:`VARIANTS`."""
    found = [Row(path.stem, path.stem) for path in sorted(jobs.glob("*.yaml"))]
    names = {row.name for row in found}
    clash = [row.name for row in VARIANTS if row.name in names]
    if clash:
        raise ValueError(f"variants named as job files: {clash}")
    return found + list(VARIANTS)


def is_search(job: str) -> bool:
    """Whether ``jobs/<job>.yaml`` has a ``search:`` section (run by ``skate tune``)."""
    return "search" in (yaml.safe_load((JOBS / f"{job}.yaml").read_text()) or {})


def command(row: Row, sets: list[str]) -> list[str]:
    """The skate command line of ``row`` (after ``skate``), with ``sets`` after its own overrides."""
    args = ["tune" if is_search(row.job) else "run", f"jobs/{row.job}.yaml"]
    for override in (*row.overrides, *sets):
        args += ["--set", override]
    return args


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 2)


def read_run(run_dir: Path) -> dict[str, Any]:
    """What a finished run directory reports: a run's ``summary.json``, or a search's ``experiment.json``
    with its best trial's final metrics and every trial's best metric."""
    if (run_dir / "summary.json").exists():
        summary = json.loads((run_dir / "summary.json").read_text())
        return {"status": summary.get("status"), "duration_s": _round(summary.get("duration_s")),
                "stopped_because": summary.get("stopped_because"), "error": summary.get("error"),
                "best": {k: (summary.get("best") or {}).get(k) for k in ("metric", "value")},
                "final": summary.get("final") or {}}
    state = json.loads((run_dir / "experiment.json").read_text())
    best = state.get("best") or {}
    report = {"status": state.get("status"), "duration_s": _round(state.get("duration_s")),
              "best": {"metric": state.get("metric"), "value": best.get("value")}, "best_trial": best.get("trial"),
              "final": best.get("final") or {}}
    if (run_dir / "trials.parquet").exists():
        import pyarrow.parquet as pq

        table = pq.read_table(run_dir / "trials.parquet").to_pydict()
        report["trial_best"] = dict(zip(table["trial"], table.get(f"best/{state.get('metric')}", [])))
    return report


def run_row(row: Row, sets: list[str], root: Path) -> dict[str, Any]:
    """Runs ``row`` in a fresh process with its run directory ``root/<row>``, and reads it back."""
    args = command(row, sets)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "skate", *args, "--root", str(root), "--name", row.name,
                           "--no-progress"], cwd=REPO, capture_output=True, text=True)
    result: dict[str, Any] = {"row": row.name, "job": row.job, "overrides": [*row.overrides, *sets],
                              "command": " ".join(["skate", *args]), "status": "failed",
                              "wall_s": round(time.perf_counter() - started, 1)}
    run_dir = root / row.name
    if (run_dir / "summary.json").exists() or (run_dir / "experiment.json").exists():
        result.update(read_run(run_dir))
    if done.returncode != 0:
        result["status"] = "failed"
    elif row.name in PLAYED:
        result["evaluation"] = played(run_dir, *PLAYED[row.name])
    if result["status"] != "completed":
        result.update(rc=done.returncode, stderr_tail=done.stderr.splitlines()[-20:])
    return result


def played(run_dir: Path, episodes: int, policy: str, policy_episodes: int) -> dict[str, dict[str, float]]:
    """The returns of the run's greedy policy (its last checkpoint) over ``episodes`` episodes, and of
    the hard-coded ``policy`` over ``policy_episodes``, as ``skate evaluate RUN --policy`` plays them."""
    from skate.rl.evaluate import evaluate, evaluate_baseline, run_env

    return {"greedy": evaluate(run_dir, episodes=episodes).summary(),
            policy: evaluate_baseline(policy, run_env(run_dir), episodes=policy_episodes).summary()}


def figures(result: dict[str, Any], patterns: tuple[str, ...]) -> dict[str, Any]:
    """A row's key figures for the summary line."""
    final = result.get("final") or {}
    picked = {k: v for k, v in final.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
    return {"status": result["status"], "wall_s": result["wall_s"], "duration_s": result.get("duration_s"),
            "best": (result.get("best") or {}).get("value"), **picked,
            **{f"{who}_return_mean": round(v["return_mean"], 2) for who, v in result.get("evaluation", {}).items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="ROW", help="run only these rows")
    parser.add_argument("--skip", nargs="+", metavar="ROW", default=[], help="leave these rows out")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                        help="an override for every row (repeatable)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the run directories in DIR")
    parser.add_argument("--list", action="store_true", help="print the rows and their commands, and exit")
    args = parser.parse_args(argv)
    table = rows()
    known = [row.name for row in table]
    unknown = [name for name in [*(args.only or []), *args.skip] if name not in known]
    if unknown:
        parser.error(f"unknown rows {unknown}; the rows are: {' '.join(known)}")
    chosen = [row for row in table if (args.only is None or row.name in args.only) and row.name not in args.skip]
    if args.list:
        for row in chosen:
            print(json.dumps({"row": row.name, "job": row.job, "overrides": list(row.overrides),
                              "command": " ".join(["skate", *command(row, args.sets)])}))
        return 0
    with tempfile.TemporaryDirectory(prefix="skate-jobs-") as temporary:
        root = args.keep if args.keep is not None else Path(temporary)
        root.mkdir(parents=True, exist_ok=True)
        summary: dict[str, dict[str, Any]] = {}
        for row in chosen:
            print(f"{row.name}: skate {' '.join(command(row, args.sets))}", file=sys.stderr, flush=True)
            result = run_row(row, args.sets, root.resolve())
            print(json.dumps(result), flush=True)
            summary[row.name] = figures(result, row.figures)
    print(json.dumps({"benchmark": "jobs", "machine": f"{platform.node()}, {os.cpu_count()} CPUs",
                      "rows": summary}), flush=True)
    return 1 if any(s["status"] != "completed" for s in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
