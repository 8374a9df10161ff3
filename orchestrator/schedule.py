"""Scheduler entries for the two wrappers: launchd agents, crontab lines, systemd user units.

A schedule here only *wakes the wrappers up*; whether to run is decided by the
orchestrator. ``scripts/run-daily`` runs ``orchestrator --daily --scheduled``,
which does nothing unless today, in exchange time, is a trading session and
the exchange clock has reached ``daily.start_time``; a second run on the same
session is a cheap Snakemake no-op. ``scripts/run-intraday`` starts the
long-running loop, which sleeps while the market is closed; a second loop
exits at once (status 3, which the wrapper turns into 0). So an entry may fire
too often, but must never be missing at or after the start time:

- launchd and cron count in the machine's local time, not the exchange's. The
  daily entry gets every distinct local time, with its local weekdays, at
  which ``daily.start_time`` in the exchange zone falls over the coming year.
  Where the two zones change DST on different dates (Europe/London against
  America/New_York) that is two times a day, and the one landing before the
  exchange start is a no-op. Where the local time crosses midnight
  (Australia/Sydney) the weekdays move with it (Tue-Sat).
- cron and launchd count whole minutes, so a start time with seconds is
  rounded *up*: a firing before the start would be a no-op with none after it.
- systemd timers take the exchange zone itself (``OnCalendar=... America/New_York``,
  systemd >= 239), so one exact entry serves all year.
- missed firings: systemd's ``Persistent=true`` runs one at boot, launchd runs
  one missed in sleep on wake and the daily agent also runs at load (login);
  the ``--scheduled`` check makes a late run build the day's session only if it
  is a session day. Cron runs nothing it missed, so its block adds retry
  lines: every ``DAILY_RETRY_MINUTES`` after the start for six hours, which
  build the session if the start was missed or failed and are no-ops once it
  is built. systemd restarts a failed daily service on the same rhythm.

Every path in an entry is absolute (cron and launchd start jobs with a bare
environment elsewhere). Entries are regenerated, never edited: run
``orchestrator schedule install`` again after moving the project, changing
``daily.start_time`` or ``market.timezone``, or (cron, launchd) changing the
machine's time zone. Nothing here loads or enables a job: ``install`` writes
files and prints the commands that activate them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import plistlib
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.config import Config
from orchestrator.errors import UsageError
from orchestrator.files import write_atomically

logger = logging.getLogger(__name__)

KINDS = ("launchd", "cron", "systemd")
DAILY_LABEL = "com.market-pipeline.daily"
INTRADAY_LABEL = "com.market-pipeline.intraday"
DAILY_UNIT = "market-pipeline-daily"
INTRADAY_UNIT = "market-pipeline-intraday"
CRONTAB_FILE = "market-pipeline.crontab"
DAILY_WRAPPER = "scripts/run-daily"
INTRADAY_WRAPPER = "scripts/run-intraday"
VENV_ORCHESTRATOR = ".venv/bin/orchestrator"
DAILY_LOG = "scheduler-daily.log"
INTRADAY_LOG = "scheduler-intraday.log"
HORIZON_DAYS = 366  # a year from today holds every DST change of both zones
INTRADAY_CRON_MINUTES = 5
# A missed or failed daily run is tried again every 15 minutes for 6 hours
# (09:45 to 15:15 ET): the same session, before the close. A built session
# makes each retry a cheap no-op.
DAILY_RETRY_MINUTES = 15
DAILY_RETRY_COUNT = 23
RESTART_SECONDS = 30
DEFAULT_DESTS = {
    "launchd": Path("~/Library/LaunchAgents"),
    "systemd": Path("~/.config/systemd/user"),
}

Echo = Callable[[str], None]
UnitSections = dict[str, dict[str, str | int]]


@dataclass(frozen=True, order=True)
class LocalTime:
    """A wall-clock time of this machine and the local weekdays it fires on.

    ``weekdays`` use cron's and launchd's numbers: 0 is Sunday, 6 Saturday.
    """

    hour: int
    minute: int
    weekdays: tuple[int, ...]


# -- time zones -------------------------------------------------------------------


def machine_zone(localtime: Path = Path("/etc/localtime")) -> tzinfo:
    """This machine's time zone with its DST rules: the one cron and launchd count in.

    Read from ``/etc/localtime``: a link into the zoneinfo database (Linux,
    macOS) gives the zone's name, a copied zone file its rules. ``TZ`` is
    ignored on purpose: the daemons do not see the installing shell's
    environment. Without ``/etc/localtime`` only the current UTC offset is
    known, which misses DST changes, and a warning says so.
    """
    with contextlib.suppress(OSError):
        target = os.readlink(localtime)
        if "zoneinfo/" in target:
            with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                return ZoneInfo(target.split("zoneinfo/", 1)[1])
    with contextlib.suppress(OSError, ValueError), localtime.open("rb") as handle:
        return ZoneInfo.from_file(handle, key="localtime")
    fixed = datetime.now(UTC).astimezone().tzinfo or UTC
    logger.warning(
        "no usable /etc/localtime: using the fixed offset %s, which ignores DST; "
        "pass the machine's zone explicitly",
        fixed,
    )
    return fixed


def _zone(zone: str | tzinfo | None) -> tzinfo:
    if zone is None:
        return machine_zone()
    if isinstance(zone, str):
        try:
            return ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"unknown time zone {zone!r}") from None
    return zone


def _zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone)


def _cron_weekday(day: date) -> int:
    return day.isoweekday() % 7


def _exchange_weekdays(start: date | None, days: int) -> Iterable[date]:
    first = start or datetime.now(UTC).date()
    for offset in range(days):
        day = first + timedelta(days=offset)
        if day.weekday() < 5:
            yield day


def daily_local_times(
    config: Config,
    local_zone: str | tzinfo | None = None,
    start: date | None = None,
    days: int = HORIZON_DAYS,
) -> list[LocalTime]:
    """Local times (and local weekdays) of ``daily.start_time`` on exchange weekdays.

    Every exchange Monday to Friday in ``days`` days from ``start`` (default
    today, UTC) is converted; holidays are left to the wrapper's calendar
    check. The local moment is rounded up to the whole minute. One entry per
    distinct time, sorted; more than one means the zones' DST dates differ.
    """
    exchange = ZoneInfo(config.timezone)
    local = _zone(local_zone)
    found: dict[tuple[int, int], set[int]] = {}
    for day in _exchange_weekdays(start, days):
        moment = datetime.combine(day, config.daily_start_time, exchange).astimezone(UTC)
        if moment.second or moment.microsecond:
            moment = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        moment = moment.astimezone(local)
        found.setdefault((moment.hour, moment.minute), set()).add(_cron_weekday(moment.date()))
    return sorted(
        LocalTime(hour, minute, tuple(sorted(weekdays)))
        for (hour, minute), weekdays in found.items()
    )


def intraday_local_weekdays(
    config: Config,
    local_zone: str | tzinfo | None = None,
    start: date | None = None,
    days: int = HORIZON_DAYS,
) -> tuple[int, ...]:
    """Local weekdays (0 = Sunday) that overlap an exchange Monday to Friday.

    The cron keep-alive of the intraday loop fires on these: for a machine
    east of the exchange, Friday's session ends on a local Saturday.
    """
    exchange = ZoneInfo(config.timezone)
    local = _zone(local_zone)
    weekdays: set[int] = set()
    for day in _exchange_weekdays(start, days):
        begin = datetime.combine(day, time(0), exchange).astimezone(local).date()
        last = datetime.combine(day + timedelta(days=1), time(0), exchange) - timedelta(seconds=1)
        end = last.astimezone(local).date()
        while begin <= end:
            weekdays.add(_cron_weekday(begin))
            begin += timedelta(days=1)
    return tuple(sorted(weekdays))


# -- paths ------------------------------------------------------------------------


def wrapper_paths(config: Config) -> tuple[Path, Path]:
    """Absolute paths of ``scripts/run-daily`` and ``scripts/run-intraday``."""
    root = config.base_dir.resolve()
    return root / DAILY_WRAPPER, root / INTRADAY_WRAPPER


def _log_paths(config: Config) -> tuple[Path, Path]:
    logs = config.logs_dir.resolve()
    return logs / DAILY_LOG, logs / INTRADAY_LOG


# -- launchd ----------------------------------------------------------------------


def launchd_plists(
    config: Config, local_zone: str | tzinfo | None = None, start: date | None = None
) -> dict[str, bytes]:
    """``{file name: plist}`` of the daily and intraday launch agents.

    The daily agent fires at every local time of ``daily_local_times`` and
    at load (login), which catches up a day the machine was off at the start.
    The intraday agent starts at load and is restarted whenever it exits
    (at most every 30 s, so a loop already running elsewhere costs little).
    """
    root = str(config.base_dir.resolve())
    daily, intraday = wrapper_paths(config)
    daily_log, intraday_log = _log_paths(config)
    environment = {"PYTHONUNBUFFERED": "1"}
    intervals = [
        {"Weekday": weekday, "Hour": when.hour, "Minute": when.minute}
        for when in daily_local_times(config, local_zone, start)
        for weekday in when.weekdays
    ]
    jobs = {
        DAILY_LABEL: {
            "Label": DAILY_LABEL,
            "ProgramArguments": [str(daily)],
            "WorkingDirectory": root,
            "EnvironmentVariables": environment,
            "StartCalendarInterval": intervals,
            "RunAtLoad": True,
            "StandardOutPath": str(daily_log),
            "StandardErrorPath": str(daily_log),
        },
        INTRADAY_LABEL: {
            "Label": INTRADAY_LABEL,
            "ProgramArguments": [str(intraday)],
            "WorkingDirectory": root,
            "EnvironmentVariables": environment,
            "RunAtLoad": True,
            "KeepAlive": True,
            "ThrottleInterval": RESTART_SECONDS,
            "StandardOutPath": str(intraday_log),
            "StandardErrorPath": str(intraday_log),
        },
    }
    return {f"{label}.plist": plistlib.dumps(job) for label, job in jobs.items()}


# -- cron -------------------------------------------------------------------------


CronFields = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def daily_retry_times(when: LocalTime) -> list[CronFields]:
    """``(minutes, hours, weekdays)`` cron fields of the retries after the start ``when``.

    Retries past local midnight fall on the next local weekdays.
    """
    hours_by_minutes: dict[tuple[tuple[int, ...], tuple[int, ...]], list[int]] = {}
    minutes_by_hour: dict[tuple[int, tuple[int, ...]], list[int]] = {}
    for retry in range(1, DAILY_RETRY_COUNT + 1):
        day_shift, minute_of_day = divmod(
            when.hour * 60 + when.minute + retry * DAILY_RETRY_MINUTES, 24 * 60
        )
        weekdays = tuple(sorted((day + day_shift) % 7 for day in when.weekdays))
        hour, minute = divmod(minute_of_day, 60)
        minutes_by_hour.setdefault((hour, weekdays), []).append(minute)
    for (hour, weekdays), minutes in minutes_by_hour.items():
        hours_by_minutes.setdefault((tuple(minutes), weekdays), []).append(hour)
    return [
        (minutes, tuple(hours), weekdays) for (minutes, weekdays), hours in hours_by_minutes.items()
    ]


def _cron_list(values: Iterable[int], everything: range) -> str:
    """``1-5``, ``0,15,30``, ``*``: cron's shortest spelling of a set of values."""
    ordered = sorted(set(values))
    if ordered == list(everything):
        return "*"
    runs: list[list[int]] = []
    for value in ordered:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _cron_days(weekdays: Iterable[int]) -> str:
    return _cron_list(weekdays, range(7))


