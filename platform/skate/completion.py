"""Shell completion for ``skate``, generated from its argument parser: ``skate completion bash``
(or ``zsh``) prints a script that completes commands, their options and file names.

    eval "$(skate completion bash)"     # in ~/.bashrc
    eval "$(skate completion zsh)"      # in ~/.zshrc (uses bashcompinit)
"""

from __future__ import annotations

import argparse

SHELLS = ("bash", "zsh")


def commands_and_options(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Each subcommand's options (long and short), and the top level's under ``""``."""
    found = {"": sorted(_options(parser))}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sorted(_options(sub))
    return found


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for ``shell`` (bash, or zsh through its bash compatibility)."""
    if shell not in SHELLS:
        raise ValueError(f"shell {shell!r}: expected one of {', '.join(SHELLS)}")
    found = commands_and_options(parser)
    commands = " ".join(name for name in found if name)
    cases = "\n".join(f'        {name}) opts="{" ".join(options)}" ;;' for name, options in found.items() if name)
    body = f'''_skate() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" command="" word opts
    for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "$word" in -*) ;; *) command="$word"; break ;; esac
    done
    if [ -z "$command" ]; then
        COMPREPLY=($(compgen -W "{commands} {' '.join(found[''])}" -- "$cur"))
        return
    fi
    case "$command" in
{cases}
        *) opts="" ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -o filenames -F _skate skate
'''
    if shell == "zsh":
        body = "autoload -U +X bashcompinit && bashcompinit\n" + body
    return body
