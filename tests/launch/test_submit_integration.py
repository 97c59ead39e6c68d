"""``skate submit``, ``logs``, ``status``, ``stop`` and ``jobs`` against a real Ray head started here
(``ray start --head`` on 127.0.0.1 with a dashboard and token authentication), torn down after."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from skate.cli import main
from skate.launch.connect import jobs_client
from skate.launch import jobs
from skate.launch.jobs import status_of
from skate.launch.localhead import LocalHead, free_port

from conftest import REPO

pytestmark = pytest.mark.integration
SLOW_SETUP = '''
import asyncio
from ray._private.runtime_env.plugin import RuntimeEnvPlugin


class SlowSetup(RuntimeEnvPlugin):
    """A runtime environment that takes ``slow_setup`` seconds to set up, as a pip install would."""

    name = "slow_setup"

    async def create(self, uri, runtime_env, context, logger):
        await asyncio.sleep(float(runtime_env["slow_setup"]))
        return 0
'''


@pytest.fixture(scope="module")
def local_head(tmp_path_factory: pytest.TempPathFactory, s3: str) -> Iterator[LocalHead]:
    """A Ray head of its own, which knows a runtime-environment plugin that takes seconds to set up,
    and whose jobs reach the tests' S3 server (started first: the head takes its environment)."""
    plugins = tmp_path_factory.mktemp("plugins")
    (plugins / "slow_setup.py").write_text(SLOW_SETUP)
    with LocalHead(env={"PYTHONPATH": str(plugins),
                        "RAY_RUNTIME_ENV_PLUGINS": '[{"class": "slow_setup.SlowSetup"}]'}) as local:
        yield local


@pytest.fixture
def head(local_head: LocalHead) -> str:
    return local_head.dashboard