def _cron_word(path: Path) -> str:
    # cron turns an unescaped % into a newline before the shell sees the line
    return shlex.quote(str(path)).replace("%", "\\%")


def crontab_marker(config: Config) -> str:
    """The text after ``# BEGIN`` / ``# END`` around this project's crontab block."""
    digest = hashlib.blake2b(str(config.base_dir.resolve()).encode(), digest_size=4).hexdigest()
    return f"market-pipeline {digest}"


def crontab_block(
    config: Config, local_zone: str | tzinfo | None = None, start: date | None = None
) -> str:
    """This project's crontab lines, between ``# BEGIN``/``# END`` marker lines.

    No ``CRON_TZ``: the times are the machine's local ones. Each command first
    creates ``state/logs`` (state is disposable, and a redirect into a
    missing directory would stop the job without a trace).
    """
    zone = _zone(local_zone)
    daily, intraday = (_cron_word(path) for path in wrapper_paths(config))
    daily_log, intraday_log = (_cron_word(path) for path in _log_paths(config))
    logs = _cron_word(config.logs_dir.resolve())
    at = config.daily_start_time
    marker = crontab_marker(config)
    run_daily = f"mkdir -p {logs} && {daily} >> {daily_log} 2>&1"
    run_intraday = f"mkdir -p {logs} && PYTHONUNBUFFERED=1 {intraday} >> {intraday_log} 2>&1"
    lines = [
        f"# BEGIN {marker}",
        "# Generated by `orchestrator schedule install --cron`; regenerate, do not edit.",
        f"# Project: {config.base_dir.resolve()}",
        f"# Daily times are this machine's local time ({_zone_name(zone)}) of daily.start_time",
        f"# {at:%H:%M:%S} {config.timezone} over a year: DST differences give more than one.",
        "# The wrappers check the exchange calendar (DST, holidays, early closes) and do",
        "# nothing when it is not time, so extra firings are no-ops. A running intraday",
        "# loop holds a lock: the 5-minute keep-alive then exits at once.",
    ]
    starts = daily_local_times(config, zone, start)
    for when in starts:
        lines.append(f"{when.minute} {when.hour} * * {_cron_days(when.weekdays)} {run_daily}")
    lines.append(
        f"# Retries: every {DAILY_RETRY_MINUTES} minutes after the start; no-ops once "
        "the session is built."
    )
    retries = {
        f"{_cron_list(minutes, range(60))} {_cron_list(hours, range(24))} * * "
        f"{_cron_days(weekdays)} {run_daily}": None
        for when in starts
        for minutes, hours, weekdays in daily_retry_times(when)
    }
    lines.extend(retries)
    intraday_days = _cron_days(intraday_local_weekdays(config, zone, start))
    lines.append(f"*/{INTRADAY_CRON_MINUTES} * * * {intraday_days} {run_intraday}")
    lines.append(f"@reboot {run_intraday}")
    lines.append(f"# END {marker}")
    return "\n".join(lines) + "\n"


