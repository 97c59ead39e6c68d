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

The generator's state can also be a save behind the trials': it then hands out again a trial Tune
restored (the same id and, from the same random state, the same configuration), and the search
runs one trial more than ``num_samples`` (seen in a test: 4 trials of 3). So a restored generator
reads which trials Tune restored (the experiment state beside its own) and skips those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune.execution.tune_controller import TuneController
from ray.tune.search.basic_variant import BasicVariantGenerator

from skate.search.tune_state import trial_states


class LimitedVariantGenerator(BasicVariantGenerator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._completed: set[str] = set()  # trials heard completed: a late result does not count them again
        self._restored: set[str] = set()  # the trials Tune restored: never handed out again

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._live_trials = set()
        self._completed = set(state.get("_completed", ()))

    def restore_from_dir(self, dirpath: str) -> None:
        super().restore_from_dir(dirpath)
        self._restored = restored_trials(Path(dirpath))

    def next_trial(self) -> Any:
        while True:
            trial = super().next_trial()
            if trial is None or trial.trial_id not in self._restored:
                return trial
            self._live_trials.discard(trial.trial_id)  # Tune runs it as restored: it counts once it reports

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id not in self._completed:
            self._live_trials.add(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        super().on_trial_complete(trial_id, result, error)
        self._completed.add(trial_id)


def restored_trials(folder: Path) -> set[str]:
    """The ids of the trials in the newest experiment state in ``folder`` (Tune's driver staging
    folder, where Tune restores the generator from: the state Tune restored its trials from is
    there too), or none."""
    states = sorted(folder.glob(TuneController.CKPT_FILE_TMPL.format("*")))
    return set(trial_states(states[-1].read_text())) if states else set()
