"""The ``skate`` command: run, tune, validate, show, schema, plugins, runs, report, compare, generate, make-data,
evaluate; submit, status, logs, stop, jobs and cluster for Ray clusters."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
import traceback
import warnings
from typing import Any, Callable

from skate.errors import ExposureWarning, SkateError, SpecError, SpecNote, describe_error

ROOT_ENV = "SKATE_ROOT"
STORAGE_ENV = "SKATE_STORAGE"


RUN_DIR_HELP = "a run directory: a path, or a URI (s3://bucket/skate/NAME), downloaded into a local cache"


def _root(args: argparse.Namespace) -> str:
    return args.root or os.environ.get(ROOT_ENV) or "runs"


def _storage(args: argparse.Namespace) -> str | None:
    """Where run directories go: --storage, else $SKATE_STORAGE, else the user config's ``storage``."""
    from skate.launch.connect import user_config

    return args.storage or os.environ.get(STORAGE_ENV) or user_config().get("storage") or None


def _spec_or_resume(args: argparse.Namespace, *, what: str, resumed: str, kind: str, search: bool = True) -> Any:
    """The spec FILE (with --set; without its search: section unless ``search``) of a new run or search,
    or ``None`` for ``--resume``; Ctrl-C armed."""
    from skate.spec import load_spec

    if (args.file is None) == (args.resume is None):
        raise SkateError(f"give {what}, or --resume {resumed} to continue a {kind} (not both)")
    if args.resume and args.set:
        raise SkateError(f"--set cannot change a resumed {kind}; its spec is fixed in {resumed}/spec.yaml")
    spec = load_spec(args.file, args.set, search=search) if args.file else None
    # A shell that started us in the background may have told us to ignore Ctrl-C; take it back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return spec


def _without_search(spec: Any, args: argparse.Namespace) -> Any:
    """The spec ``skate run`` trains: one without a ``search:`` section (``--no-search`` dropped it
    before the gate, which then checks the job alone)."""
    if spec is not None and spec.search is not None:
        raise SkateError(f"{args.file} has a search: section: search it with 'skate tune {args.file}', or add "
                         "--no-search to train the job's own values once")
    return spec


def _name_flag(parser: argparse.ArgumentParser, what: str, prefix: str = "") -> None:
    parser.add_argument("--name", help=f"the {what} directory's name (default: {prefix}the job's name and the time); "
                                       "an existing one is an error")


def _wait_flag(parser: argparse.ArgumentParser) -> None:
    from skate.capacity import CONFIG_KEY, DEFAULT_WAIT_S

    parser.add_argument("--wait-for-nodes", type=_seconds, metavar="SECONDS",
                        help=f"how long the job may wait for the cluster to have room for it (the autoscaler is "
                             f"asked meanwhile) before it fails (default: {CONFIG_KEY} in the user config, "
                             f"else {DEFAULT_WAIT_S:g})")


def _verbose_flag(parser: argparse.ArgumentParser, where: str) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help=f"print Ray's, RLlib's and the actors' messages here too (default: they go to ray.log in "
                             f"{where})")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, e.g. 600, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text}")
    return value


def _apply_wait(args: argparse.Namespace) -> None:
    """``--wait-for-nodes``, for this process (:func:`skate.capacity.wait_limit_s` reads it)."""
    from skate.capacity import WAIT_ENV

    if getattr(args, "wait_for_nodes", None) is not None:
        os.environ[WAIT_ENV] = f"{args.wait_for_nodes:g}"


def cmd_run(args: argparse.Namespace) -> int:
    from skate.cluster import ray_session
    from skate.runner import resume_job, run_job
    from skate.runs.ray_log import off_terminal
    from skate.runs.report import summary_text, write_plots
    from skate.runs.rundir import RunDir

    spec = _without_search(_spec_or_resume(args, what="a job spec FILE to run", resumed="RUN_DIR", kind="run",
                                           search=not args.no_search), args)
    _apply_wait(args)
    # A tabular job (value iteration, Q-learning...) runs in this process: no Ray to start for it.
    tabular = _tabular(spec, args.resume)
    if tabular and args.address:
        warnings.warn(f"--address {args.address}: ignored; a tabular job runs in this process", SpecNote, stacklevel=1)
    cluster = contextlib.nullcontext() if tabular else ray_session(args.address)
    with off_terminal(enabled=not args.verbose), cluster:
        if spec is not None:
            result = run_job(spec, root=_root(args), progress=not args.no_progress, storage=_storage(args),
                             name=args.name)
        else:
            result = resume_job(args.resume, progress=not args.no_progress)
    run = RunDir(result.run_dir)
    if result.status == "completed":
        plots = write_plots(run)
        print(summary_text(run))
        print(f"\nrun directory: {run.path}\n{plots}")
        return 0
    return 130


