"""A job spec is data: it cannot make skate run code or write outside the run root."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from skate.errors import SpecError
from skate.spec import load_spec, load_spec_data

from conftest import REPO

SOURCE = REPO / "platform" / "skate"
BASE = {"name": "x", "data": {"source": "digits"}, "model": {"kind": "rnn_classifier"}}
BUILTINS = {"eval", "exec", "compile", "__import__"}
IMPORTERS = {"import_module", "import_attr", "run_path", "run_module"}
ALLOWED = {("plugins.py", "load")}
"""Where skate imports code by name: installed packages' entry points (``entry.load()``), never a spec."""


def dynamic_calls(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in BUILTINS:
                found.append((func.id, node.lineno))
            elif isinstance(func, ast.Attribute) and (func.attr in IMPORTERS or (func.attr == "load" and path.name == "plugins.py")):
                found.append((func.attr, node.lineno))
    return found


def test_skate_evaluates_or_imports_nothing_by_name_but_entry_points() -> None:
    calls = {(path.name, name): line for path in SOURCE.rglob("*.py") for name, line in dynamic_calls(path)}
    assert set(calls) <= ALLOWED, f"code run or imported by name: {calls}"
    assert set(calls) == ALLOWED  # the one allowed place is still found: the check is looking


def test_python_tags_in_yaml_run_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\ndata: {{source: digits}}\n"
                    "model: {kind: rnn_classifier}\n")
    with pytest.raises(SpecError):
        load_spec(spec)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["os.system", "subprocess:run", "builtins.eval", "__import__"])
def test_a_model_kind_is_a_registered_name_never_an_import_path(kind: str) -> None:
    with pytest.raises(SpecError, match="unknown model"):
        load_spec_data({**BASE, "model": {"kind": kind}})


@pytest.mark.parametrize(("section", "value", "problem"), [
    ("name", "../escape", "name"),
    ("name", "/etc/cron.d/x", "name"),
    ("checkpoint", {"location": "../outside"}, "checkpoint.location"),
    ("checkpoint", {"location": "/abs/path"}, "checkpoint.location"),
    ("checkpoint", {"location": "file:///etc"}, "checkpoint: location: a file:// URI would write outside the run root"),
    ("checkpoint", {"location": "local:///etc"}, "checkpoint: location: a local:// URI would write outside the run root"),
    ("checkpoint", {"location": "FILE:///etc"}, "checkpoint: location: a FILE:// URI would write outside the run root"),
    ("logging", {"mlflow": True, "mlflow_tracking_uri": "sqlite:///../../mlflow.db"}, "logging.mlflow_tracking_uri"),
    ("logging", {"mlflow": True, "mlflow_tracking_uri": "/tmp/mlruns"}, "logging.mlflow_tracking_uri"),
])
def test_no_output_path_in_a_spec_leaves_the_run_root(section: str, value: object, problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        load_spec_data({**BASE, section: value})


def test_remote_outputs_are_still_allowed() -> None:
    spec = load_spec_data({**BASE, "checkpoint": {"location": "s3://bucket/ckpts"},
                           "logging": {"mlflow": True, "mlflow_tracking_uri": "https://mlflow.example.com"}})
    assert spec.checkpoint.location == "s3://bucket/ckpts"
