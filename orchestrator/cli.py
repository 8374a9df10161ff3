"""The ``orchestrator`` command: one entry point for every way of running the pipeline.

Exit status: 0 success; 1 a task failed (or, for ``--health``, a source is
yellow; 2 when red); 2 bad usage or bad configuration; 3 already running.
User mistakes print one sentence, never a traceback.

Imports are deferred to the handlers: ``--health`` must start in a few
hundredths of a second and cannot pay for pandas or Snakemake.
"""

from __future__ import annotations

import argparse
import sys
import threading
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from orchestrator.errors import CommandExit, HealthExit

if TYPE_CHECKING:  # the real imports are deferred: --health must start fast
    import logging

    from orchestrator.config import Config
    from orchestrator.market_calendar import MarketCalendar
    from orchestrator.snakemake_runs import SnakemakeCall


EXAMPLES = """\
examples:
  orchestrator --daily                      run today's daily pipeline (snakemake daily)
  orchestrator --daily --dry-run            show what would run, and why
  orchestrator --daily --session 2026-11-20 backfill a past session
  orchestrator --daily --profile slurm      the same, each task a job on Slurm (profiles/slurm)
  orchestrator --intraday                   loop: prices every minute, features/signals every 5
  orchestrator --intraday --once --dry-run  show what one tick would run now
  orchestrator --full                       daily run, then the intraday loop until Ctrl+C
  orchestrator --health                     green/yellow/red per source (--json for monitoring)
  orchestrator serve                        the dashboard on http://127.0.0.1:8787 (--host, --port)
  orchestrator metrics                      Prometheus metrics (--textfile PATH for node_exporter)
  orchestrator --update-stale --dry-run     plan a refresh of stale sources
  orchestrator graph                        the tasks by tier and what each needs (--dot)
  orchestrator forcerun sentiment           re-run sentiment and what depends on it
  orchestrator backfill --from 2026-11-02 --to 2026-11-20   every session, oldest first
  orchestrator logs prices_daily            that task's log of the current session
  orchestrator schedule install --cron      print crontab lines (also --launchd, --systemd)
  orchestrator schedule status --systemd    are the generated files installed and current?
  orchestrator schedule uninstall --launchd remove them (and print how to unload them)
  orchestrator providers                    what each provider serves; are its keys set?
  orchestrator providers check              one authenticated call per provider in use
  orchestrator import-seed ../old/dependency_graph.yaml --dry-run   move in from the seed
  orchestrator alerts check                 evaluate the alert rules now (for cron)
  orchestrator alerts test                  one test message to every destination

exit status: 0 ok, 1 a task failed, 2 bad usage, config or state, 3 already running.
--health: 0 all green, 1 any yellow or unknown or a failed task, 2 any red or a
failed critical task, 3 could not check.
"""


