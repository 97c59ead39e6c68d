"""The ``skate cluster`` command: validate, up and down the cluster definitions of clusters/."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

Handler = Callable[[argparse.Namespace], int]


def cmd_cluster_validate(args: argparse.Namespace) -> int:
    """Print ``FILE: ok`` for each valid file and the problems of the others; 1 if any is invalid."""
    from skate.launch.clusters import validate_cluster_file

    failed = 0
    for path in args.files:
        problems = validate_cluster_file(path)
        if problems:
            failed += 1
            for problem in problems:
                print(problem, file=sys.stderr)
        else:
            print(f"{path}: ok")
    return 1 if failed else 0


def cmd_cluster_up(args: argparse.Namespace) -> int:
    """Check a cluster launcher config, then ``ray up`` it; the exit status of ``ray up``."""
    from skate.launch.clusters import cluster_up

    return cluster_up(args.file, yes=args.yes)


def cmd_cluster_down(args: argparse.Namespace) -> int:
    """Check a cluster launcher config, then ``ray down`` it; the exit status of ``ray down``."""
    from skate.launch.clusters import cluster_down

    return cluster_down(args.file, yes=args.yes)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add ``cluster`` (with ``validate``, ``up`` and ``down``) to the ``skate`` command's subparsers.

    Each action sets ``handler``, a function of the parsed arguments that returns the exit status,
    as the other commands do; errors are raised as :class:`skate.errors.SkateError` for ``main``.

    Args:
        subparsers: what ``ArgumentParser.add_subparsers`` returned.

    Returns:
        The parser of ``skate cluster``.
    """
    help_ = "check cluster definitions (Ray cluster launcher YAMLs, KubeRay manifests), and start or stop them"
    cluster = subparsers.add_parser("cluster", help=help_, description=help_)
    _debug_flag(cluster)
    actions = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")

    def add(name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_, description=help_)
        _debug_flag(p)
        p.set_defaults(handler=handler)
        return p

    p = add("validate", cmd_cluster_validate, "check cluster definitions offline (exit 1 if any is invalid): "
            "launcher configs against Ray's schema and checks, KubeRay manifests against what the operator needs")
    p.add_argument("files", nargs="+", metavar="FILE")

    for name, handler, what in (("up", cmd_cluster_up, "start or update the cluster of a launcher config (ray up)"),
                                ("down", cmd_cluster_down, "tear down the cluster of a launcher config (ray down)")):
        p = add(name, handler, f"check, then {what}")
        p.add_argument("file", metavar="FILE", help="a Ray cluster launcher config, e.g. clusters/aws-gpu.yaml")
        p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    return cluster


def _debug_flag(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a --debug given before the command is not reset by this parser's default
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full tracebacks on errors")