def crontab_install_command(config: Config, block_file: Path) -> str:
    """A shell command putting ``block_file`` into the user's crontab.

    It keeps every other line and replaces an earlier block of this project
    (matched by its marker), so running it twice installs the block once.
    """
    marker = crontab_marker(config)
    return (
        f"(crontab -l 2>/dev/null | sed '/^# BEGIN {marker}$/,/^# END {marker}$/d'; "
        f"cat {shlex.quote(str(block_file))}) | crontab -"
    )


# -- systemd ----------------------------------------------------------------------


def _systemd_exec(path: Path) -> str:
    quoted = '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return quoted.replace("%", "%%").replace("$", "$$")


def _systemd_path(path: Path) -> str:
    return str(path).replace("%", "%%")


def _ini(sections: UnitSections) -> str:
    parts = []
    for name, keys in sections.items():
        body = "".join(f"{key}={value}\n" for key, value in keys.items())
        parts.append(f"[{name}]\n{body}")
    return "\n".join(parts)


def systemd_units(config: Config) -> dict[str, str]:
    """``{file name: unit}`` of the daily service and timer and the intraday service.

    The timer's ``OnCalendar`` carries the exchange zone (systemd >= 239), so
    the machine's zone does not matter. The intraday service is stopped with
    ``KillMode=mixed``: SIGTERM goes to the wrapper, which passes it to the
    loop (finish the tick); whatever is left after the timeout is killed.
    """
    root = config.base_dir.resolve()
    daily, intraday = wrapper_paths(config)
    start = config.daily_start_time
    if start.microsecond:
        start = (datetime.combine(date.min, start) + timedelta(seconds=1)).time()
    start = start.replace(microsecond=0)
    on_calendar = f"Mon..Fri *-*-* {start:%H:%M:%S} {config.timezone}"
    daily_service: UnitSections = {
        "Unit": {
            "Description": f"Market pipeline: daily run ({root})",
            "StartLimitIntervalSec": DAILY_RETRY_MINUTES * 60 * (DAILY_RETRY_COUNT + 2),
            "StartLimitBurst": DAILY_RETRY_COUNT + 1,
        },
        "Service": {
            "Type": "oneshot",
            "WorkingDirectory": _systemd_path(root),
            "ExecStart": _systemd_exec(daily),
            "Environment": "PYTHONUNBUFFERED=1",
            # A failed run is tried again within the session, as cron's retry lines do.
            "Restart": "on-failure",
            "RestartSec": DAILY_RETRY_MINUTES * 60,
        },
    }
    daily_timer: UnitSections = {
        "Unit": {
            "Description": f"Market pipeline: daily run at {start:%H:%M} {config.timezone}"
            " on weekdays (the run checks the exchange calendar)"
        },
        "Timer": {"OnCalendar": on_calendar, "Persistent": "true"},
        "Install": {"WantedBy": "timers.target"},
    }
    intraday_service: UnitSections = {
        "Unit": {
            "Description": f"Market pipeline: intraday loop ({root})",
            "StartLimitIntervalSec": 0,
        },
        "Service": {
            "Type": "simple",
            "WorkingDirectory": _systemd_path(root),
            "ExecStart": _systemd_exec(intraday),
            "Environment": "PYTHONUNBUFFERED=1",
            "Restart": "always",
            "RestartSec": RESTART_SECONDS,
            "KillMode": "mixed",
        },
        "Install": {"WantedBy": "default.target"},
    }
    return {
        f"{DAILY_UNIT}.service": _ini(daily_service),
        f"{DAILY_UNIT}.timer": _ini(daily_timer),
        f"{INTRADAY_UNIT}.service": _ini(intraday_service),
    }


