"""Job specs from YAML files: the shipped jobs, overrides, round trips and every kind of user mistake."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

import pytest

from skate.data.sources import DigitsConfig
from skate.engines import OptimizerConfig
from skate.engines.single import SingleStrategyConfig
from skate.errors import SpecError
from skate.models.rnn import RnnClassifierConfig
from skate.spec import CheckpointConfig, JobSpec, TrainConfig, dump_spec, load_spec, load_spec_data
from skate.data import DATA_SOURCES
from skate.models import MODELS

KNOWN_MODELS = ", ".join(MODELS.names())
KNOWN_SOURCES = ", ".join(DATA_SOURCES.names())

REPO = Path(__file__).resolve().parents[2]
JOBS = sorted((REPO / "jobs").glob("*.yaml"))

TINY = """\
# A tiny job; the tests below rely on its line numbers.
name: tiny
description: smallest valid job
seed: 1
data:
  source: digits
  validation_fraction: 0.2
model:
  kind: rnn_classifier
  num_units: 8
train:
  batch_size: 16
  epochs: 2
  optimizer:
    lr: 0.01
"""
TINY_SPEC = JobSpec(
    name="tiny", description="smallest valid job", seed=1, data=DigitsConfig(validation_fraction=0.2),
    model=RnnClassifierConfig(num_units=8), train=TrainConfig(batch_size=16, epochs=2, optimizer=OptimizerConfig(lr=0.01)),
)
TRAIN_KEYS = ("epochs, batch_size, optimizer, strategy, eval_every_epochs, eval_every_steps, early_stopping, clip_norm, "
              "clip_value, refuse_grad_norm, precision")
NAME_RULE = "a name of letters, digits, '_', '-' and '.', starting with a letter or digit"

WriteJob = Callable[[str], str]


def edit(text: str, *changes: tuple[str, str]) -> str:
    """``text`` with each (old, new) replaced; each old must occur exactly once."""
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def spec_problems(path: str, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(path, overrides)
    return caught.value.problems


@pytest.fixture
def write_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WriteJob:
    """Writes a spec as jobs/x.yaml in a fresh working directory and returns that relative path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jobs").mkdir()

    def write(text: str) -> str:
        (tmp_path / "jobs" / "x.yaml").write_text(text, encoding="utf-8")
        return "jobs/x.yaml"

    return write


def test_digits_rnn_loads_as_written() -> None:
    assert load_spec(REPO / "jobs" / "digits_rnn.yaml") == JobSpec(
        name="digits_rnn",
        description="BasicRNN(150) sequence classifier on 8x8 digits, rows as time steps",
        seed=42,
        data=DigitsConfig(validation_fraction=0.15, test_fraction=0.15, split_seed=0),
        model=RnnClassifierConfig(cell="basic", num_units=150),
        train=TrainConfig(epochs=100, batch_size=150, optimizer=OptimizerConfig(name="adam", lr=0.001),
                          strategy=SingleStrategyConfig()),
        checkpoint=CheckpointConfig(every_epochs=5, keep_last=2),
    )


@pytest.mark.parametrize("job", JOBS, ids=lambda p: p.name)
def test_every_shipped_job_loads_and_survives_a_round_trip(job: Path, tmp_path: Path) -> None:
    spec = load_spec(job)
    copy = tmp_path / job.name
    copy.write_text(dump_spec(spec), encoding="utf-8")
    assert load_spec(copy) == spec
    assert dump_spec(load_spec(copy)) == dump_spec(spec)


def test_tiny_job_loads_with_defaults_filled_in(write_job: WriteJob) -> None:
    assert load_spec(write_job(TINY)) == TINY_SPEC


def test_round_trip_of_a_spec_that_sets_every_optional_field(write_job: WriteJob) -> None:
    overrides = ["checkpoint.best_metric=val/loss", "checkpoint.best_mode=min", "model.cell=lstm",
                 "train.optimizer.eps=1e-10", "train.strategy.num_gpus=0.5", "data.scale=unit"]
    spec = load_spec(write_job(TINY), overrides)
    assert load_spec(write_job(dump_spec(spec))) == spec


def test_round_trip_of_a_string_that_looks_like_a_yaml_1_2_float(write_job: WriteJob) -> None:
    spec = dataclasses.replace(TINY_SPEC, description="1e3")
    assert load_spec(write_job(dump_spec(spec))) == spec


def test_override_sets_a_value_and_leaves_the_rest(write_job: WriteJob) -> None:
    spec = load_spec(write_job(TINY), ["train.epochs=3"])
    assert spec == dataclasses.replace(TINY_SPEC, train=dataclasses.replace(TINY_SPEC.train, epochs=3))


