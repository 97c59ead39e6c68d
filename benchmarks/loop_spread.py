"""How much the plain loop alone moves on this machine: the seed's model (:data:`ps_arms.SEED`) on one
thread, in fresh processes, each pinned to one core in turn.

The parameter-server benchmarks judge ratios of a few percent; this is the noise they sit in. Each
process runs one warm-up epoch and ``--epochs`` timed epochs of ``--steps`` steps, and reports its
mean step.

    .venv/bin/python benchmarks/loop_spread.py [--processes 3] [--steps 60] [--epochs 3]

Prints one JSON line per process ({"core": .., "ran_on": [the cores it could run on], "mean_step_ms": ..}),
then the summary:
{"by_core": {core: [min, median, max]}, "all": [min, median, max], "spread": max / min}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from ps_arms import cores

_ONE = """
import json, statistics, sys
sys.path.insert(0, {here!r})
from ps_arms import SEED, Loop
loop = Loop(SEED, {steps}, core={core})
loop.start()
loop.run({epochs} + 1)
loop.stop()
step_ms = round(1000 * statistics.mean(s for e in loop.step_s[1:] for s in e), 3)
print(json.dumps({{"core": {core}, "ran_on": loop.ran_on, "mean_step_ms": step_ms}}))
"""


def one(core: int, steps: int, epochs: int) -> dict[str, float]:
    """The loop in a fresh process pinned to ``core``."""
    code = _ONE.format(here=str(Path(__file__).parent), steps=steps, epochs=epochs, core=core)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def three(values: list[float]) -> list[float]:
    return [round(min(values), 3), round(statistics.median(values), 3), round(max(values), 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3, help="processes per core")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    seen: dict[int, list[float]] = {core: [] for core in cores()}
    for _ in range(args.processes):
        for core in seen:  # the cores in turn, so that the machine's drift falls on each alike
            result = one(core, args.steps, args.epochs)
            seen[core].append(result["mean_step_ms"])
            print(json.dumps(result), flush=True)
    every = [v for values in seen.values() for v in values]
    print(json.dumps({"by_core": {core: three(values) for core, values in seen.items()}, "all": three(every),
                      "spread": round(max(every) / min(every), 3)}))


if __name__ == "__main__":
    main()