def _logger() -> logging.Logger:
    """The CLI's logger; ``logging`` is imported only by the commands that log."""
    import logging

    return logging.getLogger("orchestrator")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(CommandExit.USAGE, f"{self.prog}: error: {message}\n(see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="orchestrator",
        description="Market-data pipeline orchestrator.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--daily", action="store_true", help="run the daily pipeline once")
    mode.add_argument("--intraday", action="store_true", help="run the intraday loop")
    mode.add_argument("--full", action="store_true", help="daily run, then the intraday loop")
    mode.add_argument("--health", action="store_true", help="show the health dashboard")
    mode.add_argument("--update-stale", action="store_true", help="re-run stale sources")
    mode.add_argument("--check-config", action="store_true", help="validate config.yaml only")
    parser.add_argument(
        "command",
        nargs="*",
        help="`health`, `summary`, `graph`, `forcerun TASK...`, `backfill`, `logs TASK`, "
        "`schedule install|uninstall|status`, `providers [check [NAME]|record NAME]`, "
        "`alerts check|test`, `serve`, `metrics [--textfile PATH]`, "
        "or `import-seed PATH/dependency_graph.yaml`",
    )
    parser.add_argument("--dry-run", "-n", action="store_true", help="show what would run")
    parser.add_argument("--once", action="store_true", help="intraday: run one tick and exit")
    parser.add_argument(
        "--interval", type=float, help="intraday: longest sleep between ticks (seconds)"
    )
    parser.add_argument("--cores", type=int, help="daily: cores for snakemake")
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="daily, backfill, forcerun, update-stale: snakemake's profiles/NAME (e.g. slurm)",
    )
    parser.add_argument("--session", help="daily/summary/forcerun/logs: a session (YYYY-MM-DD)")
    parser.add_argument("--from", dest="first", help="backfill: the first session (YYYY-MM-DD)")
    parser.add_argument("--to", dest="last", help="backfill: the last session (YYYY-MM-DD)")
    parser.add_argument("--slot", help="logs: an intraday slot (HHMM; default the latest)")
    parser.add_argument("--follow", "-f", action="store_true", help="logs: keep printing")
    parser.add_argument(
        "--scheduled",
        action="store_true",
        help="daily: do nothing unless a session has started (for cron)",
    )
    parser.add_argument("--json", action="store_true", help="health: one JSON document")
    parser.add_argument("--dot", action="store_true", help="graph: Graphviz DOT, not text")
    parser.add_argument(
        "--min-staleness",
        choices=("yellow", "red"),
        help="update-stale: the least stale status to refresh (default yellow)",
    )
    parser.add_argument("--launchd", action="store_true", help="schedule: launchd plists")
    parser.add_argument("--cron", action="store_true", help="schedule: crontab lines")
    parser.add_argument("--systemd", action="store_true", help="schedule: systemd user units")
    parser.add_argument("--dest", type=Path, help="schedule: where to write the files")
    parser.add_argument(
        "--scripts-root", type=Path, help="import-seed: the folder the seed's scripts are in"
    )
    parser.add_argument(
        "--merge-duplicates",
        action="store_true",
        help="import-seed: one task for intraday tasks running the same script and args",
    )
    parser.add_argument("--host", help="serve: the address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="serve: the port (default 8787)")
    parser.add_argument(
        "--textfile", type=Path, help="metrics: write them to this file, atomically (node_exporter)"
    )
    parser.add_argument("--symbols", help="providers record: comma-separated symbols")
    parser.add_argument("--out", type=Path, help="providers record: the folder for responses")
    parser.add_argument("--config", type=Path, help="config file (default: config.yaml)")
    parser.add_argument("--project", type=Path, help="project folder (default: found)")
    return parser


def find_project(explicit: Path | None) -> Path:
    """The folder holding the Snakefile: ``--project``, the current one, or this install's."""
    from orchestrator.errors import UsageError

    candidates = [explicit] if explicit else [Path.cwd(), Path(__file__).resolve().parent.parent]
    for candidate in candidates:
        if candidate is not None and (candidate / "Snakefile").is_file():
            return candidate.resolve()
    raise UsageError(
        f"no Snakefile in {candidates[0]}; run from the project folder or pass --project"
    )


MIN_INTERVAL_SECONDS = 1.0
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


def _check_usage(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse flags that mean nothing for the chosen mode, and malformed values."""
    import re

    health = args.health or args.command[:1] == ["health"]
    schedule = args.command[:1] == ["schedule"]
    recording = args.command[:2] == ["providers", "record"]
    seeding = args.command[:1] == ["import-seed"]
    serving = args.command[:1] == ["serve"]
    metrics = args.command[:1] == ["metrics"]
    for flag, on, allowed, needs in (
        ("--json", args.json, health, "--health"),
        ("--min-staleness", args.min_staleness, args.update_stale, "--update-stale"),
        ("--launchd", args.launchd, schedule, "the schedule command"),
        ("--cron", args.cron, schedule, "the schedule command"),
        ("--systemd", args.systemd, schedule, "the schedule command"),
        ("--dest", args.dest, schedule, "the schedule command"),
        ("--symbols", args.symbols, recording, "providers record"),
        ("--scripts-root", args.scripts_root, seeding, "the import-seed command"),
        ("--merge-duplicates", args.merge_duplicates, seeding, "the import-seed command"),
        ("--host", args.host, serving, "the serve command"),
        ("--port", args.port is not None, serving, "the serve command"),
        ("--textfile", args.textfile, metrics, "the metrics command"),
        ("--out", args.out, recording, "providers record"),
    ):
        if on and not allowed:
            parser.error(f"{flag} needs {needs}")
    if args.port is not None and not 1 <= args.port <= 65535:
        parser.error("--port must be between 1 and 65535")
    for flag, value in (("--session", args.session), ("--from", args.first), ("--to", args.last)):
        if value and not re.match(_ISO_DATE, value):
            parser.error(f"{flag} {value!r} is not a date (YYYY-MM-DD)")
    command = args.command[:1]
    for flag, on, allowed in (
        ("--from", args.first, command == ["backfill"]),
        ("--to", args.last, command == ["backfill"]),
        ("--slot", args.slot, command == ["logs"]),
        ("--follow", args.follow, command == ["logs"]),
    ):
        if on and not allowed:
            parser.error(
                f"{flag} needs the {'backfill' if flag in ('--from', '--to') else 'logs'} command"
            )
    if command == ["backfill"] and not (args.first and args.last):
        parser.error("backfill needs --from and --to")
    intraday_only = [
        flag for flag, on in (("--once", args.once), ("--interval", args.interval)) if on
    ]
    if intraday_only and not args.intraday:
        parser.error(f"{intraday_only[0]} needs --intraday")
    daily_only = [
        flag for flag, on in (("--cores", args.cores), ("--scheduled", args.scheduled)) if on
    ]
    runs_daily = args.daily or args.full or command in (["backfill"], ["forcerun"])
    if daily_only and not (runs_daily if daily_only[0] == "--cores" else args.daily or args.full):
        parser.error(f"{daily_only[0]} needs --daily")
    if args.profile and not (
        args.daily or args.update_stale or command in (["backfill"], ["forcerun"])
    ):
        parser.error("--profile needs --daily, --update-stale, or the backfill or forcerun command")
    if args.session and not (args.daily or command in (["summary"], ["forcerun"], ["logs"])):
        parser.error("--session needs --daily (or the summary, forcerun or logs command)")
    if args.interval is not None and args.interval < MIN_INTERVAL_SECONDS:
        parser.error(
            f"--interval must be a positive number of seconds, at least {MIN_INTERVAL_SECONDS:g}"
        )
    if args.cores is not None and args.cores < 1:
        parser.error("--cores must be at least 1")
    if args.dot and args.command[:1] != ["graph"]:
        parser.error("--dot needs the graph command")
    if args.dry_run and (args.full or args.health or args.check_config or command == ["logs"]):
        parser.error("--dry-run works with --daily, --intraday and --update-stale")


def main(argv: list[str] | None = None) -> int:
    """The command; a closed output pipe (``orchestrator --health | head``) ends it quietly."""
    try:
        code = _main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        import os

        # Python would report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return CommandExit.FAILED


def _main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_usage(args, parser)
    from orchestrator.errors import ConfigError, OrchestratorError, StateError, UsageError

    try:
        return _dispatch(args, parser)
    except ConfigError as error:
        print(f"orchestrator: bad configuration: {error}", file=sys.stderr)
        return CommandExit.USAGE
    except (UsageError, StateError) as error:
        print(f"orchestrator: {error}", file=sys.stderr)
        return CommandExit.USAGE
    except OrchestratorError as error:
        from orchestrator.snakemake_runs import AlreadyRunning

        print(f"orchestrator: {error}", file=sys.stderr)
        return (
            CommandExit.ALREADY_RUNNING if isinstance(error, AlreadyRunning) else CommandExit.FAILED
        )
    except KeyboardInterrupt:
        print("orchestrator: interrupted", file=sys.stderr)
        return CommandExit.INTERRUPTED


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    project = find_project(args.project)
    config_path = args.config or project / "config.yaml"
    command = args.command
    import os

    os.chdir(project)  # Snakemake and the relative state/ paths work from here
    if args.health or command[:1] == ["health"]:
        return _health(config_path, args.json)
    if command[:1] == ["import-seed"]:
        return _import_seed(args, parser, config_path, command[1:])
    from orchestrator.config import load_config, load_config_cached

    # A daily run's config is validated once per content (jsonschema and PyYAML cost
    # more than a no-op run may); Snakemake's own parse checks the rest when it runs.
    config = load_config_cached(config_path) if args.daily else load_config(config_path)
    from orchestrator.state_check import check_state

    if args.check_config:
        check_state(config)
        print(f"{config_path}: valid ({len(config.pipeline.tasks)} tasks)")
        return CommandExit.OK
    if command == ["graph"]:
        from orchestrator import graph

        print(graph.render_dot(config.pipeline) if args.dot else graph.render_text(config.pipeline))
        return CommandExit.OK
    if command[:1] == ["schedule"]:
        return _schedule(args, parser, config, command[1:])
    if command[:1] == ["providers"]:
        return _providers(args, parser, config, command[1:])
    if command == ["serve"]:
        from orchestrator.web.server import DEFAULT_HOST, DEFAULT_PORT, serve

        serve(
            config_path,
            host=args.host or DEFAULT_HOST,
            port=args.port if args.port is not None else DEFAULT_PORT,
            base_dir=project,
        )
        return CommandExit.OK
    if command == ["metrics"]:
        from orchestrator.metrics import render_metrics, write_textfile

        if args.textfile:
            write_textfile(config, args.textfile)
        else:
            sys.stdout.write(render_metrics(config).decode())
        return CommandExit.OK
    if command[:1] == ["alerts"]:
        check_state(config)
        from orchestrator.logs import log_to_console_and_file

        log_to_console_and_file(config.logs_dir)
        return _alerts(config, parser, command[1:])
    if command and command[0] not in ("summary", "logs", "forcerun", "backfill"):
        parser.error(f"unknown command {' '.join(command)!r}")
    if command[:1] == ["logs"]:
        return _logs(config, command[1:], args)  # log files only: no database
    check_state(config)
    if command[:1] == ["summary"]:
        return _summary(config, args.session)
    from orchestrator.logs import log_to_console_and_file

    log_to_console_and_file(config.logs_dir)
    if command[:1] == ["forcerun"]:
        return run_forcerun(config, args, command[1:])
    if command[:1] == ["backfill"]:
        return run_backfill(config, args)
    if args.daily:
        return run_daily(config, args)
    if args.intraday:
        return run_intraday(config, args)
    if args.full:
        return run_full(config, args)
    if args.update_stale:
        return run_update_stale(config, args)
    parser.print_help()
    return CommandExit.USAGE


# -- handlers -------------------------------------------------------------------


def _health(config_path: Path, as_json: bool) -> int:
    """The dashboard; exit 0 green, 1 yellow or unknown, 2 red, 3 could not check."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.health import main_health

    try:
        return main_health(config_path, as_json=as_json)
    except OrchestratorError as error:
        print(f"orchestrator: cannot check health: {error}", file=sys.stderr)
        return HealthExit.UNKNOWN


def _calendar(config: Config) -> MarketCalendar:
    from orchestrator.market_calendar import load_calendar

    return load_calendar(config.calendar_name, config.cache_dir)


def _now(config: Config) -> datetime:
    from orchestrator.clock import clock_for

    return clock_for(config.now)()


def _summary(config: Config, session_text: str | None) -> int:
    from datetime import date

    from orchestrator.errors import UsageError
    from orchestrator.run_summary import daily_summary

    calendar = _calendar(config)
    try:
        session = (
            date.fromisoformat(session_text)
            if session_text
            else calendar.current_session(_now(config))
        )
    except ValueError:
        raise UsageError(f"--session {session_text!r} is not a date (YYYY-MM-DD)") from None
    text, ok = daily_summary(config, session)
    print(text)
    return CommandExit.OK if ok else CommandExit.FAILED


def _daily_call(
    config: Config,
    session: date | None,
    cores: int | None,
    dry_run: bool,
    forcerun: tuple[str, ...] = (),
    profile: Path | None = None,
) -> SnakemakeCall:
    """``snakemake daily`` for ``session`` (``None``: the current one), with the clock pinned."""
    from orchestrator.snakemake_runs import SnakemakeCall, configfile_of

    overrides = [f"session={session}"] if session else []
    if config.now is not None:
        overrides.append(f"now={_now(config).isoformat()}")
    return SnakemakeCall(
        targets=("daily",),
        cores=cores or config.daily_cores,
        dry_run=dry_run,
        forcerun=forcerun,
        config_overrides=tuple(overrides),
        configfile=configfile_of(config),
        quiet=() if dry_run else ("rules", "host"),
        profile=profile,
    )


def _profile(config: Config, args: argparse.Namespace) -> Path | None:
    """The folder of ``--profile NAME`` in the project, or ``None`` without the flag."""
    from orchestrator.snakemake_runs import resolve_profile

    return resolve_profile(config.base_dir, args.profile) if args.profile else None


def _stop_event_on_signals() -> threading.Event:
    import signal

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _parse_session(text: str | None) -> date | None:
    from orchestrator.errors import UsageError

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--session {text!r} is not a date (YYYY-MM-DD)") from None


def _session_built(config: Config, session: date) -> bool:
    from orchestrator.sentinel import SentinelStatus, read_sentinel

    return all(
        (read_sentinel(config.base_dir / task.target(session)) or {}).get("status")
        == SentinelStatus.SUCCESS
        for task in config.pipeline.family("daily")
    )


def _run_daily_snakemake(config: Config, call: SnakemakeCall, stop: threading.Event) -> int:
    """The daily run through Snakemake's API in a worker (no exit wait), or its CLI.

    A dry run prints the CLI's plan; a profile (a cluster's executor) is the
    CLI's to load.
    """
    from orchestrator.snakemake_runs import run_snakemake
    from orchestrator.snakemake_worker import run_in_worker

    if call.dry_run or call.profile is not None:
        return run_snakemake(call, config.base_dir, stop_requested=stop)
    # Every daily task at its longest, one after another: a worker past that is hung.
    limit = sum(task.longest_run.total_seconds() for task in config.pipeline.family("daily"))
    return run_in_worker(call, config.base_dir, limit + 60.0, stop)


def _session_consistent(config: Config, session: date) -> bool:
    """Every daily sentinel of ``session`` exists, newer than its needs', its data stored.

    Then ``snakemake daily`` would run nothing: no target is missing, none is
    older than an input (a ``--forcerun X --until X`` leaves its dependents
    older), and none is removed for lost data (``sentinel_without_data``).
    """
    from orchestrator.workflow_support import sentinel_without_data

    modified: dict[str, float] = {}
    for task in config.pipeline.family("daily"):
        try:
            modified[task.name] = (config.base_dir / task.target(session)).stat().st_mtime
        except FileNotFoundError:
            return False
    for task in config.pipeline.family("daily"):
        if any(modified[task.name] < modified[need] for need in task.needs if need in modified):
            return False
        if sentinel_without_data(config, task, session):
            return False
    return True


def run_daily(
    config: Config,
    args: argparse.Namespace,
    stop: threading.Event | None = None,
    forcerun: tuple[str, ...] = (),
) -> int:
    """``snakemake daily`` under the daily lock, then the run's summary.

    SIGTERM or Ctrl+C (or ``stop`` set by a caller) stops Snakemake's whole
    process group: the runners record the interruption, no sentinel is written.
    """
    from dataclasses import replace

    from orchestrator.pipeline import session_of_run
    from orchestrator.run_summary import daily_summary
    from orchestrator.snakemake_runs import exclusive, family_lock_path

    calendar = _calendar(config)
    now = _now(config)
    if args.scheduled and not _daily_is_due(config, calendar, now):
        return CommandExit.OK
    requested = _parse_session(args.session)
    config = replace(config, session=requested)
    session = session_of_run(calendar, now, requested)
    call = _daily_call(
        config, requested, args.cores, args.dry_run, forcerun, _profile(config, args)
    )
    stop = stop or _stop_event_on_signals()
    with exclusive(family_lock_path(config.state_dir, "daily"), "a daily run"):
        what = f" (forcing {', '.join(forcerun)} and downstream)" if forcerun else ""
        _logger().info(
            "▶ daily pipeline for session %s%s%s", session, what, " (dry run)" * args.dry_run
        )
        if not forcerun and not args.dry_run and _session_consistent(config, session):
            # What Snakemake would find (about a second to start it): nothing to do.
            _logger().info("• session %s is built and its data is stored; nothing to run", session)
            code = 0
        else:
            if not forcerun and _session_built(config, session):
                _logger().info("• session %s is already built; checking it is complete", session)
            code = _run_daily_snakemake(config, call, stop)
    if stop.is_set():
        _logger().warning("✗ daily run stopped; interrupted tasks are recorded as failed")
        return CommandExit.FAILED
    if args.dry_run:
        return CommandExit.OK if code == 0 else CommandExit.FAILED
    text, ok = daily_summary(config, session)
    print(text)
    from orchestrator.alerts import evaluate_safely

    evaluate_safely(config, _now(config), calendar)  # never raises: alerting never fails a run
    return CommandExit.OK if code == 0 and ok else CommandExit.FAILED


def run_forcerun(config: Config, args: argparse.Namespace, tasks: list[str]) -> int:
    """``--forcerun TASK...`` (and what depends on them) through the family lock.

    Daily tasks re-run for the current session (or ``--session``), with the
    summary; intraday tasks for their current slots, while in scope.
    """
    from orchestrator.errors import UsageError
    from orchestrator.snakemake_runs import (
        SnakemakeCall,
        configfile_of,
        exclusive,
        family_lock_path,
        run_snakemake,
    )

    if not tasks:
        raise UsageError("forcerun needs one or more task names (see `orchestrator graph`)")
    chosen = [config.pipeline.task(name) for name in tasks]
    daily = tuple(t.name for t in chosen if t.family == "daily")
    intraday = tuple(t.name for t in chosen if t.family == "intraday")
    if args.session and intraday:
        raise UsageError("--session applies to daily tasks; intraday tasks run their current slot")
    worst: int = CommandExit.OK
    if daily:
        worst = max(worst, run_daily(config, args, forcerun=daily))
    if intraday:
        calendar, now = _calendar(config), _now(config)
        due = [name for name in intraday if name in config.pipeline.due_slots(calendar, now)]
        for name in sorted(set(intraday) - set(due)):
            _logger().info("• %s has no slot due now; the loop runs it at its next slot", name)
        if due:
            overrides = (f"now={now.isoformat()}",) if config.now is not None else ()
            call = SnakemakeCall(
                targets=("intraday",),
                cores=2,
                dry_run=args.dry_run,
                forcerun=tuple(due),
                config_overrides=overrides,
                configfile=configfile_of(config),
                profile=_profile(config, args),
            )
            with exclusive(family_lock_path(config.state_dir, "intraday"), "an intraday run"):
                code = run_snakemake(call, config.base_dir)
            worst = max(worst, CommandExit.OK if code == 0 else CommandExit.FAILED)
    return worst


def run_backfill(config: Config, args: argparse.Namespace) -> int:
    """Every session from ``--from`` to ``--to``, oldest first, under one daily lock.

    Built sessions are no-ops, so re-running a backfill resumes it.
    """
    from dataclasses import replace

    from orchestrator.errors import UsageError
    from orchestrator.pipeline import session_of_run
    from orchestrator.run_summary import daily_summary
    from orchestrator.snakemake_runs import exclusive, family_lock_path, run_snakemake

    first, last = date.fromisoformat(args.first), date.fromisoformat(args.last)
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    calendar, now = _calendar(config), _now(config)
    sessions = calendar.sessions_in_range(first, last)
    if not sessions:
        raise UsageError(f"no {calendar.name} session from {first} to {last}")
    session_of_run(calendar, now, sessions[-1])  # refuses a range reaching past today
    profile = _profile(config, args)
    stop = _stop_event_on_signals()
    failed: list[date] = []
    with exclusive(family_lock_path(config.state_dir, "daily"), "a daily run"):
        for number, session in enumerate(sessions, start=1):
            if stop.is_set():
                break
            prefix = f"[{number}/{len(sessions)}] session {session}"
            if _session_built(config, session):
                print(f"{prefix}: already built")
                continue
            if args.dry_run:
                print(f"{prefix}: would be built")
                continue
            print(f"{prefix}: building", flush=True)
            call = _daily_call(config, session, args.cores, False, profile=profile)
            code = run_snakemake(call, config.base_dir, stop_requested=stop)
            _text, ok = daily_summary(replace(config, session=session), session)
            print(f"{prefix}: {'built' if code == 0 and ok else 'FAILED'}", flush=True)
            if not (code == 0 and ok):
                failed.append(session)
    if stop.is_set():
        print("backfill stopped; run it again to resume")
        return CommandExit.FAILED
    done = len(sessions) - len(failed)
    verb = "would leave" if args.dry_run else "left"
    print(
        f"backfill {first} to {last}: {done}/{len(sessions)} sessions built"
        + (f"; failed: {', '.join(map(str, failed))} (run it again to retry)" if failed else "")
        + ("" if not args.dry_run else f" ({verb} the rest to build)")
    )
    return CommandExit.FAILED if failed else CommandExit.OK


def _logs(config: Config, tasks: list[str], args: argparse.Namespace) -> int:
    """Print one run's task log: the current (or ``--session``) period, latest slot by default."""
    import time as wall

    from orchestrator.errors import UsageError

    if len(tasks) != 1:
        raise UsageError("logs needs one task name (see `orchestrator graph`)")
    task = config.pipeline.task(tasks[0])
    calendar, now = _calendar(config), _now(config)
    session = _parse_session(args.session) or (
        calendar.current_session(now) if task.family == "daily" else calendar.trading_day(now)
    )
    if task.family == "daily":
        if args.slot:
            raise UsageError(f"{task.name} is a daily task: it has no slots")
        path = config.base_dir / task.log(session)
    elif args.slot:
        path = config.base_dir / task.log(session, args.slot)
    else:
        folder = (config.base_dir / task.log(session, "0000")).parent
        found = sorted(folder.glob("*.log"))
        if not found:
            raise UsageError(f"no {task.name} log for session {session} in {folder}")
        path = found[-1]
    if not path.is_file():
        raise UsageError(f"no log {path}: {task.name} has not run for that period")
    with path.open(errors="replace") as log:
        sys.stdout.write(log.read())
        while args.follow:
            sys.stdout.flush()
            line = log.readline()
            if line:
                sys.stdout.write(line)
            else:
                wall.sleep(0.5)
    return CommandExit.OK


def _daily_is_due(config: Config, calendar: MarketCalendar, now: datetime) -> bool:
    """For schedulers: a session today, in exchange time, and its start time has passed."""
    local = now.astimezone(calendar.tz)
    if not calendar.is_session(local.date()):
        _logger().info("• %s is not a %s session; nothing to do", local.date(), calendar.name)
        return False
    if local.time() < config.daily_start_time:
        _logger().info(
            "• before the daily start time %s; nothing to do",
            config.daily_start_time.strftime("%H:%M"),
        )
        return False
    return True


def run_intraday(config: Config, args: argparse.Namespace) -> int:
    """The intraday loop (or one tick), holding the loop's lock."""
    import signal

    from orchestrator.clock import clock_for
    from orchestrator.intraday_loop import IntradayLoop, LoopControl
    from orchestrator.snakemake_runs import exclusive

    control = LoopControl()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: control.request_stop())
    loop = IntradayLoop(
        config,
        _calendar(config),
        clock_for(config.now),
        interval=args.interval or config.loop_interval_seconds,
        dry_run=args.dry_run,
        control=control,
        # One tick gains nothing from a living Snakemake; a loop gains a second a tick.
        worker=not args.once,
    )
    lock = config.locks_dir / "intraday-loop.lock"
    if args.once:
        return loop.run(once=True)
    with exclusive(lock, "the intraday loop"):
        _logger().info("▶ intraday loop: a tick as each slot begins (Ctrl+C stops after it)")
        try:
            return loop.run()
        finally:
            loop.close()


def run_full(config: Config, args: argparse.Namespace) -> int:
    """The daily run, then the intraday loop in a child restarted with backoff if it dies."""
    import signal
    import subprocess

    stop = threading.Event()
    child: list[subprocess.Popen[bytes]] = []

    def request_stop(*_: object) -> None:
        stop.set()
        if child and child[0].poll() is None:
            child[0].send_signal(signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    daily_code = run_daily(config, args, stop)
    if stop.is_set():
        return daily_code
    if daily_code != CommandExit.OK:
        _logger().warning("✗ the daily run had failures; starting the intraday loop anyway")
    command = [
        sys.executable,
        "-m",
        "orchestrator.cli",
        "--intraday",
        "--project",
        str(config.base_dir),
        "--config",
        config.source,
    ]
    backoff = 5.0
    while not stop.is_set():
        child[:] = [subprocess.Popen(command)]
        code = child[0].wait()
        if stop.is_set():
            break
        if code == CommandExit.ALREADY_RUNNING:
            _logger().error("✗ another intraday loop is running; --full stops")
            return CommandExit.ALREADY_RUNNING
        _logger().error(
            "✗ the intraday loop exited with status %d; restarting in %.0f s", code, backoff
        )
        stop.wait(backoff)
        backoff = min(backoff * 2, 300.0)
    _logger().info("• stopped")
    return daily_code


def run_update_stale(config: Config, args: argparse.Namespace) -> int:
    """Force the stale sources of each family for the current period."""
    from orchestrator.health import collect_health
    from orchestrator.snakemake_runs import (
        SnakemakeCall,
        configfile_of,
        exclusive,
        family_lock_path,
        format_command,
        run_snakemake,
    )
    from orchestrator.stale_plan import plan_stale_updates, snakemake_forcerun_args

    calendar = _calendar(config)
    now = _now(config)
    report = collect_health(config, now, calendar)
    level = args.min_staleness or "yellow"
    plan = plan_stale_updates(report, level, config)
    if not plan:
        print(f"Nothing is stale at or beyond {level}.")
        return CommandExit.OK
    for item in plan:
        print(f"  {item.task} ({item.family}): {item.reason}")
    worst = CommandExit.OK
    profile = _profile(config, args)
    for family, snakemake_args in snakemake_forcerun_args(plan, config, calendar, now).items():
        targets, forced = _split_forcerun(snakemake_args)
        call = SnakemakeCall(
            targets=targets,
            cores=config.daily_cores,
            dry_run=args.dry_run,
            forcerun=forced,
            config_overrides=(f"now={now.isoformat()}",) if config.now is not None else (),
            configfile=configfile_of(config),
            profile=profile,
        )
        print(f"{family}: {format_command(call.command(config.base_dir / 'Snakefile'))}")
        with exclusive(family_lock_path(config.state_dir, family), f"a {family} run"):
            code = run_snakemake(call, config.base_dir)
        worst = max(worst, CommandExit.OK if code == 0 else CommandExit.FAILED)
    return worst


def _alerts(config: Config, parser: argparse.ArgumentParser, words: list[str]) -> int:
    """``alerts check`` (cron) evaluates the rules now; ``alerts test`` pings every destination."""
    from orchestrator import alerts

    if words == ["check"]:
        produced = alerts.evaluate(config, _now(config), _calendar(config))
        for alert in produced:
            print(f"{alert.kind}: {alert.title}" + ("" if alert.delivered else " (pending)"))
        if not produced:
            print("no new alerts")
        return CommandExit.OK
    if words == ["test"]:
        results = alerts.send_test(config)
        if not results:
            print(f"no alert destinations: set {alerts.URLS_VARIABLE} in the environment or .env")
            return CommandExit.FAILED
        for label, accepted in results:
            print(f"{'ok' if accepted else 'FAILED'}  {label}{'' if accepted else ' (refused)'}")
        return CommandExit.OK if all(ok for _, ok in results) else CommandExit.FAILED
    parser.error("alerts needs `check` or `test`")


def _import_seed(
    args: argparse.Namespace, parser: argparse.ArgumentParser, config_path: Path, words: list[str]
) -> int:
    """``import-seed PATH/dependency_graph.yaml``: merge the seed's tasks into the config."""
    if len(words) != 1:
        parser.error("usage: import-seed PATH/dependency_graph.yaml [--scripts-root DIR]")
    from orchestrator.seed_import import run_import

    print(
        run_import(
            config_path,
            Path(words[0]),
            scripts_root=args.scripts_root,
            dry_run=args.dry_run,
            merge_duplicates=args.merge_duplicates,
        )
    )
    return CommandExit.OK


def _providers(
    args: argparse.Namespace, parser: argparse.ArgumentParser, config: Config, words: list[str]
) -> int:
    """``providers``, ``providers check [NAME]``, ``providers record NAME``."""
    from orchestrator import provider_commands

    if not words:
        print(provider_commands.list_providers(config))
        return CommandExit.OK
    if words[0] == "check" and len(words) <= 2:
        text, ok = provider_commands.check_providers(config, words[1] if len(words) == 2 else None)
        print(text)
        return CommandExit.OK if ok else CommandExit.FAILED
    if words[0] == "record" and len(words) == 2:
        if not (args.symbols and args.out):
            parser.error("providers record needs --symbols and --out")
        symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
        saved = provider_commands.record_responses(config, words[1], symbols, args.out)
        print(f"saved {len(saved)} responses (keys scrubbed) in {args.out}")
        return CommandExit.OK
    parser.error("usage: providers | providers check [NAME] | providers record NAME ...")


def _split_forcerun(snakemake_args: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if "--forcerun" not in snakemake_args:
        return tuple(snakemake_args), ()
    index = snakemake_args.index("--forcerun")
    return tuple(snakemake_args[:index]), tuple(snakemake_args[index + 1 :])


def _schedule(
    args: argparse.Namespace, parser: argparse.ArgumentParser, config: Config, action: list[str]
) -> int:
    """``schedule install|uninstall|status --launchd|--cron|--systemd``."""
    if action not in (["install"], ["uninstall"], ["status"]):
        parser.error("schedule needs one of: install, uninstall, status")
    kinds = [kind for kind in ("launchd", "cron", "systemd") if getattr(args, kind)]
    if len(kinds) != 1:
        parser.error(f"schedule {action[0]} needs exactly one of --launchd, --cron, --systemd")
    from orchestrator import schedule

    if action == ["install"]:
        schedule.install(kinds[0], config, args.dest, args.dry_run)
    elif action == ["uninstall"]:
        schedule.uninstall(kinds[0], config, args.dest, args.dry_run)
    elif not schedule.status(kinds[0], config, args.dest):
        return CommandExit.FAILED
    return CommandExit.OK


if __name__ == "__main__":
    sys.exit(main())
