"""The scripts of ``benchmarks/`` as modules, for their tests (they are scripts, not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(script: str, *, name: str | None = None) -> ModuleType:
    """``benchmarks/<script>.py`` as the module ``name`` (default: the script's), with ``benchmarks/``
    on ``sys.path`` for the script's own imports (``harness``, ``ps_arms``)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    name = name or script
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import would: what the module defines can find it
    spec.loader.exec_module(module)
    return module