def _tabular(spec: Any, resume: str | None) -> bool:
    """Whether the job to run (``spec``, or the one in the run directory ``resume``) is a tabular RL job."""
    from skate.uri import is_uri

    if spec is None and resume is not None and not is_uri(resume):
        from skate.runs.rundir import RunDir
        from skate.spec import load_spec

        with contextlib.suppress(SkateError, SpecError, OSError, ValueError):
            spec = load_spec(RunDir.open(resume).spec_path, gate=False)
    return getattr(getattr(spec, "rl", None), "tabular", False)


def cmd_tune(args: argparse.Namespace) -> int:
    from skate.cluster import ray_session
    from skate.runs.ray_log import off_terminal
    from skate.search.experiment import resume_search, run_search, summary_lines

    spec = _spec_or_resume(args, what="a job spec FILE with a search: section", resumed="EXP_DIR", kind="search")
    _apply_wait(args)
    with off_terminal(enabled=not args.verbose), ray_session(args.address):
        if spec is not None:
            result = run_search(spec, root=_root(args), progress=not args.no_progress, source=args.file,
                                name=args.name, storage=_storage(args))
        else:
            result = resume_search(args.resume, progress=not args.no_progress)
    print("\n".join(summary_lines(result)))
    return 0 if result.status == "completed" else 130


def cmd_plugins(args: argparse.Namespace) -> int:
    from skate.plugins import registered
    from skate.table import format_table

    rows = [[r.family, r.name, r.origin] for r in registered()]
    if args.json:
        print(json.dumps([dict(zip(("kind", "name", "from"), row)) for row in rows], indent=2))
    else:
        print(format_table(["kind", "name", "from"], rows))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from skate.spec import load_spec

    results = []
    with contextlib.ExitStack() as session:
        for path in args.files:
            try:
                spec = load_spec(path, args.set, here=args.address is None)
                if args.address is not None:
                    _fits_cluster(path, spec, address=args.address, session=session)
            except SpecError as error:
                results.append({"file": path, "ok": False, "problems": list(error.problems)})
                if not args.json:
                    for problem in error.problems:
                        print(problem, file=sys.stderr)
            else:
                results.append({"file": path, "ok": True, "problems": []})
                if not args.json:
                    print(f"{path}: ok")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0 if all(result["ok"] for result in results) else 1


def _fits_cluster(path: str, spec: Any, *, address: str, session: contextlib.ExitStack) -> None:
    """Refuse ``spec`` when its actors' bundles fit no node or node type of the cluster at ``address``
    (see :mod:`skate.capacity.fit`), which ``session`` joins on first use and leaves at its end."""
    import ray

    from skate.capacity.fit import cluster_problems
    from skate.cluster import ray_session
    from skate.config.loader import dotted
    from skate.config.yamlio import read_yaml

    if not ray.is_initialized():
        session.enter_context(ray_session(address, quiet=True))
    found = cluster_problems(spec)
    if found:
        locator = read_yaml(path)[1]
        raise SpecError([f"{locator.where(where)}: {dotted(where)}: {message}" for where, message in found])