# -- install ----------------------------------------------------------------------


def render(
    kind: str,
    config: Config,
    local_zone: str | tzinfo | None = None,
    start: date | None = None,
) -> dict[str, bytes]:
    """``{file name: content}`` that ``install`` writes for ``kind``."""
    if kind == "launchd":
        return launchd_plists(config, local_zone, start)
    if kind == "cron":
        return {CRONTAB_FILE: crontab_block(config, local_zone, start).encode()}
    if kind == "systemd":
        return {name: text.encode() for name, text in systemd_units(config).items()}
    raise UsageError(f"unknown scheduler {kind!r}: use one of {', '.join(KINDS)}")


def _activation(kind: str, config: Config, paths: list[Path]) -> list[str]:
    if kind == "launchd":
        lines = ["To load the agents now (they also load at the next login):"]
        for path in paths:
            label = path.stem
            quoted = shlex.quote(str(path))
            lines.append(
                f"  launchctl bootout gui/$(id -u)/{label} 2>/dev/null; "
                f"launchctl bootstrap gui/$(id -u) {quoted}"
            )
        return lines
    if kind == "systemd":
        return [
            "To enable them:",
            "  systemctl --user daemon-reload",
            f"  systemctl --user enable --now {DAILY_UNIT}.timer {INTRADAY_UNIT}.service",
            "To keep them running while you are logged out:",
            "  loginctl enable-linger $USER",
        ]
    return [
        "Your crontab is not changed automatically. To install or update this block",
        "(other lines and other projects' blocks are kept):",
        f"  {crontab_install_command(config, paths[0])}",
    ]


