"""Random and grid search with a limit on the trials running at once that survives a resume.

Ray Tune's :class:`~ray.tune.search.basic_variant.BasicVariantGenerator` counts its running trials
by the ids it handed out, less those it heard completed, and saves that set with its state. Tune
copies its state files to storage one by one in the background, so a driver killed mid-copy can
leave the generator's state from another save than the trials' (skate's signed state accepts the
save before, see :mod:`skate.search.signed_state`). Restored, the set can then hold a trial that
Tune restored as finished, whose completion it never hears again: with ``max_concurrent`` reached,
the generator hands out no trial and is never finished, and the resumed search waits for ever.

So a restored generator forgets those ids, and counts a trial again once it reports a result. A
trial Tune restores unfinished is therefore not counted until its first result, and in that
moment one more trial than the limit may start.
"""

from __future__ import annotations

from typing import Any

from ray.tune.search.basic_variant import BasicVariantGenerator


class LimitedVariantGenerator(BasicVariantGenerator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._completed: set[str] = set()  # trials heard completed: a late result does not count them again

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._live_trials = set()
        self._completed = set(state.get("_completed", ()))

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id not in self._completed:
            self._live_trials.add(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        super().on_trial_complete(trial_id, result, error)
        self._completed.add(trial_id)