def cmd_show(args: argparse.Namespace) -> int:
    from skate.spec import dump_spec, load_spec
    from skate.spec.io import spec_to_data

    spec = load_spec(args.file, args.set, gate=False)  # to look at: 'skate validate' is the gate
    if args.json:
        print(json.dumps(spec_to_data(spec), indent=2))
    else:
        sys.stdout.write(dump_spec(spec))
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from skate.completion import script

    sys.stdout.write(script(build_parser(), args.shell))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from skate.spec import spec_schema

    print(json.dumps(spec_schema(), indent=2))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from skate.runs.mirror import stored_runs
    from skate.runs.report import pick_rows, run_row, runs_table

    where = _storage(args) or _root(args)
    try:
        runs = stored_runs(where)
    except (OSError, ValueError) as error:
        raise SkateError(f"cannot list runs in {where}: {error}") from error
    rows = pick_rows([run_row(run) for run in runs], name=args.name, status=args.status, sort=args.sort)
    if args.json:
        print(json.dumps([dataclasses.asdict(row) for row in rows], indent=2, default=str))
    elif not rows:
        print(f"no runs in {where}" + (" that match" if runs else ""))
    else:
        print(runs_table(rows))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from skate.launch import jobs
    from skate.launch.connect import jobs_client, resolve_address

    if (args.file is None) == (args.resume is None):
        raise SkateError("give a job spec FILE, or --resume EXP_OR_RUN to continue a search or a run (not both)")
    if args.resume is not None:
        if args.set or args.storage:
            raise SkateError("--set and --storage cannot change a resumed run or search: it goes on as it was, "
                             "in its storage")
        submission = jobs.prepare_resume(args.resume, working_dir=args.working_dir, wait_for_nodes_s=args.wait_for_nodes,
                                         verbose=args.verbose)
    else:
        submission = jobs.prepare(args.file, args.set, working_dir=args.working_dir, storage=_storage(args),
                                  wait_for_nodes_s=args.wait_for_nodes, verbose=args.verbose)
    if args.dry_run:
        print(submission.describe(resolve_address(args.address)))
        print("(dry run: nothing was sent)")
        return 0
    client = jobs_client(args.address)
    job_id = jobs.submit(client, submission)
    print(f"submitted {job_id} to {client.address}\n{submission.kind} directory: {submission.location}")
    if not args.follow:
        print(f"follow it with: skate logs {job_id} --follow")
        return 0
    status = jobs.follow(client, job_id)
    print(f"job {job_id}: {status}")
    return jobs.EXIT_CODES[status]


def cmd_status(args: argparse.Namespace) -> int:
    from skate.launch import jobs
    from skate.launch.connect import jobs_client

    info = jobs_client(args.address).get_job_info(args.job_id)
    print(json.dumps(jobs.job_record(info), indent=2) if args.json else jobs.describe_job(info))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from skate.launch import jobs
    from skate.launch.connect import jobs_client

    client = jobs_client(args.address)
    if not args.follow:
        logs = client.get_job_logs(args.job_id)
        print(logs, end="" if logs.endswith("\n") or not logs else "\n")
        return 0
    status = jobs.follow(client, args.job_id)
    print(f"job {args.job_id}: {status}")
    return jobs.EXIT_CODES[status]


