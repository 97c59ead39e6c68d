"""Speed of the seed's Ms. Pac-Man Q-network (skate.rl.qnetwork.SeedQNetwork) on each device here.

For the CPU with one torch thread (what skate gives RLlib's main process), the CPU with all its
threads, and CUDA when torch sees a GPU:
- ``update``: one DQN learner step on a batch of replayed transitions (the online network on the
  observations, the target network on the next ones, Huber loss on the chosen actions' TD error,
  backward, Adam), updates/s;
- ``act``: the greedy action of one frame (the env runner's forward pass), actions/s.

Each device's figures are also given as a ratio to the one-thread CPU, measured in the same run.

    .venv/bin/python benchmarks/dqn_network.py [--seconds 3] [--batch 32]

The last line is a summary: {"batch": .., "update_per_s": {"cpu_1_thread": .., "cpu": .., "cuda": ..},
"act_per_s": {...the same keys...}, "update_ratio": {...}, "act_ratio": {...}}
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from typing import Callable

import torch
from torch.nn import functional as F

from skate.rl.qnetwork import DEFAULT_INPUT_SHAPE, SeedQNetwork

NUM_ACTIONS, GAMMA = 9, 0.99


def rate(step: Callable[[], None], device: torch.device, seconds: float) -> float:
    """Calls of ``step`` per second over about ``seconds``, after a warm-up (device work included)."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(5):
        step()
    sync()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            step()
        calls += 10
        sync()
    return calls / (time.perf_counter() - start)


def measure(device: torch.device, *, batch: int, seconds: float) -> dict[str, float]:
    """``update`` and ``act`` rates of the seed's network on ``device``."""
    torch.manual_seed(0)
    online = SeedQNetwork(NUM_ACTIONS).to(device)
    target = copy.deepcopy(online)
    optimizer = torch.optim.Adam(online.parameters(), lr=2.5e-4)
    frames = lambda n: torch.rand(n, *DEFAULT_INPUT_SHAPE, device=device) * 2 - 1  # noqa: E731
    obs, next_obs = frames(batch), frames(batch)
    actions = torch.randint(NUM_ACTIONS, (batch,), device=device)
    rewards, done = torch.rand(batch, device=device), torch.zeros(batch, device=device)
    one_frame = frames(1)

    def update() -> None:
        with torch.no_grad():
            q_target = rewards + GAMMA * (1 - done) * target(next_obs).max(dim=1).values
        q = online(obs).gather(1, actions[:, None]).squeeze(1)
        loss = F.huber_loss(q, q_target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def act() -> None:
        online(one_frame).argmax(dim=1)

    return {"update": rate(update, device, seconds), "act": rate(act, device, seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per figure (default 3)")
    parser.add_argument("--batch", type=int, default=32, help="transitions per update (default 32, the seed's)")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    setups: dict[str, tuple[torch.device, int]] = {"cpu_1_thread": (torch.device("cpu"), 1),
                                                   "cpu": (torch.device("cpu"), threads)}
    if torch.cuda.is_available():
        setups["cuda"] = (torch.device("cuda"), threads)
    figures: dict[str, dict[str, float]] = {}
    for name, (device, num_threads) in setups.items():
        torch.set_num_threads(num_threads)
        figures[name] = measure(device, batch=args.batch, seconds=args.seconds)
        print(json.dumps({"setup": name, "threads": num_threads, **{k: round(v, 1) for k, v in figures[name].items()},
                          **({"gpu": torch.cuda.get_device_name()} if device.type == "cuda" else {})}), flush=True)
    torch.set_num_threads(threads)
    base = figures["cpu_1_thread"]
    summary = {"batch": args.batch,
               **{f"{kind}_per_s": {name: round(f[kind], 1) for name, f in figures.items()} for kind in ("update", "act")},
               **{f"{kind}_ratio": {name: round(f[kind] / base[kind], 2) for name, f in figures.items()}
                  for kind in ("update", "act")}}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
