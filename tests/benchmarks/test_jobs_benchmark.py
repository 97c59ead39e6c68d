"""``benchmarks/jobs.py``: a row for every job file and variant, an unknown row refused, and one real
row (the 3-second MDP job, no Ray) read back from its run directory."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from load_benchmark import load

REPO = Path(__file__).resolve().parents[2]
JOBS = REPO / "jobs"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load("jobs", name="benchmark_jobs")


def test_a_row_per_job_file_and_variant(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--list"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    names = [row["row"] for row in listed]
    stems = sorted(path.stem for path in JOBS.glob("*.yaml"))
    variants = [row.name for row in bench.VARIANTS]
    assert stems and variants
    assert names == stems + variants
    for row in listed:
        assert (JOBS / f"{row['job']}.yaml").exists()
        verb = "tune" if row["job"].startswith("tune_") else "run"
        assert row["command"].startswith(f"skate {verb} jobs/{row['job']}.yaml")
    by_name = {row["row"]: row for row in listed}
    assert by_name["pretrained_classifier_scratch_all_labels"]["overrides"] == [
        "model.pretrain_epochs=0", "model.freeze_encoder=false", "model.labelled_fraction=1.0"]
    assert by_name["pretrained_classifier_scratch_10pct"]["overrides"] == [
        "model.pretrain_epochs=0", "model.freeze_encoder=false"]


def test_a_new_job_file_gets_a_row(bench: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "zz_new.yaml").write_text("name: zz_new\n")
    assert [row.name for row in bench.rows(tmp_path)] == ["zz_new", *(row.name for row in bench.VARIANTS)]


def test_an_unknown_row_is_refused(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        bench.main(["--only", "nonexistent"])
    assert exit.value.code != 0
    err = capsys.readouterr().err
    assert "nonexistent" in err and "mdp_q_value_iteration" in err and "pretrained_classifier_scratch_10pct" in err


def test_the_mdp_row_runs(bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SKATE_ROOT", str(tmp_path / "root"))
    keep = tmp_path / "kept"
    assert bench.main(["--only", "mdp_q_value_iteration", "--keep", str(keep)]) == 0
    row, summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["row"] == row["job"] == "mdp_q_value_iteration" and row["status"] == "completed"
    assert row["wall_s"] > 0 and row["duration_s"] is not None
    q_values = row["final"]["q_values"]
    assert len(q_values) == 3 and all(len(line) == 3 for line in q_values)
    assert row["final"]["policy"] == [0, 2, 1]
    assert (keep / "mdp_q_value_iteration" / "summary.json").exists()
    assert summary["benchmark"] == "jobs"
    assert list(summary["rows"]) == ["mdp_q_value_iteration"]
    assert summary["rows"]["mdp_q_value_iteration"]["q_values"] == q_values
