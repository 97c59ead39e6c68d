"""The random and grid generator's limit on running trials, before and after a resume."""

from __future__ import annotations

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
