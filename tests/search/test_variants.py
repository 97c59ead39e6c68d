"""The random and grid generator's limit on running trials, before and after a resume."""

from __future__ import annotations

import json
from pathlib import Path

from ray import tune

from skate.search.variants import LimitedVariantGenerator


def trainable(config: dict) -> None:
    pass


def generator() -> LimitedVariantGenerator:
    made = LimitedVariantGenerator(random_state=0, max_concurrent=1)
    made.add_configurations({"search": {"run": trainable, "config": {"x": tune.uniform(0, 1)}, "num_samples": 3}})
    return made


def test_the_limit_holds_until_a_trial_completes() -> None:
    made = generator()
    first = made.next_trial()
    assert first is not None and made.next_trial() is None
    made.on_trial_complete(first.trial_id)
    assert made.next_trial() is not None


def test_a_restored_generator_holding_a_trial_tune_restored_as_finished_still_hands_out_trials() -> None:
    killed = generator()
    stale = killed.next_trial()  # running when its state was saved, finished in the trials' later save
    state = killed.get_state()
    restored = generator()
    restored.set_state(state)
    assert stale.trial_id in state["_live_trials"]
    assert restored.next_trial() is not None  # BasicVariantGenerator would give None here for ever


def test_a_restored_generator_counts_a_running_trial_again_once_it_reports() -> None:
    restored = generator()
    restored.set_state(generator().get_state())
    restored.on_trial_result("resumed", {"score": 1.0})
    assert restored.next_trial() is None
    restored.on_trial_complete("resumed")
    handed = restored.next_trial()
    assert handed is not None
    restored.on_trial_result("resumed", {"score": 1.0})  # a late result of the finished trial
    restored.on_trial_complete(handed.trial_id)
    assert restored.next_trial() is not None  # the late result did not count "resumed" again


def test_a_generator_restored_from_a_save_behind_the_trials_skips_the_trials_tune_restored(tmp_path: Path) -> None:
    killed = generator()
    first = killed.next_trial()
    killed.on_trial_complete(first.trial_id)
    killed.save_to_dir(str(tmp_path), session_str="2026-12-06_21-00-00")  # the generator's last save copied
    second = killed.next_trial()  # in the trials' later save, not in the generator's
    trials = [[json.dumps({"trial_id": trial.trial_id, "status": status}), "{}"]
              for trial, status in ((first, "TERMINATED"), (second, "RUNNING"))]
    (tmp_path / "experiment_state-2026-12-06_21-00-00.json").write_text(json.dumps({"trial_data": trials}))
    restored = generator()
    restored.restore_from_dir(str(tmp_path))
    restored.on_trial_result(second.trial_id, {"score": 1.0})  # Tune runs the second as restored
    restored.on_trial_complete(second.trial_id)
    third = restored.next_trial()
    assert third is not None and third.trial_id not in (first.trial_id, second.trial_id)
    restored.on_trial_complete(third.trial_id)
    assert restored.next_trial() is None and restored.is_finished()  # 3 trials in all, as num_samples asks
