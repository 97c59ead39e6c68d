"""An RL job's actors on the cluster: room for them before RLlib starts, and where they went.

RLlib places its env runners and learners itself. skate first reserves what they will ask for
(:func:`skate.capacity.room_for`: the autoscaler is asked, the impossible refused, the wait
bounded), then frees the room for RLlib and records, in the run's events log, which actor runs on
which node.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from typing import TYPE_CHECKING, Any, Iterator

import ray

from skate.capacity import Bundle, cuda_usable, room_for
from skate.engines.placement import placed_event

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig


def actor_bundles(config: "AlgorithmConfig") -> list[Bundle]:
    """What RLlib's actors (env runners, learners) reserve: its resource request without the first
    bundle, the algorithm's main process, which is this driver and no actor."""
    request = config.algo_class.default_resource_request(config)
    return [dict(one) for one in (request.bundles or [])[1:] if any(one.values())]


@contextlib.contextmanager
def rl_room(config: "AlgorithmConfig", *, what: str) -> Iterator[float]:
    """Wait for room for RLlib's actors; the block builds the algorithm. Yields how long it waited.
    In a search trial, the trial's placement group holds that room already.

    Where Ray grants the learners GPUs that torch cannot see (a CPU build of torch, a cluster that
    simulates GPUs), the learners train on the CPU and meet by gloo, with a warning, as the other
    engines do."""
    from ray.util import get_current_placement_group

    bundles = actor_bundles(config)
    wants_cuda = bool(bundles and config.num_learners and config.num_gpus_per_learner)
    trial = get_current_placement_group()
    if not bundles or trial is not None:
        with _learners_where_cuda(config, not wants_cuda or cuda_usable(trial)):
            yield 0.0
        return
    with room_for(bundles, what=what) as room:
        cuda = not wants_cuda or room.cuda_usable()
        room.remove()
        with _learners_where_cuda(config, cuda):
            yield room.waited_s


@contextlib.contextmanager
def _learners_where_cuda(config: "AlgorithmConfig", cuda: bool) -> Iterator[None]:
    """The block as it is where torch sees the GPUs Ray grants the learners; else with the learners
    on the CPU, meeting by gloo, and a warning."""
    if cuda:
        yield
        return
    warnings.warn(f"Ray grants each learner {config.num_gpus_per_learner:g} GPU, but torch there sees no CUDA "
                  "device: the learners train on the CPU and meet by gloo", RuntimeWarning, stacklevel=4)
    config.training(learner_class=_on_the_cpu(config.learner_class))
    with _gloo_learners():
        yield


def _on_the_cpu(learner_class: type) -> type:
    """``learner_class`` on the CPU where RLlib would put it on a GPU that torch cannot see."""

    class OnTheCPU(learner_class):  # type: ignore[valid-type,misc]
        @property
        def _device(self) -> Any:
            return self.__dict__.get("_skate_device")

        @_device.setter
        def _device(self, device: Any) -> None:
            import torch

            if device is not None and torch.device(device).type == "cuda" and not torch.cuda.is_available():
                device = torch.device("cpu")
            self.__dict__["_skate_device"] = device

    OnTheCPU.__name__ = OnTheCPU.__qualname__ = learner_class.__name__
    return OnTheCPU


@contextlib.contextmanager
def _gloo_learners() -> Iterator[None]:
    """RLlib's learner group with gloo in place of NCCL while the block runs. RLlib picks NCCL for
    learners with GPUs and offers no setting; its private factory of that choice is wrapped here."""
    from ray.rllib.core.learner import learner_group

    original = learner_group._get_backend_config

    def gloo(learner_class: Any) -> Any:
        backend = original(learner_class)
        backend.backend = "gloo"
        return backend

    learner_group._get_backend_config = gloo
    try:
        yield
    finally:
        learner_group._get_backend_config = original


def _node_id(_: Any) -> str:
    return ray.get_runtime_context().get_node_id()


def placement(algo: Any, *, waited_s: float) -> dict[str, Any]:
    """The events-log entry naming the node of each env runner and learner actor."""
    nodes: dict[str, str] = {}
    runners = getattr(algo, "env_runner_group", None)
    if runners is not None and runners.num_remote_env_runners():
        for index, node in enumerate(runners.foreach_env_runner(_node_id, local_env_runner=False)):
            nodes[f"env runner {index + 1}"] = node
    learners = getattr(algo, "learner_group", None)
    if learners is not None and not learners.is_local:
        for index, result in enumerate(learners.foreach_learner(_node_id)):
            if result.ok:
                nodes[f"learner {index}"] = result.get()
    event = placed_event(nodes, where=(0, 0), waited_s=waited_s)
    event["time"] = time.time()
    return event
