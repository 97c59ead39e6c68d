"""The README and docs/ cannot rot: every command they mark as runnable runs, every relative link
points at a file (and a heading) that exists, every whole spec they show is valid, every `skate`
command and option they show exists, and the README stays a front door.

The marker is an HTML comment, alone on the line before a fenced block (docs/README.md says the same
for writers):

- ``<!-- runnable -->`` before a ``console`` block: each line that starts with ``$ `` is a command,
  the lines under it are its output (not checked). Each command must exit 0.
- ``<!-- runnable -->`` before a ``python`` block: the block runs as a script and must exit 0.
- ``<!-- runnable: COMMAND -->`` before a block whose commands take minutes or need a cluster:
  COMMAND (one shell line, ``&&`` allowed) runs in their place and must exit 0. It is the shown
  commands with a small budget (``--set train.epochs=5``), ``--dry-run``, or ``validate``/``show``
  of the same spec.
- ``<!-- runnable-error -->`` before a ``console`` block: each command must exit non-zero, and each
  output line shown under it must be in what it printed (a line ending in ``...``, up to there).

Commands run under bash in the repository root, with the venv's bin first on PATH, a Ray of their
own (``RAY_ADDRESS=local``), and ``SKATE_ROOT`` and ``SKATE_CACHE`` in a temporary folder, so runs
never land in the repository; a variant that writes a file writes it under ``$DOCS_TMP``, an empty
folder. Python blocks run in a scratch folder that links the repository's ``jobs/``, ``examples/``
and ``clusters/``, since ``skate.run`` writes to ``runs/`` of the folder it runs in. A command (or
Python block) shown on several pages runs once.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
import subprocess
import sys
from typing import Callable
from pathlib import Path

import pytest

from conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_LINES = 260
COMMAND_TIMEOUT_S = 300
PAGES = [README, *sorted(DOCS.glob("*.md"))]

_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
_MARKER = re.compile(r"^<!--\s*(runnable-error|runnable)(?::\s*(.*?))?\s*-->$")
_SHELL = ("console", "sh", "bash", "shell")
_INLINE_CODE = re.compile(r"`[^`]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@dataclasses.dataclass(frozen=True)
class Block:
    """A fenced code block of a page: where it is, its info string and lines, and its marker if any."""

    page: Path
    line: int  # of the opening fence, counted from 1
    info: str
    lines: tuple[str, ...]
    marker: str | None  # "runnable" or "runnable-error"
    variant: str | None  # the command a "runnable: COMMAND" marker runs in the block's place

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    def commands(self) -> list[str]:
        """The shell command lines to run."""
        if self.variant:
            return [self.variant]
        return [line[2:].strip() for line in self.lines if line.startswith("$ ")]

    def shown_output(self) -> list[tuple[str, list[str]]]:
        """Each ``$`` command with the output lines shown under it."""
        shown: list[tuple[str, list[str]]] = []
        for line in self.lines:
            if line.startswith("$ "):
                shown.append((line[2:].strip(), []))
            elif shown and line.strip():
                shown[-1][1].append(line.rstrip())
        return shown


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page`` (indented ones, in list items, too), with the marker before it."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, info = opening.groups()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(fence)), None)
        assert end is not None, f"{page.relative_to(REPO)}:{i + 1}: a fenced block that never closes"
        marker = _MARKER.match(lines[i - 1].strip()) if i else None
        body = tuple(line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1:end])
        found.append(Block(page, i + 1, info, body, marker and marker.group(1), marker and marker.group(2)))
        i = end + 1
    return found


def marked() -> list[Block]:
    return [block for page in PAGES for block in blocks(page) if block.marker]


def _prose(page: Path) -> list[tuple[int, str]]:
    """The lines of ``page`` outside fenced blocks, with their numbers."""
    inside, kept = None, []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        fence = _FENCE.match(line)
        if fence and inside is None:
            inside = fence.group(2)
        elif inside is not None and line.strip().startswith(inside):
            inside = None
        elif inside is None:
            kept.append((number, line))
    return kept


# Runnable blocks.

@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the commands: the venv first on PATH, and nothing of theirs in the repository
    or the home folder (runs, download cache, user config)."""
    home = tmp_path_factory.mktemp("docs")
    (home / "tmp").mkdir()
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "RAY_ADDRESS": "local", "SKATE_ROOT": str(home / "runs"), "SKATE_CACHE": str(home / "cache"),
           "SKATE_CONFIG": str(home / "no-config.yaml"), "DOCS_TMP": str(home / "tmp")}
    env.pop("SKATE_STORAGE", None)
    return env