def install(
    kind: str,
    config: Config,
    dest: Path | None = None,
    dry_run: bool = False,
    *,
    local_zone: str | tzinfo | None = None,
    start: date | None = None,
    echo: Echo = print,
) -> list[Path]:
    """Write the ``kind`` entries (launchd, cron, systemd) and return their paths.

    Destinations: ``~/Library/LaunchAgents`` (launchd), ``~/.config/systemd/user``
    (systemd), ``state/schedule/`` of the project (cron) unless ``dest`` is
    given. Files are replaced atomically; nothing is loaded, enabled or
    added to a crontab: the commands that do so are echoed instead, because
    a crontab is one file shared with the user's other jobs (the command
    printed for it replaces only this project's marked block). ``dry_run``
    echoes what would be written and writes nothing. Raises ``UsageError``
    for an unknown ``kind`` or a wrapper missing from ``config.base_dir``.
    """
    files = render(kind, config, local_zone, start)
    for wrapper in wrapper_paths(config):
        if not os.access(wrapper, os.X_OK):
            raise UsageError(
                f"{wrapper}: the wrapper is missing or not executable; "
                "run `schedule install` from the project that holds scripts/"
            )
    orchestrator = config.base_dir.resolve() / VENV_ORCHESTRATOR
    if not os.access(orchestrator, os.X_OK):
        echo(f"warning: {orchestrator} does not exist yet; the wrappers need it")
    default = DEFAULT_DESTS.get(kind, config.state_dir / "schedule")
    folder = Path(dest or default).expanduser().resolve()
    paths = [folder / name for name in files]
    for path, content in zip(paths, files.values(), strict=True):
        if dry_run:
            echo(f"# would write {path}:")
            echo(content.decode().rstrip("\n"))
        else:
            write_atomically(path, content, mode=0o644)
            logger.info("wrote %s", path)
            echo(f"wrote {path}")
            if kind == "cron":
                echo(content.decode().rstrip("\n"))
    if not dry_run:
        # launchd does not create the folder of StandardOutPath
        config.logs_dir.mkdir(parents=True, exist_ok=True)
    for line in _activation(kind, config, paths):
        echo(line)
    return paths


