"""``benchmarks/ps_gpu.py``: its arms share the GPU out by worker count, and its summary's medians."""

from __future__ import annotations

from load_benchmark import load

ps_gpu = load("ps_gpu")
ps_arms = load("ps_arms")


def test_workers_share_one_gpu_and_the_big_model_has_two_shards() -> None:
    for bench, n, shards in ((ps_arms.SEED, 1, 1), (ps_arms.SEED, 2, 1), (ps_arms.BIG, 2, 2)):
        made = {name: make() for name, make in ps_gpu.arms(bench, n, 5).items()}
        assert sorted(made) == ["allreduce", "ps_async", "ps_sync"]
        assert [made[name].config.gpus_per_worker for name in sorted(made)] == [1 / n] * 3
        assert (made["ps_sync"].config.mode, made["ps_async"].config.mode) == ("sync", "async")
        assert made["ps_sync"].config.num_shards == shards == made["ps_async"].config.num_shards


def test_the_summary_takes_medians_over_rounds_by_model_and_worker_count() -> None:
    rounds = [{"seed_n1": {"ps_sync": 0.9, "allreduce": 1.0}}, {"seed_n1": {"ps_sync": 0.7, "allreduce": 0.8}},
              {"seed_n1": {"ps_sync": 0.8, "allreduce": 1.2}}]
    out = ps_gpu.summary(rounds, {"seed_n1": {"ps_sync": [10.0, 30.0, 20.0]}}, "a gpu")
    assert out["device"] == "a gpu"
    assert out["ratios"] == {"seed_n1": {"ps_sync": 0.8, "allreduce": 1.0}}
    assert out["examples_per_s"] == {"seed_n1": {"ps_sync": 20.0}}
    assert [r["seed_n1"]["ps_sync"] for r in out["rounds"]] == [0.9, 0.7, 0.8]
