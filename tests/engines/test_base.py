"""Merging the metrics of an epoch's segments."""

from __future__ import annotations

import pytest

from skate.engines.base import combine


def test_combine_weights_means_by_examples_and_adds_totals() -> None:
    parts = [
        {"train/loss": 1.0, "perf/epoch_s": 2.0, "perf/epoch_samples": 100.0, "perf/samples_per_s": 50.0,
         "ps/dropped_gradients": 1.0, "faults/rollbacks": 0.0},
        {"train/loss": 4.0, "perf/epoch_s": 1.0, "perf/epoch_samples": 50.0, "perf/samples_per_s": 50.0,
         "ps/dropped_gradients": 2.0, "faults/rollbacks": 1.0},
    ]
    merged = combine(parts)
    assert merged["train/loss"] == pytest.approx(2.0)
    assert merged["perf/epoch_s"] == 3.0 and merged["perf/epoch_samples"] == 150.0
    assert merged["perf/samples_per_s"] == pytest.approx(50.0)
    assert merged["ps/dropped_gradients"] == 3.0 and merged["faults/rollbacks"] == 1.0


def test_combine_of_one_segment_is_that_segment() -> None:
    part = {"train/loss": 0.5, "perf/epoch_samples": 10.0}
    assert combine([part]) == part and combine([part]) is not part


def test_a_streams_wait_and_rows_add_up_over_segments_and_give_its_rate() -> None:
    parts = [{"perf/epoch_s": 2.0, "perf/epoch_samples": 100.0, "data/wait_s": 0.5, "data/rows": 100.0},
             {"perf/epoch_s": 3.0, "perf/epoch_samples": 150.0, "data/wait_s": 1.0, "data/rows": 150.0}]
    merged = combine(parts)
    assert merged["data/wait_s"] == 1.5 and merged["data/rows"] == 250.0 and merged["data/rows_per_s"] == 50.0
    assert combine(parts[:1])["data/rows_per_s"] == 50.0
