"""``benchmarks/ps_throughput.py``'s summary: the medians, every round's ratios, and the targets at
two workers judged round by round."""

from __future__ import annotations

from load_benchmark import load

ps_throughput = load("ps_throughput")


def _round(sync: float, asynchronous: float, allreduce: float, driver: float) -> dict[str, dict[str, float]]:
    arms = {"ps_sync": sync, "ps_async": asynchronous, "allreduce": allreduce, "driver_loop_ps": driver}
    return {"n1": dict(arms), "n2": dict(arms)}


def test_a_target_is_met_only_in_the_rounds_where_both_hold() -> None:
    rounds = [_round(0.72, 0.84, 0.73, 0.50), _round(0.80, 0.84, 0.73, 0.70), _round(0.76, 0.80, 0.72, 0.50)]
    rates = {key: {"ps_sync": [1.0], "single": [2.0]} for key in ("n1", "n2", "big")}
    out = ps_throughput.summary(rounds, [], rates, {"ps_sync": 228124.0}, {}, {"seed_n2_ps_sync": [4.0, 5.0]})
    targets = [(r["ps_sync"]["met"], r["ps_async"]["met"]) for r in out["n2_targets"]]
    # round 1: sync under allreduce; round 2: sync under 1.3 x the driver loop (0.80 < 0.91); round 3: both hold
    assert targets == [(False, True), (False, False), (True, True)]
    assert out["n2_targets"][0]["ps_sync"]["over_allreduce"] == round(0.72 / 0.73, 3)
    assert out["ratios"]["n2"]["ps_sync"] == 0.76 and out["spread"]["n2"]["ps_sync"] == [0.72, 0.8]
    assert [r["n2"]["ps_sync"] for r in out["rounds"]] == [0.72, 0.8, 0.76]
    assert out["n1"] == {"ps_sync": 1.0, "single": 2.0} and out["startup_s"] == {"seed_n2_ps_sync": 4.5}
    assert out["bytes_per_worker_step"] == 228124 and "big" not in out
