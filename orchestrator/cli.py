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
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from orchestrator.errors import CommandExit, HealthExit

if TYPE_CHECKING:  # the real imports are deferred: --health must start fast
    import logging

    from orchestrator.config import Config
    from orchestrator.market_calendar import MarketCalendar


EXAMPLES = """\
examples:
  orchestrator --daily                      run today's daily pipeline (snakemake daily)
  orchestrator --daily --dry-run            show what would run, and why
  orchestrator --daily --session 2026-11-20 backfill a past session
  orchestrator --intraday                   loop: prices every minute, features/signals every 5
  orchestrator --intraday --once --dry-run  show what one tick would run now
  orchestrator --full                       daily run, then the intraday loop until Ctrl+C
  orchestrator --health                     green/yellow/red per source (--json for monitoring)
  orchestrator --update-stale --dry-run     plan a refresh of stale sources
  orchestrator graph                        the tasks by tier and what each needs (--dot)
  orchestrator schedule install --cron      print crontab lines (also --launchd, --systemd)

exit status: 0 ok, 1 a task failed, 2 bad usage or config, 3 already running.
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
        "command", nargs="*", help="`health`, `summary`, `graph`, or `schedule install`"
    )
    parser.add_argument("--dry-run", "-n", action="store_true", help="show what would run")
    parser.add_argument("--once", action="store_true", help="intraday: run one tick and exit")
    parser.add_argument("--interval", type=float, help="intraday: seconds between ticks")
    parser.add_argument("--cores", type=int, help="daily: cores for snakemake")
    parser.add_argument("--session", help="daily/summary: a past session (YYYY-MM-DD)")
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
    for flag, on, allowed, needs in (
        ("--json", args.json, health, "--health"),
        ("--min-staleness", args.min_staleness, args.update_stale, "--update-stale"),
        ("--launchd", args.launchd, schedule, "the schedule command"),
        ("--cron", args.cron, schedule, "the schedule command"),
        ("--systemd", args.systemd, schedule, "the schedule command"),
        ("--dest", args.dest, schedule, "the schedule command"),
    ):
        if on and not allowed:
            parser.error(f"{flag} needs {needs}")
    if args.session and not re.match(_ISO_DATE, args.session):
        parser.error(f"--session {args.session!r} is not a date (YYYY-MM-DD)")
    intraday_only = [
        flag for flag, on in (("--once", args.once), ("--interval", args.interval)) if on
    ]
    if intraday_only and not args.intraday:
        parser.error(f"{intraday_only[0]} needs --intraday")
    daily_only = [
        flag for flag, on in (("--cores", args.cores), ("--scheduled", args.scheduled)) if on
    ]
    if daily_only and not (args.daily or args.full):
        parser.error(f"{daily_only[0]} needs --daily")
    if args.session and not (args.daily or args.command[:1] == ["summary"]):
        parser.error("--session needs --daily (or the summary command)")
    if args.interval is not None and args.interval < MIN_INTERVAL_SECONDS:
        parser.error(
            f"--interval must be a positive number of seconds, at least {MIN_INTERVAL_SECONDS:g}"
        )
    if args.cores is not None and args.cores < 1:
        parser.error("--cores must be at least 1")
    if args.dot and args.command[:1] != ["graph"]:
        parser.error("--dot needs the graph command")
    if args.dry_run and (args.full or args.health or args.check_config):
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
    from orchestrator.errors import ConfigError, OrchestratorError, UsageError

    try:
        return _dispatch(args, parser)
    except ConfigError as error:
        print(f"orchestrator: bad configuration: {error}", file=sys.stderr)
        return CommandExit.USAGE
    except UsageError as error:
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
    from orchestrator.config import load_config

    config = load_config(config_path)
    if args.check_config:
        print(f"{config_path}: valid ({len(config.pipeline.tasks)} tasks)")
        return CommandExit.OK
    if command == ["graph"]:
        from orchestrator import graph

        print(graph.render_dot(config.pipeline) if args.dot else graph.render_text(config.pipeline))
        return CommandExit.OK
    if command[:2] == ["schedule", "install"]:
        return _schedule_install(args, parser, config)
    if command[:1] == ["summary"]:
        return _summary(config, args.session)
    if command:
        parser.error(f"unknown command {' '.join(command)!r}")
    from orchestrator.logs import log_to_console_and_file

    log_to_console_and_file(config.logs_dir)
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


def run_daily(config: Config, args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """``snakemake daily`` under the daily lock, then the run's summary.

    SIGTERM or Ctrl+C (or ``stop`` set by a caller) stops Snakemake's whole
    process group: the runners record the interruption, no sentinel is written.
    """
    import signal
    from dataclasses import replace
    from datetime import date

    from orchestrator.errors import UsageError
    from orchestrator.pipeline import session_of_run
    from orchestrator.run_summary import daily_summary
    from orchestrator.snakemake_runs import (
        SnakemakeCall,
        configfile_of,
        exclusive,
        family_lock_path,
        run_snakemake,
    )

    calendar = _calendar(config)
    now = _now(config)
    if args.scheduled and not _daily_is_due(config, calendar, now):
        return CommandExit.OK
    overrides: list[str] = []
    if args.session:
        try:
            config = replace(config, session=date.fromisoformat(args.session))
        except ValueError:
            raise UsageError(f"--session {args.session!r} is not a date (YYYY-MM-DD)") from None
        overrides.append(f"session={args.session}")
    if config.now is not None:
        overrides.append(f"now={now.isoformat()}")
    session = session_of_run(calendar, now, config.session)
    call = SnakemakeCall(
        targets=("daily",),
        cores=args.cores or config.daily_cores,
        dry_run=args.dry_run,
        config_overrides=tuple(overrides),
        configfile=configfile_of(config),
        quiet=() if args.dry_run else ("rules", "host"),
    )
    if stop is None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    _logger().info(
        "▶ daily pipeline for session %s%s", session, " (dry run)" if args.dry_run else ""
    )
    with exclusive(family_lock_path(config.state_dir, "daily"), "a daily run"):
        code = run_snakemake(call, config.base_dir, stop_requested=stop)
    if stop.is_set():
        _logger().warning("✗ daily run stopped; interrupted tasks are recorded as failed")
        return CommandExit.FAILED
    if args.dry_run:
        return CommandExit.OK if code == 0 else CommandExit.FAILED
    text, ok = daily_summary(config, session)
    print(text)
    return CommandExit.OK if code == 0 and ok else CommandExit.FAILED


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
    )
    lock = config.locks_dir / "intraday-loop.lock"
    if args.once:
        return loop.run(once=True)
    with exclusive(lock, "the intraday loop"):
        _logger().info(
            "▶ intraday loop every %.0f s (Ctrl+C stops after the current tick)", loop.interval
        )
        return loop.run()


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
    for family, snakemake_args in snakemake_forcerun_args(plan, config, calendar, now).items():
        targets, forced = _split_forcerun(snakemake_args)
        call = SnakemakeCall(
            targets=targets,
            cores=config.daily_cores,
            dry_run=args.dry_run,
            forcerun=forced,
            config_overrides=(f"now={now.isoformat()}",) if config.now is not None else (),
            configfile=configfile_of(config),
        )
        print(f"{family}: {format_command(call.command(config.base_dir / 'Snakefile'))}")
        with exclusive(family_lock_path(config.state_dir, family), f"a {family} run"):
            code = run_snakemake(call, config.base_dir)
        worst = max(worst, CommandExit.OK if code == 0 else CommandExit.FAILED)
    return worst


def _split_forcerun(snakemake_args: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if "--forcerun" not in snakemake_args:
        return tuple(snakemake_args), ()
    index = snakemake_args.index("--forcerun")
    return tuple(snakemake_args[:index]), tuple(snakemake_args[index + 1 :])


def _schedule_install(
    args: argparse.Namespace, parser: argparse.ArgumentParser, config: Config
) -> int:
    kinds = [kind for kind in ("launchd", "cron", "systemd") if getattr(args, kind)]
    if len(kinds) != 1:
        parser.error("schedule install needs exactly one of --launchd, --cron, --systemd")
    from orchestrator.schedule import install

    install(kinds[0], config, args.dest, args.dry_run)
    return CommandExit.OK


if __name__ == "__main__":
    sys.exit(main())
