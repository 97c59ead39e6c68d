"""Test accuracy of the digits job on every engine over several seeds, against ``single``'s.

``jobs/digits_rnn.yaml`` (BasicRNN 150 on scikit-learn's 8x8 digits, 100 epochs, batch 150) runs on
the single-process loop; ``jobs/digits_rnn_ps.yaml`` (the same job, 2 workers x batch 75, 2 shards)
on the parameter server in sync, async and ssp (staleness 2) modes; the same job on Ray Train's
allreduce (the PS job's 2 workers x batch 75). Each engine runs once per seed, all on one local Ray in one process.

One seed's difference says little: the test split has 270 images (one image is 0.37 points) and
``single`` alone moves by more than a point from seed to seed. The comparison is of the means over
the seeds. Target (issue 3): every engine's mean >= 0.95 and within one point of ``single``'s.

    .venv/bin/python benchmarks/ps_convergence.py [--seeds 42 43 44 45 46] [--only async ssp]

Prints one JSON line per run, then the summary as the last line:
{"seeds": [..], "single": {"accuracy": [..], "mean": ..}, "ps_async": {"accuracy": [..], "mean": ..,
 "mean_gap_points": ..}, ...}
(``mean_gap_points``: 100 x (engine's mean - single's mean)).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from skate.cluster import ray_session
from skate.runner import run_job
from skate.spec import load_spec

JOBS = Path(__file__).resolve().parents[1] / "jobs"
ENGINES: dict[str, tuple[str, list[str]]] = {
    "single": ("digits_rnn.yaml", []),
    "ps_sync": ("digits_rnn_ps.yaml", ["train.strategy.mode=sync"]),
    "ps_async": ("digits_rnn_ps.yaml", ["train.strategy.mode=async"]),
    "ps_ssp": ("digits_rnn_ps.yaml", ["train.strategy.mode=ssp", "train.strategy.staleness=2"]),
    "allreduce": ("digits_rnn_ps.yaml", ["train.strategy={kind: allreduce, num_workers: 2}"]),
}


def accuracy(engine: str, seed: int, root: Path) -> float:
    """Test accuracy of one run of ``engine`` with ``seed``."""
    job, overrides = ENGINES[engine]
    result = run_job(load_spec(JOBS / job, [*overrides, f"seed={seed}"]), root=root, progress=False)
    if result.status != "completed":
        raise SystemExit(f"{engine} seed {seed}: the run ended {result.status}; see {result.run_dir}")
    return float(result.metrics["test/accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44, 45, 46])
    parser.add_argument("--only", nargs="*", default=[name for name in ENGINES if name != "single"],
                        choices=[name for name in ENGINES if name != "single"],
                        help="engines compared with single (default: all)")
    args = parser.parse_args()
    engines = ["single", *args.only]
    found: dict[str, list[float]] = {name: [] for name in engines}
    with tempfile.TemporaryDirectory(prefix="skate-ps-convergence-") as scratch, ray_session("local", quiet=True):
        for seed in args.seeds:
            for engine in engines:
                start = time.perf_counter()
                found[engine].append(round(accuracy(engine, seed, Path(scratch)), 4))
                print(json.dumps({"engine": engine, "seed": seed, "accuracy": found[engine][-1],
                                  "wall_s": round(time.perf_counter() - start, 1)}), flush=True)
    single = statistics.mean(found["single"])
    summary: dict[str, object] = {"seeds": args.seeds}
    for engine in engines:
        mean = statistics.mean(found[engine])
        summary[engine] = {"accuracy": found[engine], "mean": round(mean, 4)}
        if engine != "single":
            summary[engine]["mean_gap_points"] = round(100 * (mean - single), 2)  # type: ignore[index]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
