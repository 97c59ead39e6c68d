"""Shell completion generated from the parser: bash completes commands, each command's options,
and file names."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from skate.cli import build_parser
from skate.completion import commands_and_options, script


def completions(words: list[str]) -> list[str]:
    """What bash offers for the last of ``words`` (``skate`` first), with skate's script loaded."""
    quoted = " ".join(f"'{w}'" for w in words)
    program = f'{script(build_parser(), "bash")}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _skate; ' \
              'printf "%s\\n" "${COMPREPLY[@]}"'
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.split()


pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")


def test_every_command_and_its_options_come_from_the_parser() -> None:
    found = commands_and_options(build_parser())
    assert {"run", "tune", "submit", "validate", "show", "completion"} <= set(found)
    assert "--storage" in found["run"] and "--json" in found["runs"] and "--version" in found[""]


@pytest.mark.parametrize(("words", "expected"), [
    (["skate", "ru"], ["run", "runs"]),
    (["skate", "run", "--st"], ["--storage"]),
    (["skate", "--debug", "tune", "--re"], ["--resume"]),
])
def test_bash_completes_commands_and_options(words: list[str], expected: list[str]) -> None:
    assert completions(words) == expected


def test_bash_completes_file_names_after_a_command(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "digits.yaml").write_text("")
    monkeypatch.chdir(tmp_path)
    assert completions(["skate", "run", "dig"]) == ["digits.yaml"]


def test_zsh_gets_the_script_through_bashcompinit() -> None:
    assert script(build_parser(), "zsh").startswith("autoload -U +X bashcompinit && bashcompinit\n")
    with pytest.raises(ValueError, match="shell 'fish': expected one of bash, zsh"):
        script(build_parser(), "fish")
