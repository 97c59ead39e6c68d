"""Run and experiment directories on a real S3 API (moto's server on 127.0.0.1): a run mirrored to
``s3://skate-test/runs`` is listed, reported and verified from there; a run and a search whose
drivers are killed mid-way resume from the URI, and nothing recorded is lost; a URI with nothing
there, and an endpoint that does not answer, are one clear line each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import torch

from skate.cli import main
from skate.launch.localhead import free_port
from skate.runner import run_job
from skate.spec import load_spec
from skate.uri import join, open_location

from conftest import JOBS, REPO

pytestmark = pytest.mark.integration


def s3_json(uri: str) -> dict:
    filesystem, path = pafs.FileSystem.from_uri(uri)
    try:
        with filesystem.open_input_stream(path) as stream:
            return json.loads(stream.read())
    except (OSError, ValueError):  # not there yet, or being written
        return {}


def s3_rows(uri: str) -> int:
    filesystem, path = pafs.FileSystem.from_uri(uri)
    try:
        return pq.read_table(path, filesystem=filesystem).num_rows
    except (OSError, ValueError):
        return 0


def killed_when(command: list[str], ready: Callable[[], bool], *, root: Path, limit_s: float = 240) -> None:
    """Start ``skate COMMAND`` (its local directories under ``root``), and SIGKILL it (as a machine
    that dies would) once ``ready()``."""
    proc = subprocess.Popen([sys.executable, "-m", "skate", *command], cwd=REPO, env={**os.environ, "SKATE_ROOT": str(root)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + limit_s
        while not ready():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the driver never got far enough"
            time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()


def skate(*argv: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """``skate ARGV`` to its end (a resume works in the download cache). One still running after
    ``timeout_s`` fails the test with every thread's stack (faulthandler, on SIGABRT) and its output."""
    command = [sys.executable, "-m", "skate", *argv]
    proc = subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        pytest.fail(f"skate {' '.join(argv)} still ran after {timeout_s:.0f} s; its stacks and output:\n"
                    f"{err[-20000:]}\n{out[-5000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def test_a_run_mirrored_to_s3_is_listed_reported_and_verified_from_there(
        ray_local: None, s3: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=2"])
    result = run_job(spec, root=tmp_path, progress=False, storage=f"{s3}/runs", name="mirrored")
    assert result.status == "completed"
    uri = f"{s3}/runs/mirrored"
    assert main(["runs", "--storage", f"{s3}/runs"]) == 0
    assert "mirrored" in (listing := capsys.readouterr().out) and "completed" in listing
    assert main(["report", uri]) == 0
    report = capsys.readouterr().out
    final = s3_json(f"{uri}/summary.json")["final"]
    assert f"test/accuracy  {final['test/accuracy']:.4g}" in report and "learning curves: " in report
    assert main(["verify", uri]) == 0 and "whole" in capsys.readouterr().out


def test_a_run_mirrored_to_gcs_is_listed_reported_and_verified_from_there(
        ray_local: None, gcs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=2"])
    assert run_job(spec, root=tmp_path, progress=False, storage=join(gcs, "runs"), name="mirrored").status == "completed"
    uri = join(gcs, "runs", "mirrored")
    assert main(["runs", "--storage", join(gcs, "runs")]) == 0
    assert "mirrored" in (listing := capsys.readouterr().out) and "completed" in listing
    assert main(["report", uri]) == 0 and "test/accuracy  " in capsys.readouterr().out
    assert main(["verify", uri]) == 0 and "whole" in capsys.readouterr().out


def test_a_run_whose_driver_is_killed_resumes_from_s3_and_loses_nothing(ray_local: None, s3: str, tmp_path: Path) -> None:
    uri = f"{s3}/runs/killed"
    killed_when(["run", str(JOBS / "digits_rnn.yaml"), "--storage", f"{s3}/runs", "--name", "killed",
                 "--set", "train.epochs=8", "--set", "checkpoint.every_steps=3", "--no-progress"],
                lambda: s3_rows(f"{uri}/metrics.parquet") >= 2, root=tmp_path)
    assert s3_json(f"{uri}/summary.json")["status"] == "running"
    resumed = skate("run", "--resume", uri, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert s3_json(f"{uri}/summary.json")["status"] == "completed"  # the resumed run mirrored to the same URI
    epochs = pq.read_table(pafs.FileSystem.from_uri(f"{uri}/metrics.parquet")[1],
                           filesystem=pafs.FileSystem.from_uri(uri)[0]).column("epoch").to_pylist()
    assert epochs == list(range(1, 9)), (epochs, resumed.stderr[-2000:])
    verified = skate("verify", uri)
    assert verified.returncode == 0, verified.stdout  # every epoch once, no restart back past a checkpoint


def test_a_search_whose_driver_is_killed_resumes_from_s3(ray_local: None, s3: str, tmp_path: Path) -> None:
    uri = f"{s3}/searches/tune-killed"

    def finished() -> list[str]:
        filesystem, path = pafs.FileSystem.from_uri(f"{uri}/trials")
        names = [info.base_name for info in filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))]
        return [n for n in names if s3_json(f"{uri}/trials/{n}/summary.json").get("status") == "completed"]

    def saved_as_done(trial: str) -> bool:  # in the Tune state the mirror has copied, which a resume reads
        filesystem, path = pafs.FileSystem.from_uri(f"{uri}/tune")
        states = sorted(i.path for i in filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
                        if i.base_name.startswith("experiment_state"))
        trials = s3_json(f"s3://{states[-1]}").get("trial_data", []) if states else []
        return any(json.loads(state).get("trial_id") == trial and json.loads(state).get("status") == "TERMINATED"
                   for state, *_ in trials)

    overrides = ["train.epochs=2", "search.num_samples=3", "search.max_concurrent_trials=1",
                 "search.scheduler={kind: fifo}", "checkpoint.every_epochs=1"]
    killed_when(["tune", str(JOBS / "tune_digits_rnn.yaml"), "--storage", f"{s3}/searches", "--name", "tune-killed",
                 "--no-progress", *[f"--set={o}" for o in overrides]],
                lambda: any(saved_as_done(trial) for trial in finished()), root=tmp_path)
    done_before = finished()
    resumed = skate("tune", "--resume", uri, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "search completed: 3 trials (3 completed)" in resumed.stdout, resumed.stdout
    assert s3_json(f"{uri}/experiment.json")["status"] == "completed"
    assert set(done_before) < set(finished()) and len(finished()) == 3


@pytest.mark.parametrize(("where", "expected"), [
    ("runs/nothing-here", "{uri}: nothing there (no such run directory, or an empty one)"),
    ("loose", "{uri}: not a skate run or experiment directory (no spec.yaml there)"),
])
def test_a_uri_without_a_run_is_one_line_naming_it(s3: str, capsys: pytest.CaptureFixture[str], where: str,
                                                    expected: str) -> None:
    filesystem, path = pafs.FileSystem.from_uri(f"{s3}/loose/notes.txt")
    with filesystem.open_output_stream(path) as stream:
        stream.write(b"not a run")
    uri = f"{s3}/{where}"
    assert main(["report", uri]) == 1
    assert capsys.readouterr().err.strip() == f"skate: error: {expected.format(uri=uri)}"


def test_an_endpoint_that_does_not_answer_is_one_line_naming_it(s3: str, capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    assert main(["verify", f"{s3}/runs/mirrored"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"skate: error: {s3}/runs/mirrored: cannot reach the storage endpoint ({endpoint}; ")
    assert len(err.splitlines()) == 1


def stored_run(s3: str, local: Path, name: str) -> str:
    """A run directory with three supervised checkpoints and three RL ones (the newest of each
    altered in storage after it was written), mirrored to ``<s3>/runs/<name>``."""
    from skate.rl.checkpoints import seal
    from skate.runs.checkpoint import Checkpointer
    from skate.runs.mirror import RunMirror

    local.mkdir()
    (local / "spec.yaml").write_text("name: stored\n")
    (local / "summary.json").write_text('{"status": "failed"}')
    checkpoints = Checkpointer(local / "checkpoints", keep_last=3)
    for step in (3, 6, 9):
        checkpoints.save(step, {"model": {"w": torch.full((4,), float(step))}})
    for iteration in (1, 2, 3):
        folder = local / "trials" / "t1" / "checkpoints" / f"iter-{iteration}"
        folder.mkdir(parents=True)
        (folder / "state.pkl").write_bytes(bytes([iteration]) * 64)
        seal(folder, {"training_iteration": iteration})
    uri = join(s3, "runs", name)
    RunMirror(local, uri).sync()
    for altered in ("checkpoints/ckpt-000000009.pt", "trials/t1/checkpoints/iter-3/state.pkl"):
        filesystem, path = open_location(join(uri, altered))
        with filesystem.open_output_stream(path) as stream:
            stream.write(b"altered")
    return uri


@pytest.mark.parametrize("api", ["s3", "gcs"])
def test_a_resume_fetches_the_records_and_only_the_newest_checkpoint_that_passes(api: str, tmp_path: Path,
                                                                                 request: pytest.FixtureRequest) -> None:
    from skate.runs.remote import resumable_copy

    uri = stored_run(request.getfixturevalue(api), tmp_path / "run", "partial")
    copy = resumable_copy(uri)
    fetched = {p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert {"spec.yaml", "summary.json", "checkpoints/manifest.json"} <= fetched
    # The newest of each failed its checks, so the one before it was fetched too; the oldest was not.
    assert {name for name in fetched if "ckpt-" in name} == {"checkpoints/ckpt-000000009.pt", "checkpoints/ckpt-000000006.pt"}
    assert {name.split("/")[3] for name in fetched if "/iter-" in name} == {"iter-3", "iter-2"}
    filesystem, path = open_location(join(uri, "checkpoints/ckpt-000000003.pt"))  # storage keeps every checkpoint
    assert filesystem.get_file_info(path).type == pafs.FileType.File


@pytest.mark.parametrize("wrong", ["key id", "secret"])
def test_credentials_the_server_refuses_are_one_line_naming_them(s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str], wrong: str) -> None:
    import boto3
    from moto import settings

    stored_run(s3, tmp_path / "run", f"guarded-{wrong[0]}")
    iam = boto3.client("iam", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    iam.create_user(UserName=f"skate-{wrong[0]}")
    key = iam.create_access_key(UserName=f"skate-{wrong[0]}")
    known = key["AccessKey"]["AccessKeyId"]  # a key id moto knows, for the wrong secret
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto checks keys and signatures from now on
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0" if wrong == "key id" else known)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    uri = f"{s3}/runs/guarded-{wrong[0]}"
    assert main(["verify", uri]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"skate: error: {uri}: the credentials were refused (AWS_ACCESS_KEY_ID"), err
    assert len(err.splitlines()) == 1
