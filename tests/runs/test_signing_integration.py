"""A session on a cluster signs with the cluster's key, in the driver and in the cluster's processes
alike, with no key in any environment; this machine refuses what it signed until ``skate trust``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
import ray

from skate.cluster import ray_session
from skate.rl.checkpoints import seal, verify
from skate.runs.checkpoint import CorruptCheckpoint
from skate.runs.signing import SOURCE_ENV, local_key, signing_key
from skate.runs.trust import trust_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """A one-node cluster of its own, which this process is not yet a driver of."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        yield cluster.address
    finally:
        cluster.shutdown()


@ray.remote(num_cpus=0)
def sign_on_the_cluster(folder: str) -> tuple[str | None, str, bool]:
    """Seal a checkpoint in ``folder`` from a process of the cluster; what that process signed with."""
    Path(folder, "algorithm_state.pkl").write_bytes(b"state")
    seal(Path(folder), {"iteration": 1})
    return os.environ.get(SOURCE_ENV), signing_key().id, any(signing_key().secret.hex() in v for v in os.environ.values())


def test_the_cluster_signs_with_its_own_key_and_this_machine_trusts_it_only_when_told(
        address: str, tmp_path: Path) -> None:
    folder = tmp_path / "run" / "checkpoints" / "iter-000001"
    folder.mkdir(parents=True)
    with ray_session(address, quiet=True):
        source, worker_key, exposed = ray.get(sign_on_the_cluster.remote(str(folder)))
        driver_key = signing_key()
        assert verify(folder) == {"iteration": 1}
    assert source == "cluster" and not exposed
    assert worker_key == driver_key.id != local_key().id and driver_key.where == "the cluster's key"
    assert SOURCE_ENV not in os.environ  # this machine's key again, after the session
    with pytest.raises(CorruptCheckpoint, match=f"signed with key {worker_key}, not this machine's key"):
        verify(folder)
    assert trust_run(tmp_path / "run", local_key(), confirm=lambda question: True, say=lambda line: None) == 0
    assert verify(folder) == {"iteration": 1}