def test_overrides_create_keys_and_sections_the_file_leaves_out(write_job: WriteJob) -> None:
    spec = load_spec(write_job(TINY), ["checkpoint.keep_last=5", "train.strategy.num_gpus=1", "model.num_layers=2"])
    assert (spec.checkpoint, spec.train.strategy, spec.model.num_layers) == (
        CheckpointConfig(keep_last=5), SingleStrategyConfig(num_gpus=1.0), 2)


@pytest.mark.parametrize("override, expected", [
    ("train.epoch=3", f"--set: train.epoch: unknown key (did you mean 'epochs'?); expected one of: {TRAIN_KEYS}"),
    ("train.epochs=0", "--set: train.epochs: expected an integer > 0, got 0"),
    ("model.kind=lstm", f"--set: model.kind: unknown model 'lstm'; known: {KNOWN_MODELS}"),
    ("train.epochs", "--set train.epochs: expected KEY=VALUE with a dotted key, e.g. train.epochs=3 (a part with dots in "
                     'double quotes: search.space."train.optimizer.lr".max=0.1)'),
    ("name.first=a", "--set name.first: name is not a mapping"),
    ("checkpoint.every_steps=0", "--set: checkpoint.every_steps: expected an integer > 0, got 0"),
    ("checkpoint.location=/tmp/ckpts", "--set: checkpoint.location: expected a URI such as s3://bucket/path, got '/tmp/ckpts'"),
    ("checkpoint.location=file:///etc", "jobs/x.yaml: checkpoint: location: a file:// URI would write outside the run root; "
                                        "local checkpoints always go to the run directory (choose where with 'skate run --root')"),
])
def test_a_bad_override_is_reported_as_set_on_the_command_line(write_job: WriteJob, override: str,
                                                               expected: str) -> None:
    assert spec_problems(write_job(TINY), [override]) == [expected]


@pytest.mark.parametrize("old, new, expected", [
    ("batch_size: 16", "batch_size: -5", "jobs/x.yaml:12: train.batch_size: expected an integer > 0, got -5"),
    ("epochs: 2", "epoch: 2",
     f"jobs/x.yaml:13: train.epoch: unknown key (did you mean 'epochs'?); expected one of: {TRAIN_KEYS}"),
    ("seed: 1", "sed: 1", "jobs/x.yaml:4: sed: unknown key (did you mean 'seed'?); "
                          "expected one of: name, description, seed, data, model, train, checkpoint, logging, search"),
    ("kind: rnn_classifier", "kind: rnn_clasifier",
     f"jobs/x.yaml:9: model.kind: unknown model 'rnn_clasifier' (did you mean 'rnn_classifier'?); known: {KNOWN_MODELS}"),
    ("source: digits", "source: digit",
     f"jobs/x.yaml:6: data.source: unknown data source 'digit' (did you mean 'digits'?); known: {KNOWN_SOURCES}"),
    ("  source: digits\n", "", f"jobs/x.yaml:5: data.source: missing required key; expected one of: {KNOWN_SOURCES}"),
    ("model:\n  kind: rnn_classifier\n  num_units: 8\n", "", "jobs/x.yaml: model: missing required key (a mapping)"),
    ("num_units: 8", "num_units: 8\n  cell: lstn",
     "jobs/x.yaml:11: model.cell: unknown value 'lstn' (did you mean 'lstm'?); expected one of 'basic', 'lstm', 'gru'"),
    ("epochs: 2", "epochs: '2'", "jobs/x.yaml:13: train.epochs: expected an integer, got '2'"),
    ("epochs: 2", "epochs: true", "jobs/x.yaml:13: train.epochs: expected an integer, got True"),
    ("epochs: 2", "epochs: 2.0", "jobs/x.yaml:13: train.epochs: expected an integer, got 2.0"),
    ("epochs: 2", "epochs:", "jobs/x.yaml:13: train.epochs: expected an integer, got None"),
    ("lr: 0.01", "lr: fast", "jobs/x.yaml:15: train.optimizer.lr: expected a number, got 'fast'"),
    ("lr: 0.01", "lr: false", "jobs/x.yaml:15: train.optimizer.lr: expected a number, got False"),
    ("description: smallest valid job", "description: 3", "jobs/x.yaml:3: description: expected a string, got 3"),
    ("name: tiny", "name: [tiny]", "jobs/x.yaml:2: name: expected a string, got ['tiny']"),
    ("seed: 1", "seed: -1", "jobs/x.yaml:4: seed: expected an integer >= 0, got -1"),
    ("validation_fraction: 0.2", "validation_fraction: .nan",
     "jobs/x.yaml:7: data.validation_fraction: expected a number >= 0 and < 1, got nan"),
    ("validation_fraction: 0.2", "validation_fraction: 0.2\n  test_fraction: 0.8",
     "jobs/x.yaml:5: data: validation_fraction + test_fraction must leave examples to train on (< 1)"),
    (TINY[TINY.index("train:"):], "train: 5\n", "jobs/x.yaml:11: train: expected a mapping (TrainConfig), got 5"),
    ("name: tiny\n", "name: tiny\nname: other\n", "jobs/x.yaml:3: name: duplicated key"),
    ("epochs: 2", "epochs: [2", "jobs/x.yaml:14: malformed YAML: expected ',' or ']', but got ':'"),
])
def test_a_mistake_is_reported_with_file_line_and_dotted_path(write_job: WriteJob, old: str, new: str,
                                                              expected: str) -> None:
    assert spec_problems(write_job(edit(TINY, (old, new)))) == [expected]