@pytest.fixture
def token(local_head: LocalHead, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", local_head.token)
    monkeypatch.chdir(REPO)


def test_submit_follows_the_job_to_succeeded_and_its_run_is_in_storage(
        head: str, token: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    streamed: list[str] = []
    tail = jobs._tail

    async def streaming(client: Any, job_id: str, written: Any) -> None:  # the logs came over the websocket
        await tail(client, job_id, written)
        streamed.append(job_id)

    monkeypatch.setattr(jobs, "_tail", streaming)
    storage = tmp_path / "storage"
    code = main(["submit", "jobs/digits_rnn.yaml", "--set", "train.epochs=2", "--address", head,
                 "--storage", str(storage), "--follow"])
    out = capsys.readouterr().out
    job_id = re.search(r"submitted (\S+) to", out).group(1)  # type: ignore[union-attr]
    assert code == 0 and out.rstrip().endswith(f"job {job_id}: SUCCEEDED") and streamed == [job_id]
    assert "learning curves: " in out  # the job's last line, followed to the end
    [run] = [p for p in storage.iterdir() if p.name.startswith("digits_rnn-")]
    assert f"run directory: {run}\n" in out  # said before the job started
    assert (run / "metrics.parquet").is_file() and '"status": "completed"' in (run / "summary.json").read_text()
    assert main(["runs", "--storage", str(storage)]) == 0 and run.name in capsys.readouterr().out
    assert main(["status", job_id, "--address", head]) == 0 and "SUCCEEDED" in capsys.readouterr().out
    assert main(["jobs", "--address", head]) == 0 and job_id in capsys.readouterr().out
    assert main(["status", job_id, "--address", head, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["job"] == job_id and record["status"] == "SUCCEEDED" and "runtime_env" not in record
    assert main(["jobs", "--address", head, "--json"]) == 0
    assert job_id in [job["job"] for job in json.loads(capsys.readouterr().out)]
    assert main(["logs", job_id, "--address", head]) == 0 and "learning curves: " in capsys.readouterr().out


def test_a_spec_with_a_search_is_searched_on_the_cluster_with_a_line_per_trial_in_its_logs(
        head: str, token: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["submit", "jobs/tune_digits_rnn.yaml", "--address", head, "--storage", str(tmp_path), "--follow",
                 "--set", "train.epochs=1", "--set", "search.num_samples=2", "--set", "search.scheduler={kind: fifo}",
                 "--set", "checkpoint.every_epochs=1"])
    out = capsys.readouterr().out
    [experiment] = list(tmp_path.iterdir())
    assert code == 0 and f"experiment directory: {experiment}\n" in out and experiment.name.startswith("tune-")
    assert len(re.findall(r"^trial \S+ ended at epoch 1: best val/accuracy 0\.\d+ \(", out, re.M)) == 2, out
    assert "\x1b[" not in out  # no cursor moves in a log
    state = json.loads((experiment / "experiment.json").read_text())
    assert state["status"] == "completed" and (experiment / "best.yaml").is_file()


def test_the_python_api_submits_and_follows(head: str, token: None, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import skate

    job_id = skate.submit("jobs/digits_rnn.yaml", overrides=["train.epochs=1"], address=head, storage=str(tmp_path),
                          follow=True)
    assert status_of(jobs_client(head), job_id) == "SUCCEEDED"
    assert "learning curves: " in capsys.readouterr().out
    assert [p.name.startswith("digits_rnn-") for p in tmp_path.iterdir()] == [True]


def test_a_running_job_is_stopped(head: str, token: None, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["submit", "jobs/digits_rnn.yaml", "--address", head, "--storage", str(tmp_path)]) == 0
    job_id = re.search(r"submitted (\S+) to", capsys.readouterr().out).group(1)  # type: ignore[union-attr]
    client = jobs_client(head)
    deadline = time.monotonic() + 60
    while status_of(client, job_id) != "RUNNING":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.5)
    assert main(["stop", job_id, "--address", head]) == 0
    assert capsys.readouterr().out.strip() == f"job {job_id}: STOPPED"


def test_a_pending_job_is_stopped_once_its_runtime_environment_is_ready(
        head: str, token: None, capsys: pytest.CaptureFixture[str]) -> None:
    client = jobs_client(head)
    job_id = client.submit_job(entrypoint="sleep 120", runtime_env={"slow_setup": 6})
    assert status_of(client, job_id) == "PENDING"
    assert main(["stop", job_id, "--address", head]) == 0
    assert capsys.readouterr().out.strip() == f"job {job_id}: STOPPED"


def test_a_pending_job_that_cannot_start_is_explained(head: str, token: None, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = jobs_client(head).submit_job(entrypoint="echo never", entrypoint_num_cpus=64)
    assert main(["stop", job_id, "--address", head, "--timeout", "2"]) == 1
    assert "is still PENDING after 2 s: its supervisor has not started" in capsys.readouterr().err


def test_a_wrong_or_missing_token_is_a_clear_refusal(head: str, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", "not-the-token")
    assert main(["jobs", "--address", head]) == 1
    err = capsys.readouterr().err
    assert "refused the authentication token from RAY_AUTH_TOKEN" in err and "Traceback" not in err
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "no-token-here"))
    assert main(["submit", str(REPO / "jobs/digits_rnn.yaml"), "--working-dir", str(REPO), "--address", head]) == 1
    assert "requires an authentication token and none was found" in capsys.readouterr().err


def test_an_address_where_nothing_listens_fails_fast(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    assert main(["jobs", "--address", f"http://127.0.0.1:{free_port()}"]) == 1
    assert time.monotonic() - started < 10
    assert "cannot reach the Ray dashboard at http://127.0.0.1:" in capsys.readouterr().err


def test_a_run_stopped_on_the_cluster_continues_there_from_its_storage(
        head: str, token: None, s3: str, capsys: pytest.CaptureFixture[str]) -> None:
    from skate.runs.remote import local_copy
    from skate.runs.verify import run_problems

    assert main(["submit", "jobs/digits_rnn.yaml", "--address", head, "--storage", f"{s3}/cluster",
                 "--set", "train.epochs=12"]) == 0
    out = capsys.readouterr().out
    job_id = re.search(r"submitted (\S+) to", out).group(1)  # type: ignore[union-attr]
    uri = re.search(r"run directory: (\S+)", out).group(1)  # type: ignore[union-attr]
    deadline = time.monotonic() + 120
    while "epoch" not in jobs_client(head).get_job_logs(job_id) or not _stored(f"{uri}/metrics.parquet"):
        assert time.monotonic() < deadline, "the job recorded no epoch"
        time.sleep(0.5)
    assert main(["stop", job_id, "--address", head]) == 0
    capsys.readouterr()

    assert main(["submit", "--resume", uri, "--address", head, "--follow"]) == 0
    out = capsys.readouterr().out
    assert f"python -m skate run --resume {uri}" in jobs_client(head).get_job_info(
        re.search(r"submitted (\S+) to", out).group(1)).entrypoint  # type: ignore[union-attr]
    copy = local_copy(uri)
    assert json.loads((copy / "summary.json").read_text())["status"] == "completed" and run_problems(copy) == []


def _stored(uri: str) -> bool:
    import pyarrow.fs as pafs

    filesystem, path = pafs.FileSystem.from_uri(uri)
    return filesystem.get_file_info(path).type == pafs.FileType.File
