from __future__ import annotations

import pytest

from skate.errors import SpecError
from skate.spec import load_spec

from conftest import JOBS

PS = "train.strategy.kind=parameter_server"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.strategy.num_workers=0"], "train.strategy.num_workers: expected an integer > 0, got 0"),
        (["train.strategy.staleness=2"], "train.strategy: staleness is the ssp bound; mode is 'sync'"),
        (["train.strategy.mode=ssp"], "train.strategy: mode ssp needs staleness"),
        (["train.strategy.mode=async", "train.strategy.backup_workers=1"], "backup_workers applies to mode sync only"),
        (["train.strategy.backup_workers=2"], "backup_workers (2) must be fewer than num_workers (2)"),
        (["train.strategy.stale_policy=drop", "train.strategy.mode=async"], "stale_policy drop and max_staleness go together"),
        (["train.strategy.compression=fp8"], "train.strategy.compression: unknown value 'fp8'"),
        (["train.strategy.authenticate_messages=sometimes"], "train.strategy.authenticate_messages: unknown value 'sometimes'"),
        (["train.strategy.mode=asynch"], "unknown value 'asynch' (did you mean 'async'?)"),
        (["train.strategy.overlap=true"], "overlap needs mode async or ssp"),
        (["train.strategy.mode=async", "train.strategy.transport=compiled_graph"],
         "transport compiled_graph needs mode sync without backup_workers"),
        (["train.strategy.num_workers=3", "train.strategy.backup_workers=1", "train.strategy.transport=compiled_graph"],
         "transport compiled_graph needs mode sync without backup_workers"),
    ],
)
def test_bad_parameter_server_settings_are_named(overrides: list[str], expected: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(JOBS / "digits_rnn.yaml", [PS, *overrides])
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_defaults() -> None:
    strategy = load_spec(JOBS / "digits_rnn.yaml", [PS]).train.strategy
    assert (strategy.mode, strategy.num_workers, strategy.num_shards, strategy.compression) == ("sync", 2, 1, "none")
    assert strategy.authenticate_messages == "auto"
    assert not strategy.overlaps
    assert load_spec(JOBS / "digits_rnn.yaml", [PS, "train.strategy.mode=async"]).train.strategy.overlaps


@pytest.mark.parametrize(("overrides", "sockets", "compiles"), [
    ([], True, False),
    (["train.strategy.mode=async"], True, False),
    (["train.strategy.transport=actor_calls"], False, False),
    (["train.strategy.transport=compiled_graph"], False, True),
])
def test_workers_push_on_sockets_by_default(overrides: list[str], sockets: bool, compiles: bool) -> None:
    strategy = load_spec(JOBS / "digits_rnn.yaml", [PS, *overrides]).train.strategy
    assert (strategy.uses_sockets, strategy.compiles) == (sockets, compiles)