def _deactivation(kind: str, config: Config, paths: list[Path]) -> list[str]:
    if kind == "launchd":
        return ["To unload the agents now:"] + [
            f"  launchctl bootout gui/$(id -u)/{path.stem}" for path in paths
        ]
    if kind == "systemd":
        return [
            "To stop them (before or after removing the files):",
            f"  systemctl --user disable --now {DAILY_UNIT}.timer {INTRADAY_UNIT}.service",
            "  systemctl --user daemon-reload",
        ]
    marker = crontab_marker(config)
    return [
        "To take this project's block out of your crontab (other lines are kept):",
        f"  crontab -l | sed '/^# BEGIN {marker}$/,/^# END {marker}$/d' | crontab -",
    ]


def _installed_paths(kind: str, config: Config, dest: Path | None) -> dict[Path, bytes]:
    """Where ``install`` puts each file of ``kind``, and what it would write now."""
    files = render(kind, config)
    default = DEFAULT_DESTS.get(kind, config.state_dir / "schedule")
    folder = Path(dest or default).expanduser().resolve()
    return {folder / name: content for name, content in files.items()}


def status(kind: str, config: Config, dest: Path | None = None, echo: Echo = print) -> bool:
    """Say, per file ``install`` writes, whether it is installed and current; all current?

    Only the files are checked: whether cron, launchd or systemd has loaded
    them is the scheduler's to say (the commands are printed by ``install``).
    """
    current = True
    for path, content in _installed_paths(kind, config, dest).items():
        if not path.is_file():
            echo(f"missing   {path}")
            current = False
        elif path.read_bytes() != content:
            echo(f"outdated  {path} (run `orchestrator schedule install --{kind}` again)")
            current = False
        else:
            echo(f"installed {path}")
    return current


def uninstall(
    kind: str, config: Config, dest: Path | None = None, dry_run: bool = False, echo: Echo = print
) -> list[Path]:
    """Remove the files ``install`` wrote for ``kind``; return those removed (or to remove).

    As ``install`` loads nothing, this unloads nothing: it prints the commands.
    """
    paths = [path for path in _installed_paths(kind, config, dest) if path.is_file()]
    for path in paths:
        if dry_run:
            echo(f"would remove {path}")
        else:
            path.unlink()
            echo(f"removed {path}")
    if not paths:
        echo(f"no {kind} files of this project are installed")
    for line in _deactivation(kind, config, paths):
        echo(line)
    return paths
