"""Reading Ray Tune's experiment state (``experiment_state-<session>.json``): which trials it holds."""

from __future__ import annotations

import json


def trial_states(text: str) -> dict[str, str]:
    """Each trial's status (``TERMINATED``, ``RUNNING``...) in an experiment state's JSON ``text``,
    by trial id."""
    states = {}
    for entry in json.loads(text).get("trial_data", []):
        trial = json.loads(entry[0] if isinstance(entry, list) else entry)
        states[trial["trial_id"]] = trial["status"]
    return states