def cmd_stop(args: argparse.Namespace) -> int:
    from skate.launch import jobs
    from skate.launch.connect import jobs_client

    status = jobs.stop(jobs_client(args.address), args.job_id, timeout_s=args.timeout)
    print(f"job {args.job_id}: {status}")
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from skate.launch import jobs
    from skate.launch.connect import jobs_client

    infos = jobs_client(args.address).list_jobs()
    if args.json:
        print(json.dumps([jobs.job_record(info) for info in jobs.recent(infos, limit=args.limit)], indent=2))
    else:
        print(jobs.jobs_table(infos, limit=args.limit) if infos else "no jobs on this cluster")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from skate.runs.remote import local_copy
    from skate.runs.report import summary_text, write_plots
    from skate.runs.rundir import RunDir

    run = RunDir.open(local_copy(args.run_dir))
    print(summary_text(run))
    if not run.metrics_path.exists():
        raise SkateError(f"{run.path}: no metrics yet ({RunDir.METRICS} is missing)")
    print(f"\n{write_plots(run)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from skate.runs.compare import compare

    result = compare(args.runs, out=args.out)
    print(json.dumps(result.as_json(), indent=2, default=str) if args.json else result.text())
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from skate.runs.remote import local_copy
    from skate.runs.verify import run_problems

    problems = run_problems(local_copy(args.run_dir))
    for problem in problems:
        print(f"problem: {problem}")
    if problems:
        print(f"{args.run_dir}: {len(problems)} problem(s)")
    else:
        print(f"{args.run_dir}: whole: every epoch once, every checkpoint readable, no restart back past the "
              f"last checkpoint")
    return 1 if problems else 0


def cmd_trust(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skate.runs.signing import local_key, signing_key
    from skate.runs.trust import trust_run

    def confirm(question: str) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise SkateError("skate trust asks before it re-signs anything; pass --yes to trust without a prompt")
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    if args.address is None:
        return trust_run(Path(args.run_dir), local_key(), confirm=confirm)
    from skate.cluster import ray_session

    with ray_session(args.address, quiet=True):
        return trust_run(Path(args.run_dir), signing_key(), confirm=confirm)


def cmd_generate(args: argparse.Namespace) -> int:
    from skate.runs.remote import local_copy
    from skate.generate import generate

    made = generate(local_copy(args.run_dir), steps=args.steps, num=args.num, seed=args.seed, out=args.out)
    print(f"generated {made.count} {made.unit}\n"
          f"values: {made.values_path}\nplot: {made.plot_path}")
    return 0


def cmd_make_data(args: argparse.Namespace) -> int:
    from skate.data.synthetic import write_mnist_like

    try:
        made = write_mnist_like(args.location, rows=args.rows, num_files=args.files, seed=args.seed,
                                progress=not args.no_progress)
    except ValueError as error:
        raise SkateError(str(error)) from error
    print(f"wrote {made.rows} rows ({made.bytes_in_memory / 1e6:.1f} MB in memory) in {len(made.files)} files "
          f"to {made.location}")
    print(f"data: {{source: parquet, path: {made.location}, x_columns: [x], y_column: y, x_shape: [28, 28]}}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from skate.runs.remote import local_copy
    from skate.rl.evaluate import evaluate, evaluate_baseline, run_env
    from skate.table import format_table

    if args.run_dir is None and args.policy is None:
        raise SkateError("give a RUN_DIR to play its policy, or --policy basic to play a hard-coded one")
    if args.run_dir is not None and args.env is not None:
        raise SkateError("--env is for --policy without a RUN_DIR: a run plays its own environment")
    played, where = [], local_copy(args.run_dir) if args.run_dir is not None else None
    options = {"episodes": args.episodes, "seed": args.seed}
    if where is not None:
        played.append(evaluate(where, record=args.record, **options))
    if args.policy is not None:
        env = args.env or (run_env(where) if where is not None else BASELINE_ENV)
        played.append(evaluate_baseline(args.policy, env, record=None if played else args.record, **options))
    print(f"{args.episodes} episodes each, from seed {args.seed}: " + "; ".join(
        f"{'greedy policy of ' if i == 0 and where is not None else ''}{result.checkpoint}" for i, result in enumerate(played)))
    metrics = list(played[0].summary())
    print(format_table(["metric", *(result.checkpoint for result in played)],
                       [[name, *(round(result.summary()[name], 2) for result in played)] for name in metrics]))
    for result in played:
        if result.recording is not None:
            print(f"recording: {result.recording}")
    return 0


BASELINE_ENV = "CartPole-v0"
"""What ``skate evaluate --policy basic`` plays without a run: the seed's CartPole (200 steps at most)."""


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text, for scripts")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("skate")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown"


EXIT_STATUS = """\
errors:
  a problem in a spec:  FILE:LINE: PATH: MESSAGE   (one line each, every command alike)
  any other error:      skate: error: MESSAGE      (--debug adds the traceback)

exit status:
  0    success (validate: every file valid; verify: the record is whole)
  1    an error: an invalid spec, a failed run or job, an unreachable cluster...
  2    a wrong command line; submit --follow and logs --follow: the job was stopped
  130  interrupted (Ctrl-C); an interrupted run or search continues with --resume
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skate", description="Distributed training on Ray from one YAML job spec.",
                                     epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"skate {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks on errors")
        p.set_defaults(handler=handler)
        return p

    p = add("run", cmd_run, "train a job on an embedded local Ray, or on a cluster with --address")
    p.add_argument("file", nargs="?", help="job spec (YAML)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec field, e.g. --set train.epochs=3 (repeatable)")
    p.add_argument("--address", help="join this Ray cluster instead of starting one (default: $RAY_ADDRESS)")
    p.add_argument("--root", help=f"folder of run directories (default: ${ROOT_ENV} or runs)")
    p.add_argument("--storage", help=f"a folder or URI (s3://bucket/skate) to keep the run directory in; a URI gets "
                                     f"a copy as the run grows (default: ${STORAGE_ENV}, or storage: in the user config)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint (a path, "
                                                       "or a URI it then goes on mirroring to)")
    p.add_argument("--no-progress", action="store_true", help="print no progress")
    p.add_argument("--no-search", action="store_true",
                   help="train a spec with a search: section once, with its own values (without, it is an error)")
    _name_flag(p, "run")
    _wait_flag(p)
    _verbose_flag(p, "the run directory")

    p = add("tune", cmd_tune, "search a job's hyperparameters with Ray Tune (the spec's search: section)")
    p.add_argument("file", nargs="?", help="job spec (YAML) with a search: section")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec field, e.g. --set search.num_samples=4 (repeatable)")
    p.add_argument("--address", help="join this Ray cluster instead of starting one (default: $RAY_ADDRESS)")
    p.add_argument("--root", help=f"folder of run and experiment directories (default: ${ROOT_ENV} or runs)")
    p.add_argument("--storage", help=f"a folder or URI (s3://bucket/skate) to keep the experiment directory in; a "
                                     f"URI gets a copy as the search goes (default: ${STORAGE_ENV}, or storage: in the "
                                     "user config)")
    p.add_argument("--resume", metavar="EXP_DIR", help="continue an interrupted search (a path, or a URI it then goes "
                                                       "on mirroring to)")
    p.add_argument("--no-progress", action="store_true", help="print no live table")
    _name_flag(p, "experiment", "tune-")
    _wait_flag(p)
    _verbose_flag(p, "the experiment directory")

    p = add("validate", cmd_validate, "check job specs without running them (exit 1 if any is invalid)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--address", help="also check that each job's actors fit some node (or node type) of this Ray "
                                     "cluster, which is joined for it (the job's absolute paths are then the cluster's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override as 'skate run' would")
    _json_flag(p)

    p = add("show", cmd_show, "print a job spec with every default filled in, as YAML that 'skate run' accepts")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override as 'skate run' would")
    _json_flag(p)

    add("schema", cmd_schema, "print the JSON Schema of job specs (for editors)")

    p = add("completion", cmd_completion, "print a shell completion script: eval \"$(skate completion bash)\"")
    p.add_argument("shell", choices=["bash", "zsh"])

    p = add("plugins", cmd_plugins, "list the models, data sources, environments and objectives a spec can name, "
                                    "and where each comes from")
    _json_flag(p)

    p = add("runs", cmd_runs, "list runs")
    p.add_argument("--root", help=f"folder of run directories (default: ${ROOT_ENV} or runs)")
    p.add_argument("--storage", help="list the runs kept in this folder or URI (s3://bucket/skate) instead")
    p.add_argument("--name", help="only runs whose name holds this (or matches it, with * ? [...])")
    p.add_argument("--status", help="only runs with this status (completed, failed, running, lost, interrupted...)")
    p.add_argument("--sort", choices=["started", "name", "val"], default="started",
                   help="order: by start (default), name, or validation score, the best first")
    _json_flag(p)

    address_help = ("the cluster's dashboard, http://HEAD:8265 (default: $RAY_ADDRESS, or cluster.address in "
                    "~/.config/skate/config.yaml)")
    p = add("submit", cmd_submit, "validate a job spec here, then run it on a Ray cluster as a Ray job")
    p.add_argument("file", nargs="?", help="job spec (YAML), inside the working directory; with a search: section, "
                                           "the search runs there (skate tune)")
    p.add_argument("--resume", metavar="EXP_OR_RUN", help="continue a search or a run on the cluster from its storage "
                                                          "(its URI, as 'skate submit' printed it)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override as 'skate run' would")
    p.add_argument("--address", help=address_help)
    p.add_argument("--working-dir", default=".", help="the folder sent with the job (default: the current one)")
    p.add_argument("--storage", help=f"where the run (or experiment) directory goes: a path on the cluster, or a URI "
                                     f"(default: ${STORAGE_ENV}, or storage: in the user config)")
    p.add_argument("--follow", action="store_true", help="print the logs to the end; exit 0 if the job succeeded, "
                                                          "1 if it failed, 2 if it was stopped")
    p.add_argument("--dry-run", action="store_true", help="show what would be sent, and send nothing")
    _wait_flag(p)
    _verbose_flag(p, "the run (experiment) directory on the cluster")
    for name, handler, help_ in (("status", cmd_status, "show a job's status"),
                                 ("logs", cmd_logs, "print a job's logs"),
                                 ("stop", cmd_stop, "stop a job (a pending one too) and wait until it has stopped")):
        p = add(name, handler, help_)
        p.add_argument("job_id", metavar="JOB_ID")
        p.add_argument("--address", help=address_help)
        if name == "logs":
            p.add_argument("--follow", action="store_true", help="follow the logs to the end of the job")
        if name == "stop":
            p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for it to stop (default 30)")
        if name == "status":
            _json_flag(p)
    p = add("jobs", cmd_jobs, "list the cluster's recent jobs")
    p.add_argument("--address", help=address_help)
    p.add_argument("--limit", type=int, default=20, help="jobs shown, newest first (default 20)")
    _json_flag(p)

    p = add("report", cmd_report, "summarise a run and write its PNGs (learning curves; reconstructions for autoencoders)")
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)

    p = add("compare", cmd_compare, "compare runs: where their specs differ, their final metrics side by side, and "
                                    "one PNG overlaying their curves by epoch (RL: env steps) and by wall time")
    p.add_argument("runs", nargs="+", metavar="RUN", help=RUN_DIR_HELP + "; a search's experiment directory "
                                                                       "stands for its best trial")
    p.add_argument("--out", default="compare.png", help="the PNG to write (default: compare.png here)")
    _json_flag(p)

    p = add("verify", cmd_verify, "check that a run's record is whole: every epoch (iteration) once, every "
                                  "checkpoint readable, no restart back past the last checkpoint (exit 1 if not)")
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)

    p = add("trust", cmd_trust, "trust a run written on a cluster or another machine: list its RL checkpoints and "
                                "Tune state with the key that signed each, then re-sign those whose files are as "
                                "signed with this machine's key (exit 1 if any is not)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run or experiment directory on this machine")
    p.add_argument("--address", help="re-sign with this Ray cluster's key instead (a run moved to another cluster)")
    p.add_argument("--yes", action="store_true", help="do not ask before re-signing")

    p = add("generate", cmd_generate, "generate from a trained run: continue a series (rnn_predictor) or sample a vae")
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    p.add_argument("--steps", type=int, default=300, help="steps to generate after the seed sequence (default 300)")
    p.add_argument("--num", type=int, default=60, help="samples to draw from a vae (default 60)")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")
    p.add_argument("--out", help="folder for the values and the PNG (default: the run directory)")

    p = add("make-data", cmd_make_data, "write a large synthetic Parquet data set shaped like MNIST sequences "
                                        "(28x28 floats and a label 0..9), to try skate on big data")
    p.add_argument("location", metavar="LOCATION", help="an empty or new folder: a path, or a URI (s3://bucket/data)")
    p.add_argument("--rows", type=int, required=True, help="rows in all")
    p.add_argument("--files", type=int, required=True, help="Parquet files to spread them over")
    p.add_argument("--seed", type=int, default=0, help="seed of the data (default 0)")
    p.add_argument("--no-progress", action="store_true", help="print no progress")

    p = add("evaluate", cmd_evaluate, "play an RL run's greedy policy (last checkpoint), or a hard-coded one beside "
                                      "it: mean, std, min, max return")
    p.add_argument("run_dir", metavar="RUN_DIR", nargs="?", help=RUN_DIR_HELP)
    p.add_argument("--policy", choices=["basic"], help="also (or, without RUN_DIR, only) play a hard-coded policy: "
                                                       "basic is the seed's CartPole policy, pushing the way the pole leans")
    p.add_argument("--env", help=f"the environment --policy plays without a RUN_DIR (default {BASELINE_ENV}, the seed's)")
    p.add_argument("--episodes", type=int, default=10, help="episodes to play (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    p.add_argument("--record", metavar="OUT.gif|OUT.mp4", help="render the first episode into this GIF or MP4 (MP4 needs skate[video])")

    from skate.launch.cluster_cli import register as register_cluster
    register_cluster(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skate`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _note
            return args.handler(args)
    except SpecError as error:  # every command alike: FILE:LINE: PATH: MESSAGE, as 'skate validate' prints them
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return _debug(args, 1)
    except SkateError as error:
        print(f"skate: error: {error}", file=sys.stderr)
        return _debug(args, 1)
    except KeyboardInterrupt:
        print("skate: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a failure we did not foresee: one line, the traceback on --debug
        print(f"skate: error: {describe_error(error)} (run with --debug for the traceback)", file=sys.stderr)
        return _debug(args, 1)


def _note(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
          line: str | None = None) -> None:
    """A spec's note in one line (``skate: note: ...``); other warnings as Python shows them, skate's
    on the terminal and others with Ray's messages (:mod:`skate.runs.ray_log`)."""
    from skate.runs.ray_log import terminal, warning_stream

    if issubclass(category, SpecNote):
        print(f"skate: note: {message}", file=terminal())
    elif issubclass(category, ExposureWarning):
        print(f"skate: warning: {message}", file=terminal())
    else:
        warning_stream(filename).write(warnings.formatwarning(message, category, filename, lineno, line))


def _debug(args: argparse.Namespace, code: int) -> int:
    if args.debug:
        traceback.print_exc()
    return code


if __name__ == "__main__":
    sys.exit(main())
