"""Load: many small jobs at once on one Ray cluster, queued by Ray's scheduler, and as many
``skate submit``s at once against the same head. Nothing may be lost and nothing may hang.

A local head of its own (:class:`skate.launch.localhead.LocalHead`, 2 CPUs) takes:
- ``runs``: ``--jobs`` ``skate run`` drivers started together, each joining the head with a
  parameter-server job of 2 workers (0.5 CPU each) for ``--epochs`` epochs: 4 fit on 2 CPUs at a time,
  the rest wait in Ray's queue for their actors;
- ``submits``: ``--submits`` ``skate submit`` commands started together, each the same job as a Ray
  job; then every job is followed to its end.

A job is ``completed`` when it ends well with a completed run directory, ``failed`` when it ends
with an error, and ``lost`` when it does neither within ``--timeout-s`` (a hang) or ends well but
leaves no completed run behind.

    .venv/bin/python benchmarks/load.py [--jobs 20] [--submits 20] [--epochs 1] [--timeout-s 1800]

Prints a JSON line per phase; the last line sums them:
{"jobs": .., "completed": .., "failed": .., "lost": .., "wall_s": ..}
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from skate.launch.connect import jobs_client
from skate.launch.jobs import TERMINAL, status_of
from skate.launch.localhead import LocalHead
from skate.runs.mirror import stored_runs

REPO = Path(__file__).resolve().parents[1]
JOB = ["jobs/digits_rnn_ps.yaml", "--set", "model.num_units=32",
       "--set", "train.strategy={kind: parameter_server, num_workers: 2, num_shards: 2, cpus_per_worker: 0.5}"]


def completed_runs(storage: Path) -> int:
    return sum(1 for run in stored_runs(str(storage)) if run.read_summary().get("status") == "completed")


def run_drivers(head: LocalHead, args: argparse.Namespace, storage: Path) -> dict[str, Any]:
    """``--jobs`` drivers joining the head at once; each must leave a completed run."""
    env = {**head.env(), "RAY_ADDRESS": head.gcs}
    command = [sys.executable, "-m", "skate", "run", *JOB, "--set", f"train.epochs={args.epochs}",
               "--root", str(storage), "--no-progress"]
    started = time.perf_counter()
    logs = storage / "logs"
    logs.mkdir(parents=True)
    processes = [subprocess.Popen(command, cwd=REPO, env=env, stdout=open(logs / f"{i}.out", "wb"),
                                  stderr=subprocess.STDOUT) for i in range(args.jobs)]
    codes: list[int | None] = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=max(1.0, args.timeout_s - (time.perf_counter() - started))))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(None)
    good = completed_runs(storage)
    failed = sum(1 for code in codes if code not in (0, None))
    return {"phase": "runs", "jobs": args.jobs, "completed": min(good, codes.count(0)), "failed": failed,
            "lost": args.jobs - min(good, codes.count(0)) - failed, "wall_s": round(time.perf_counter() - started, 1)}


def submit_jobs(head: LocalHead, args: argparse.Namespace, storage: Path) -> dict[str, Any]:
    """``--submits`` ``skate submit``s at once, then every job followed to its end."""
    env = {**head.env(), "SKATE_CONFIG": os.devnull}
    command = [sys.executable, "-m", "skate", "submit", *JOB, "--set", f"train.epochs={args.epochs}",
               "--address", head.dashboard, "--storage", str(storage)]
    started = time.perf_counter()
    processes = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for _ in range(args.submits)]
    ids, refused = [], 0
    for process in processes:
        out, _ = process.communicate(timeout=args.timeout_s)
        words = out.decode(errors="replace").split()
        if process.returncode == 0 and "submitted" in words:
            ids.append(words[words.index("submitted") + 1])
        else:
            refused += 1
    os.environ["RAY_AUTH_TOKEN"] = head.token
    client = jobs_client(head.dashboard)
    ending: dict[str, str] = {}
    while len(ending) < len(ids) and time.perf_counter() - started < args.timeout_s:
        for job_id in ids:
            if job_id not in ending and (status := status_of(client, job_id)) in TERMINAL:
                ending[job_id] = status
        time.sleep(2)
    succeeded = list(ending.values()).count("SUCCEEDED")
    good = min(succeeded, completed_runs(storage))
    failed = refused + sum(1 for status in ending.values() if status != "SUCCEEDED")
    return {"phase": "submits", "jobs": args.submits, "completed": good, "failed": failed,
            "lost": args.submits - good - failed, "wall_s": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--submits", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="skate-load-") as folder, LocalHead(num_cpus=2) as head:
        phases = [run_drivers(head, args, Path(folder) / "runs")]
        print(json.dumps(phases[-1]), flush=True)
        phases.append(submit_jobs(head, args, Path(folder) / "submits"))
        print(json.dumps(phases[-1]), flush=True)
    total = {key: sum(phase[key] for phase in phases) for key in ("jobs", "completed", "failed", "lost")}
    print(json.dumps({**total, "wall_s": round(sum(phase["wall_s"] for phase in phases), 1)}))


if __name__ == "__main__":
    main()
