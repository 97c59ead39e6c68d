"""Reading which trials Ray Tune's experiment state holds."""

from __future__ import annotations

import json

from skate.search.tune_state import trial_states


def test_trial_states_are_read_by_id_from_entries_with_or_without_their_metadata() -> None:
    text = json.dumps({"trial_data": [[json.dumps({"trial_id": "a", "status": "TERMINATED"}), "{}"],
                                      json.dumps({"trial_id": "b", "status": "PENDING"})]})
    assert trial_states(text) == {"a": "TERMINATED", "b": "PENDING"}


def test_a_state_with_no_trials_holds_none() -> None:
    assert trial_states(json.dumps({"runner_data": {}})) == {}
