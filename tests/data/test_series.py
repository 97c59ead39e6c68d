"""The seed's time series, cut into windows whose target is the window one step later."""

from __future__ import annotations

import numpy as np
import pytest

from skate.data import info_of, to_numpy
from skate.data.series import TimeSeriesConfig, series


def test_windows_follow_the_series_and_targets_are_shifted_one_step() -> None:
    config = TimeSeriesConfig(num_windows=50, num_steps=20)
    table = config.load()
    x, y = to_numpy(table)
    info = info_of(table)
    assert info.x_shape == (20, 1) and info.y_shape == (20, 1) and info.num_classes is None
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    # every window lies on the series: recover its start time by search and compare
    t = np.arange(config.t_min, config.t_max, 0.0001)
    values = series(t)
    for window in x[:5, :, 0]:
        start = t[np.argmin(np.abs(values - window[0]) + np.abs(series(t + 0.1) - window[1]))]
        np.testing.assert_allclose(series(start + 0.1 * np.arange(20)), window, atol=2e-3)


def test_the_seed_fixes_the_windows() -> None:
    a, b = TimeSeriesConfig(num_windows=5).load(), TimeSeriesConfig(num_windows=5).load()
    c = TimeSeriesConfig(num_windows=5, window_seed=1).load()
    assert a.equals(b) and not a.equals(c)


def test_a_window_longer_than_the_time_range_is_refused() -> None:
    with pytest.raises(ValueError, match="must be longer than a window"):
        TimeSeriesConfig(t_min=0.0, t_max=1.0, num_steps=20)