def test_fractions_that_leave_examples_to_train_on_are_accepted(write_job: WriteJob) -> None:
    spec = load_spec(write_job(edit(TINY, ("validation_fraction: 0.2", "validation_fraction: 0.5\n  test_fraction: 0.49"))))
    assert (spec.data.validation_fraction, spec.data.test_fraction) == (0.5, 0.49)


def test_several_problems_are_all_reported_at_once(write_job: WriteJob) -> None:
    text = edit(TINY, ("batch_size: 16", "batch_size: -5"), ("epochs: 2", "epoch: 2"),
                ("kind: rnn_classifier", "kind: rnn_clasifier"), ("seed: 1", "seed: x"))
    assert spec_problems(write_job(text), ["train.optimizer.lr=0"]) == [
        "jobs/x.yaml:4: seed: expected an integer, got 'x'",
        f"jobs/x.yaml:9: model.kind: unknown model 'rnn_clasifier' (did you mean 'rnn_classifier'?); known: {KNOWN_MODELS}",
        f"jobs/x.yaml:13: train.epoch: unknown key (did you mean 'epochs'?); expected one of: {TRAIN_KEYS}",
        "jobs/x.yaml:12: train.batch_size: expected an integer > 0, got -5",
        "--set: train.optimizer.lr: expected a number > 0, got 0.0",
    ]


@pytest.mark.parametrize("text", ["", "# nothing\n", "- name: tiny\n", "tiny\n"])
def test_a_file_that_is_not_a_mapping(write_job: WriteJob, text: str) -> None:
    assert spec_problems(write_job(text)) == ["jobs/x.yaml: expected a mapping of sections (name, data, model, train, ...)"]


def test_a_missing_file(write_job: WriteJob) -> None:
    assert spec_problems("jobs/nope.yaml") == ["jobs/nope.yaml: no such file"]


@pytest.mark.parametrize("name", ["a", "digits_rnn", "9lives", "job-1.v2_X"])
def test_valid_job_names(write_job: WriteJob, name: str) -> None:
    assert load_spec(write_job(edit(TINY, ("name: tiny", f"name: {json.dumps(name)}")))).name == name


@pytest.mark.parametrize("name", [
    "", "-x", ".hidden", "_x", "a b", "a/b", "café", "job\n",
])
def test_invalid_job_names(write_job: WriteJob, name: str) -> None:
    problems = spec_problems(write_job(edit(TINY, ("name: tiny", f"name: {json.dumps(name)}"))))
    assert problems == [f"jobs/x.yaml:2: name: expected {NAME_RULE}, got {name!r}"]


def test_load_spec_data_labels_problems_without_a_file_and_keeps_its_input() -> None:
    data = {"name": "x", "data": {"source": "digits"}, "model": {"kind": "rnn_classifier"}}
    with pytest.raises(SpecError) as caught:
        load_spec_data(data, overrides=["train.batch_size=0"])
    assert caught.value.problems == ["--set: train.batch_size: expected an integer > 0, got 0"]
    assert data == {"name": "x", "data": {"source": "digits"}, "model": {"kind": "rnn_classifier"}}
    assert load_spec_data({**data, "seed": -1}, overrides=["seed=2"]).seed == 2
    with pytest.raises(SpecError) as caught:
        load_spec_data([data])
    assert caught.value.problems == ["<spec>: expected a mapping of sections (name, data, model, train, ...)"]
