"""The CLI's answers to bad input: one clear line, a non-zero exit, no traceback (no Ray needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skate.cli import main
from skate.errors import SkateError

from conftest import JOBS


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return str(path)


GOOD = (JOBS / "digits_rnn.yaml").read_text()


@pytest.mark.parametrize(
    ("text", "argv", "expected"),
    [
        ("name: x\ndata: {source: digits\n", [], ":3: malformed YAML"),
        (GOOD.replace("kind: rnn_classifier", "kind: rnn_clasifier"), [], "model.kind: unknown model 'rnn_clasifier' (did you mean 'rnn_classifier'?)"),
        (GOOD.replace("source: digits", "source: digitz"), [], "data.source: unknown data source 'digitz' (did you mean 'digits'?)"),
        (GOOD.replace("batch_size: 150", "batch_size: -150"), [], "train.batch_size: expected an integer > 0, got -150"),
        (GOOD, ["--set", "train.epocs=3"], "--set: train.epocs: unknown key (did you mean 'epochs'?)"),
        (GOOD, ["--set", "train.epochs"], "--set train.epochs: expected KEY=VALUE"),
    ],
)
def test_bad_specs_give_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                       argv: list[str], expected: str) -> None:
    code, _, err = run_cli(capsys, "run", write(tmp_path, text), *argv)
    assert code == 1
    assert expected in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "run", "jobs/nope.yaml")
    assert code == 1 and err.strip() == "jobs/nope.yaml: no such file"


def test_every_command_prints_a_spec_problem_in_one_format(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD.replace("batch_size: 150", "batch_size: -150"))
    monkeypatch.chdir(tmp_path)
    outputs = set()
    for argv in (["validate", path], ["run", path], ["tune", path], ["show", path],
                 ["submit", "job.yaml", "--dry-run", "--address", "http://127.0.0.1:9"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 1, argv
        outputs.add(err.replace("job.yaml", path) if argv[0] == "submit" else err)
    assert outputs == {f"{path}:{GOOD.splitlines().index('  batch_size: 150') + 1}: train.batch_size: expected an "
                       f"integer > 0, got -150\n"}


def test_the_exit_status_is_as_the_help_documents(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from skate import cli

    assert "130  interrupted" in cli.EXIT_STATUS and "FILE:LINE: PATH: MESSAGE" in cli.EXIT_STATUS
    assert run_cli(capsys, "validate", str(JOBS / "digits_rnn.yaml"))[0] == 0
    assert run_cli(capsys, "validate", write(tmp_path, GOOD.replace("epochs: 100", "epochs: 0")))[0] == 1
    with pytest.raises(SystemExit) as usage:
        main(["validate", "--no-such-flag"])
    assert usage.value.code == 2 and "the following arguments are required: FILE" in capsys.readouterr().err

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_validate", interrupted)
    assert run_cli(capsys, "validate", str(JOBS / "digits_rnn.yaml"))[:3:2] == (130, "skate: interrupted\n")


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--debug", "run", "jobs/nope.yaml")
    assert code == 1 and "Traceback" in err


def test_validate_reports_each_file_and_fails_on_any_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, GOOD.replace("epochs: 100", "epochs: 0"))
    code, out, err = run_cli(capsys, "validate", str(JOBS / "digits_rnn.yaml"), bad)
    assert code == 1
    assert out.strip().endswith("digits_rnn.yaml: ok")
    assert "train.epochs: expected an integer > 0, got 0" in err
    assert run_cli(capsys, "validate", str(JOBS / "digits_rnn.yaml"))[0] == 0


def test_schema_is_json_with_every_section(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "schema")
    schema = json.loads(out)
    assert code == 0
    assert {"name", "data", "model", "train", "checkpoint"} <= set(schema["else"]["properties"])
    assert {"name", "rl", "checkpoint"} <= set(schema["then"]["properties"])


def test_run_needs_a_file_or_resume(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "run")
    assert code == 1 and "give a job spec FILE" in err


def test_report_on_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "report", str(tmp_path))
    assert code == 1 and "not a skate run directory" in err


def test_runs_on_an_empty_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "runs", "--root", str(tmp_path))
    assert code == 0 and "no runs" in out


def test_run_refuses_a_spec_with_a_search_and_names_the_way_out(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(JOBS / "tune_digits_rnn.yaml")
    code, _, err = run_cli(capsys, "run", path)
    assert code == 1 and err.strip() == (f"skate: error: {path} has a search: section: search it with 'skate tune {path}', "
                                         "or add --no-search to train the job's own values once")


def test_no_search_trains_the_spec_without_its_search_section() -> None:
    from skate.cli import _spec_or_resume, _without_search, build_parser
    from skate.spec import load_spec

    path = str(JOBS / "tune_digits_rnn.yaml")
    spec = load_spec(path)
    args = build_parser().parse_args(["run", path, "--no-search"])
    once = _without_search(_spec_or_resume(args, what="", resumed="", kind="run", search=not args.no_search), args)
    assert spec.search is not None and once.search is None and once.train == spec.train
    with pytest.raises(SkateError, match="has a search: section: search it with 'skate tune"):
        _without_search(spec, build_parser().parse_args(["run", path]))


def test_show_prints_the_spec_with_every_default_as_yaml_that_loads_back_the_same(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from skate.spec import load_spec
    from skate.spec.io import spec_to_data

    job = JOBS / "digits_rnn.yaml"
    assert main(["show", str(job), "--set", "train.epochs=3"]) == 0
    shown = capsys.readouterr().out
    assert "clip_norm:" in shown and "clip_norm" not in job.read_text()  # a default the file leaves out
    copy = tmp_path / "shown.yaml"
    copy.write_text(shown)
    assert load_spec(copy) == load_spec(job, ["train.epochs=3"])
    assert main(["show", str(job), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == spec_to_data(load_spec(job))


def test_show_of_a_bad_spec_names_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((JOBS / "digits_rnn.yaml").read_text().replace("epochs: 100", "epochz: 100"))
    assert main(["show", str(bad)]) == 1
    assert "train.epochz: unknown key (did you mean 'epochs'?)" in capsys.readouterr().err


def test_version_names_the_package(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"skate {version('skate')}"


def test_json_of_validate_plugins_and_runs_parses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    assert main(["validate", str(JOBS / "digits_rnn.yaml"), str(bad), "--json"]) == 1
    checked = json.loads(capsys.readouterr().out)
    assert [(c["file"], c["ok"]) for c in checked] == [(str(JOBS / "digits_rnn.yaml"), True), (str(bad), False)]
    assert checked[1]["problems"] and all(isinstance(p, str) for p in checked[1]["problems"])
    assert main(["plugins", "--json"]) == 0
    assert {"kind": "model", "name": "rnn_classifier", "from": "skate"} in json.loads(capsys.readouterr().out)
    assert main(["runs", "--root", str(tmp_path / "none"), "--json"]) == 0 and json.loads(capsys.readouterr().out) == []
