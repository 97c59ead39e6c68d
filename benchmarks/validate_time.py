"""Time of ``skate validate`` on one job file, in a fresh process, beside the time to ``import torch``.

``skate validate`` checks a spec (schema, environment, metric names, data against the model) without
starting Ray or importing torch for skate's own models, data and environments, so checking a spec
should cost less than importing torch. For each file, and for ``python -c "import torch"`` and an
empty ``python -c pass`` (the interpreter's own start), the median wall time over ``--repeats``
fresh subprocesses; the ratio is each file's median over torch's.

    .venv/bin/python benchmarks/validate_time.py [--repeats 5] [--files digits_rnn translation ...]

Prints a JSON line per file, then a summary: {"benchmark": "validate_time", "repeats": ..,
"python_s": .., "import_torch_s": .., "validate_s": {file: ..}, "ratio_to_torch": {file: ..}}
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILES = ("digits_rnn", "translation", "cartpole_ppo", "mspacman_dqn", "tune_digits_rnn")
"""A supervised job, the sequence-to-sequence one, a gymnasium env, an Atari env and a search."""


def wall_s(command: list[str]) -> float:
    """Seconds ``command`` takes from start to exit; it must succeed."""
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def median_s(command: list[str], repeats: int) -> float:
    """The median of :func:`wall_s` over ``repeats`` fresh processes."""
    return statistics.median(wall_s(command) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per command")
    parser.add_argument("--files", nargs="+", default=list(FILES), help="job names under jobs/")
    args = parser.parse_args()
    python_s = median_s([sys.executable, "-c", "pass"], args.repeats)
    torch_s = median_s([sys.executable, "-c", "import torch"], args.repeats)
    validate: dict[str, float] = {}
    for name in args.files:
        validate[name] = median_s([sys.executable, "-m", "skate", "validate", f"jobs/{name}.yaml"], args.repeats)
        print(json.dumps({"file": f"jobs/{name}.yaml", "validate_s": round(validate[name], 3),
                          "ratio_to_torch": round(validate[name] / torch_s, 2)}), flush=True)
    print(json.dumps({"benchmark": "validate_time", "repeats": args.repeats, "python_s": round(python_s, 3),
                      "import_torch_s": round(torch_s, 3),
                      "validate_s": {name: round(s, 3) for name, s in validate.items()},
                      "ratio_to_torch": {name: round(s / torch_s, 2) for name, s in validate.items()}}))


if __name__ == "__main__":
    main()
