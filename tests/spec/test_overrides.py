"""``--set`` that follows variants: switching a variant's kind drops the old kind's fields with a
note, a field of another kind is named as such, a misspelt selector is named with its did-you-mean,
and a quoted part of a key may hold dots (search-space entries)."""

from __future__ import annotations

import pytest

from skate.config.yamlio import split_key
from skate.errors import SpecError, SpecNote
from skate.spec import load_spec

from conftest import JOBS

PS_JOB = JOBS / "digits_rnn_ps.yaml"


def test_switching_the_strategy_kind_drops_the_old_kinds_fields_and_says_which() -> None:
    with pytest.warns(SpecNote, match=r"^--set train.strategy.kind=allreduce: dropped mode, num_shards \(fields of "
                                      r"strategy 'parameter_server'\)$"):
        spec = load_spec(PS_JOB, ["train.strategy.kind=allreduce"])
    assert spec.train.strategy.kind == "allreduce" and spec.train.strategy.num_workers == 2


def test_a_field_set_with_the_switch_is_kept_and_refused_when_the_new_kind_lacks_it() -> None:
    with pytest.raises(SpecError) as error, pytest.warns(SpecNote):
        load_spec(PS_JOB, ["train.strategy.kind=allreduce", "train.strategy.mode=sync"])
    assert error.value.problems == ["--set: train.strategy.mode: a field of strategy 'parameter_server', not of "
                                    "'allreduce' (set kind: parameter_server, or leave mode out)"]


def test_a_field_of_another_kind_in_the_file_is_named_as_that_kinds(tmp_path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text((JOBS / "digits_rnn.yaml").read_text().replace("    kind: single\n", "    kind: single\n    mode: sync\n"))
    with pytest.raises(SpecError) as error:
        load_spec(job)
    assert error.value.problems == [f"{job}:24: train.strategy.mode: a field of strategy 'parameter_server', not of "
                                    "'single' (set kind: parameter_server, or leave mode out)"]


def test_a_misspelt_selector_is_named_with_its_did_you_mean(tmp_path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text((JOBS / "digits_rnn.yaml").read_text().replace("  source: digits", "  sourcex: digits"))
    with pytest.raises(SpecError) as error:
        load_spec(job)
    (problem,) = error.value.problems
    assert problem.startswith(f"{job}:8: data.sourcex: unknown key (did you mean 'source'?); it names the data source")


@pytest.mark.parametrize(("key", "parts"), [
    ("train.epochs", ("train", "epochs")),
    ('search.space."train.optimizer.lr".max', ("search", "space", "train.optimizer.lr", "max")),
    ("a..b", ()), ('"a.b', ()), ('a."b"c', ()),
])
def test_a_quoted_part_of_a_key_holds_dots(key: str, parts: tuple[str, ...]) -> None:
    assert split_key(key) == parts


def test_a_search_space_entry_is_reached_through_a_quoted_key() -> None:
    spec = load_spec(JOBS / "tune_digits_rnn.yaml", ['search.space."train.optimizer.lr".max=0.05'])
    assert spec.search.space["train.optimizer.lr"].max == 0.05  # type: ignore[union-attr]
