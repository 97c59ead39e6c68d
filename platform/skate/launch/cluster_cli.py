"""The ``skate cluster`` command: validate, up and down the cluster definitions of clusters/."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from skate.launch.kuberay_schema import DEFAULT_VERSION, SUPPORTED_VERSIONS, parse_version

Handler = Callable[[argparse.Namespace], int]


def cmd_cluster_validate(args: argparse.Namespace) -> int:
    """Print ``FILE: ok`` for each valid file and the problems of the others, and the warnings of
    all (on stderr); 1 if any is invalid."""
    from skate.launch.clusters import check_cluster_file

    failed = 0
    for path in args.files:
        check = check_cluster_file(path, kuberay_version=args.kuberay_version)
        for line in check.problems + check.warnings:
            print(line, file=sys.stderr)
        if check.problems:
            failed += 1
        else:
            print(f"{path}: ok")
    return 1 if failed else 0


def _kuberay_version(text: str) -> str:
    try:
        return parse_version(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


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
            "launcher configs against Ray's schema and checks, KubeRay manifests against KubeRay's CRD schemas "
            "and the operator's rules")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--kuberay-version", type=_kuberay_version, default=DEFAULT_VERSION, metavar="X.Y",
                   help=f"the KubeRay release that will run KubeRay manifests, whose CRD schemas they are checked "
                        f"against: {', '.join(SUPPORTED_VERSIONS)} (default: {DEFAULT_VERSION}, the newest)")

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