_RAN: dict[tuple[str, str], str | None] = {}
"""What ran in this session, and where it failed (None: it passed): a command (or Python block) shown
on several pages runs once."""


def _ran_before(key: tuple[str, str], block: Block) -> tuple[bool, str | None]:
    """Whether ``key`` ran already, and its failure if it failed there."""
    if key not in _RAN:
        return False, None
    return True, None if _RAN[key] is None else f"{block.where}: `{key[1]}` failed at {_RAN[key]}"


def test_the_pages_mark_their_commands_well() -> None:
    for block in marked():
        assert block.info in ("console", "python") or block.variant, (
            f"{block.where}: a runnable block is 'console' (commands after '$ ') or 'python', or names the "
            f"command to run in its marker; this one is '{block.info}'")
        if block.info == "python":
            assert block.marker == "runnable" and not block.variant, f"{block.where}: a python block runs as it is"
        else:
            assert block.commands(), f"{block.where}: a runnable block without a command ('$ ' lines)"
    assert sum(1 for block in marked() if block.page == README) >= 5, "the README's examples are no longer run"


@pytest.mark.integration  # the training runs among them start a local Ray
@pytest.mark.parametrize("block", marked(), ids=lambda block: block.where)
def test_a_runnable_block_runs(block: Block, sandbox: dict[str, str], tmp_path: Path) -> None:
    if block.info == "python" and not block.variant:
        problems = [_run_python(block, sandbox, tmp_path)]
    elif block.marker == "runnable-error":
        problems = [_run_failing(block, command, output, sandbox) for command, output in block.shown_output()]
    else:
        problems = [_run_passing(block, command, sandbox) for command in block.commands()]
    assert problems, f"{block.where}: nothing to run"
    failed = [problem for problem in problems if problem is not None]
    assert not failed, "\n\n".join(failed)


def _run(command: str, *, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT_S)


def _failure(block: Block, command: str, done: subprocess.CompletedProcess[str]) -> str:
    return (f"{block.where}: `{command}` exited {done.returncode}\n--- stderr\n{done.stderr[-4000:]}"
            f"\n--- stdout\n{done.stdout[-2000:]}")


def _run_once(block: Block, key: tuple[str, str], run: Callable[[], subprocess.CompletedProcess[str]],
              shown: str) -> str | None:
    """Run ``key`` (unless it ran already): its failure, or None when it exits 0."""
    before, problem = _ran_before(key, block)
    if before:
        return problem
    done = run()
    _RAN[key] = None if done.returncode == 0 else block.where
    return None if done.returncode == 0 else _failure(block, shown, done)


def _run_python(block: Block, sandbox: dict[str, str], tmp_path: Path) -> str | None:
    code = "\n".join(block.lines)

    def run() -> subprocess.CompletedProcess[str]:
        for name in ("jobs", "examples", "clusters"):
            (tmp_path / name).symlink_to(REPO / name)
        script = tmp_path / "block.py"
        script.write_text(code + "\n", encoding="utf-8")
        return _run(shlex.join([sys.executable, str(script)]), env=sandbox, cwd=tmp_path)

    return _run_once(block, ("python", code), run, "python")


def _run_passing(block: Block, command: str, sandbox: dict[str, str]) -> str | None:
    return _run_once(block, ("passes", command), lambda: _run(command, env=sandbox, cwd=REPO), command)


def _run_failing(block: Block, command: str, output: list[str], sandbox: dict[str, str]) -> str | None:
    """None when ``command`` fails and prints each of ``output``'s lines; else what is wrong."""
    done = _run(command, env=sandbox, cwd=REPO)
    if done.returncode == 0:
        return f"{block.where}: `{command}` was shown failing, and it exited 0"
    printed = done.stdout + done.stderr
    for line in output:
        expected = line[:-3].rstrip() if line.endswith("...") else line
        if expected not in printed:
            return f"{block.where}: `{command}` no longer prints\n{expected}\n--- it printed\n{printed[-4000:]}"
    return None


# Specs, links and the README's length.

