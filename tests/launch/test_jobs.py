"""What ``skate submit`` sends, and following a job's logs to their last line (no cluster)."""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest

from skate.errors import SkateError, SpecError
from skate.launch import jobs

from skate.runs.signing import cluster_env

from conftest import JOBS, REPO


def test_a_submission_runs_skate_on_the_spec_with_the_working_directory_and_skate() -> None:
    submission = jobs.prepare(JOBS / "digits_rnn.yaml", ["train.epochs=2"], working_dir=REPO, storage="s3://b/skate")
    command = shlex.split(submission.entrypoint)
    name = command[command.index("--name") + 1]
    assert command == ["python", "-m", "skate", "run", "jobs/digits_rnn.yaml", "--name", name,
                       "--set", "train.epochs=2", "--storage", "s3://b/skate"]
    assert re.fullmatch(r"digits_rnn-\d{8}-\d{6}", name)
    assert submission.kind == "run" and submission.location == f"s3://b/skate/{name}"
    env = submission.runtime_env
    assert env["working_dir"] == str(REPO) and "/runs/*/" in env["excludes"] and ".venv/" in env["excludes"]
    assert env["py_modules"] == [str(REPO / "platform" / "skate")]
    assert env["env_vars"] == cluster_env()  # the cluster signs with its own key, and no key travels
    assert submission.submission_id.startswith("skate-digits_rnn-")
    described = submission.describe("http://127.0.0.1:8265")
    assert "entrypoint:   python -m skate run jobs/digits_rnn.yaml" in described and "MB" in described


def test_a_spec_with_a_search_runs_skate_tune_into_a_named_experiment() -> None:
    submission = jobs.prepare(JOBS / "tune_digits_rnn.yaml", ["search.num_samples=2"], working_dir=REPO)
    command = shlex.split(submission.entrypoint)
    name = command[command.index("--name") + 1]
    assert command[:5] == ["python", "-m", "skate", "tune", "jobs/tune_digits_rnn.yaml"]
    assert command[5:] == ["--name", name, "--set", "search.num_samples=2"] and name.startswith("tune-")
    assert submission.kind == "experiment" and submission.location.startswith(f"runs/{name} ")
    assert f"experiment:   runs/{name}" in submission.describe("http://127.0.0.1:8265")


def test_a_search_that_does_not_fit_the_job_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(SpecError, match=r"^--set: search.scheduler.max_t: 99 is more than the job's train.epochs"):
        jobs.prepare(JOBS / "tune_digits_rnn.yaml", ["search.scheduler.max_t=99"], working_dir=REPO)


def test_an_invalid_spec_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(SpecError, match="epocs"):
        jobs.prepare(JOBS / "digits_rnn.yaml", ["train.epocs=2"], working_dir=REPO)


def test_a_spec_outside_the_working_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SkateError, match="outside the working directory"):
        jobs.prepare(JOBS / "digits_rnn.yaml", [], working_dir=tmp_path)


def test_requirements_txt_travels(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("einops\n")
    (tmp_path / "job.yaml").write_text((JOBS / "digits_rnn.yaml").read_text())
    assert jobs.prepare(tmp_path / "job.yaml", [], working_dir=tmp_path).runtime_env["pip"] == str(tmp_path / "requirements.txt")


class FakeClient:
    """A job whose logs grow by a chunk per status read, the last one without a newline."""

    def __init__(self, chunks: list[str]) -> None:
        self.chunks, self.reads = chunks, 0

    def get_job_status(self, job_id: str) -> SimpleNamespace:
        self.reads += 1
        return SimpleNamespace(value="RUNNING" if self.reads < len(self.chunks) else "FAILED")

    def get_job_logs(self, job_id: str) -> str:
        return "".join(self.chunks[: self.reads])


def test_following_prints_every_line_to_the_last_and_returns_the_status() -> None:
    out = io.StringIO()
    status = jobs.follow(FakeClient(["epoch 1\n", "epoch 2\nTraceb", "ack: boom"]), "j", out=out, poll_s=0)
    assert status == "FAILED" and jobs.EXIT_CODES[status] == 1
    assert out.getvalue() == "epoch 1\nepoch 2\nTraceback: boom\n"


class StreamingClient(FakeClient):
    """A job whose logs stream in chunks (the websocket closes as it ends); reading them whole fails."""

    async def tail_job_logs(self, job_id: str):
        for chunk in self.chunks:
            yield chunk
        self.reads = len(self.chunks)  # ended

    def get_job_status(self, job_id: str) -> SimpleNamespace:
        return SimpleNamespace(value="SUCCEEDED" if self.reads >= len(self.chunks) else "RUNNING")

    def get_job_logs(self, job_id: str) -> str:
        raise AssertionError("the logs were downloaded again instead of streamed")


def test_following_streams_the_logs_when_the_cluster_offers_it() -> None:
    out = io.StringIO()
    assert jobs.follow(StreamingClient(["epoch 1\n", "epoch 2\nTraceb", "ack: boom"]), "j", out=out) == "SUCCEEDED"
    assert out.getvalue() == "epoch 1\nepoch 2\nTraceback: boom\n"


def test_the_jobs_table_shows_the_newest_first() -> None:
    def info(name: str, start: int) -> SimpleNamespace:
        return SimpleNamespace(submission_id=name, job_id=None, status=SimpleNamespace(value="SUCCEEDED"),
                               start_time=start, end_time=start + 5000, entrypoint="python -m skate run " + "x" * 80)
    table = jobs.jobs_table([info("old", 1_000_000), info("new", 2_000_000)])
    lines = table.splitlines()
    assert lines[2].startswith("new") and lines[3].startswith("old") and "5 s" in lines[2] and "…" in lines[2]


@pytest.mark.parametrize(("files", "command"), [
    ({"spec.yaml": "", "summary.json": "{}"}, "run"),
    ({"spec.yaml": "", "experiment.json": "{}"}, "tune"),
])
def test_a_resumed_submission_continues_what_the_storage_holds(tmp_path: Path, files: dict[str, str],
                                                               command: str) -> None:
    stored = tmp_path / "stored" / "digits_rnn-20261205-101500"
    stored.mkdir(parents=True)
    for name, text in files.items():
        (stored / name).write_text(text)
    submission = jobs.prepare_resume(str(stored), working_dir=REPO, wait_for_nodes_s=60)
    assert shlex.split(submission.entrypoint) == ["python", "-m", "skate", command, "--resume", str(stored),
                                                  "--wait-for-nodes", "60"]
    assert submission.location == str(stored) and submission.submission_id.startswith("skate-digits_rnn-20261205-101500-")
    assert submission.kind == ("experiment" if command == "tune" else "run")


def test_verbose_passes_to_the_jobs_skate_command(tmp_path: Path) -> None:
    stored = tmp_path / "digits_rnn-20261205-101500"
    stored.mkdir()
    (stored / "spec.yaml").write_text("")
    (stored / "summary.json").write_text("{}")
    assert shlex.split(jobs.prepare_resume(str(stored), working_dir=REPO, verbose=True).entrypoint)[-1] == "--verbose"
    assert "--verbose" not in jobs.prepare_resume(str(stored), working_dir=REPO).entrypoint


def test_resuming_where_nothing_resumable_is_kept_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SkateError, match=r"no skate run or search to resume there \(neither experiment.json nor "
                                         r"summary.json\)"):
        jobs.prepare_resume(str(tmp_path), working_dir=REPO)
