"""``skate validate`` and ``skate show`` check every job in ``jobs/`` without importing torch or Ray
(nor tensorboardX, scikit-learn or MLflow): the gate asks each config what it knows without them."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import JOBS, REPO

HEAVY = ("torch", "ray", "tensorboardX", "sklearn", "mlflow")

SCRIPT = """
import contextlib, io, json, sys
from skate.cli import main

files = sys.argv[1:]
with contextlib.redirect_stdout(io.StringIO()):
    codes = [main(["validate", *files])] + [main(["show", path]) for path in files]
print(json.dumps({"codes": codes, "loaded": [name for name in HEAVY if name in sys.modules]}))
"""


def test_validating_and_showing_every_job_imports_neither_torch_nor_ray() -> None:
    files = [str(path.relative_to(REPO)) for path in sorted(JOBS.glob("*.yaml"))]
    assert len(files) > 10
    done = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{SCRIPT}", *files], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"codes": [0] * (1 + len(files)), "loaded": []}, done.stderr