def test_every_whole_spec_shown_is_valid(tmp_path: Path) -> None:
    """A YAML block with a top-level ``name:`` is a whole job spec, and loads as one."""
    from skate.spec import load_spec

    specs = [block for page in PAGES for block in blocks(page)
             if block.info == "yaml" and any(line.startswith("name:") for line in block.lines)]
    assert len(specs) >= 3, "the pages no longer show whole specs"
    for i, block in enumerate(specs):
        path = tmp_path / f"{i}.yaml"
        path.write_text("\n".join(block.lines) + "\n", encoding="utf-8")
        try:
            load_spec(path)
        except Exception as error:  # a SpecError names the problem
            pytest.fail(f"{block.where}: the spec shown is not valid: {error}")


def anchors(page: Path) -> set[str]:
    """GitHub's ids for the headings of ``page``: lower case, punctuation dropped, spaces as hyphens."""
    ids = set()
    for _, line in _prose(page):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            ids.add(re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-"))
    return ids


def test_every_relative_link_points_at_a_file_and_heading_that_exist() -> None:
    broken = []
    for page in PAGES:
        for number, line in _prose(page):
            for target in _LINK.findall(_INLINE_CODE.sub("", line)):
                if re.match(r"^[a-z]+:", target):  # https:, mailto:
                    continue
                path, _, anchor = target.partition("#")
                resolved = (page.parent / path).resolve() if path else page
                if not resolved.exists():
                    broken.append(f"{page.relative_to(REPO)}:{number}: {target}: no such file")
                elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                    broken.append(f"{page.relative_to(REPO)}:{number}: {target}: no such heading")
    assert not broken, "\n".join(broken)


def test_every_docs_page_is_in_the_table_of_contents_and_the_readme() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    for page in DOCS.glob("*.md"):
        if page.name != "README.md":
            assert f"({page.name})" in index, f"docs/README.md does not link {page.name}"
            assert f"(docs/{page.name})" in readme, f"README.md's 'where to read more' does not link {page.name}"


def test_the_readme_is_a_front_door() -> None:
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {README_MAX_LINES})"


# Commands and options: every `skate COMMAND --option` the pages show is one the parser has.

def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Each command's parser by its name ("run", "cluster validate"), and "" for skate itself."""
    from skate.cli import build_parser

    def children(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(subparsers[0].choices) if subparsers else {}

    root = build_parser()
    found = {"": root}
    for name, parser in children(root).items():
        found[name] = parser
        found.update((f"{name} {action}", child) for action, child in children(parser).items())
    return found


def _code(page: Path) -> list[tuple[int, str]]:
    """The lines of ``page``'s shell blocks and its inline code spans (not YAML, Python or plain text)."""
    spans = [(block.line + i + 1, line) for block in blocks(page) if block.info in _SHELL
             for i, line in enumerate(block.lines)]
    for number, line in _prose(page):
        spans.extend((number, span.strip("`")) for span in _INLINE_CODE.findall(line))
    return spans


def invocations(page: Path) -> list[tuple[int, str, list[str]]]:
    """Each ``skate COMMAND [ACTION] ...`` that ``page`` shows: its line, command and option flags."""
    found = []
    for number, code in _code(page):
        for segment in re.split(r"&&|\|\||[;|(]|\s#\s", code):
            words = segment.replace("$ ", " ", 1).split()
            starts = [i for i, word in enumerate(words) if word in ("skate", ".venv/bin/skate")]
            if not starts or starts[0] + 1 >= len(words):
                continue
            rest = words[starts[0] + 1:]
            command = rest[0] if re.fullmatch(r"[a-z][a-z-]*", rest[0]) else ""
            if command == "cluster" and len(rest) > 1 and re.fullmatch(r"[a-z]+", rest[1]):
                command = f"cluster {rest[1]}"
            flags = [word.lstrip("[").split("=")[0].rstrip(",.]") for word in rest
                     if re.match(r"^\[?-{1,2}[a-z]", word)]
            if command or flags:
                found.append((number, command, flags))
    return found


def test_every_skate_command_and_option_shown_exists() -> None:
    parsers = _parsers()
    wrong = []
    for page in PAGES:
        for number, command, flags in invocations(page):
            where = f"{page.relative_to(REPO)}:{number}"
            if command not in parsers:
                wrong.append(f"{where}: skate {command}: no such command")
                continue
            options = {*parsers[command]._option_string_actions, *parsers[""]._option_string_actions}
            wrong.extend(f"{where}: skate {command}: no option {flag}" for flag in flags if flag not in options)
    assert not wrong, "\n".join(wrong)


def test_the_cli_reference_names_every_command() -> None:
    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    missing = [name for name in _parsers() if name and f"`skate {name}" not in reference]
    assert not missing, f"docs/cli.md does not list: {', '.join(missing)}"
