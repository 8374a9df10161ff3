"""Alerts: tell a person when the pipeline needs one, through apprise, and only then.

``evaluate(config, now, calendar)`` judges the pipeline at ``now`` (the health
report, the status store, the intraday sentinels), moves each alert's state on,
queues the messages that are due and delivers them. It runs after each daily
run, after each intraday tick and from ``orchestrator alerts check`` (cron).

Rules (defaults in ``DEFAULT_RULES``, overridden by ``alerts:`` in config.yaml):

- a critical task failed after its retries (its run is recorded FAILED, or it
  died RUNNING: INTERRUPTED); a non-critical one failed ``failures_in_a_row``
  runs in a row (default 3). Alerts at once: the retries were the debounce.
- a source turned red and stayed red for ``red_checks`` consecutive checks
  (default 2): one red check between green ones is a flap, not an alert.
  Muted while an intraday source is outside its hours, and while the source's
  own task or a task upstream of it has a firing failure alert: that alert is
  the root cause and lists what depends on it, so one failure is one message.
- while an alert still holds, a reminder every ``repeat`` (default 4h); when
  it clears (task succeeded, source green, loop ticking, run finished) one
  "resolved" message (``resolved: false`` turns these off). A yellow or
  unknown source is neither red nor green: a firing alert stays firing
  without reminders; a pending one (red once) starts counting again.
- the intraday loop missed ticks: during the intraday tasks' hours, no
  intraday activity (attempt, run start or end, sentinel) for
  ``missed_ticks`` (default 3) tick periods of market time, a period being
  the longer of the loop interval and the shortest intraday slot;
- the daily run has not finished ``daily_late`` (default 30m) after
  ``daily.start_time`` on a session day: some daily task has neither a
  sentinel for the session, nor a failure recorded today, nor a failed
  upstream task (which leaves it skipped, not unfinished).

State lives in the status database (``state/status.db``), in two tables this
module creates: ``alert_state`` (per alert key: state, first seen, last seen,
last sent, count of messages, consecutive bad checks, detail) and
``alert_outbox`` (messages not yet accepted by every destination). So a
restart neither repeats an alert nor forgets one, and a message a destination
refused is retried at the next evaluation (until ``PENDING_MAX_AGE``), to that
destination only. Each state change is one ``BEGIN IMMEDIATE`` transaction;
delivery happens outside it, on outbox rows the evaluation claimed, so
concurrent evaluations never send a message twice.

Destinations are apprise URLs from ``ORCHESTRATOR_ALERT_URLS`` (several
separated by spaces) in the environment or the project's ``.env``, never from
config.yaml: they carry tokens. A URL is shown and logged only as its scheme
and host (``redact_url``). Titles and bodies pass ``secrets.redact`` (and lose
every destination URL) before they are stored or sent.

A destination that fails never fails the pipeline: it is logged and retried.
``evaluate_safely`` is the form the run hooks call: it never raises.

The clock is a parameter: nothing here reads the wall clock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol

from orchestrator import database, sentinel
from orchestrator.clock import parse_time, require_aware
from orchestrator.config import Config, parse_duration
from orchestrator.errors import ConfigError
from orchestrator.freshness import GREEN, RED, human_age, zone_label
from orchestrator.health import FAILED_STATUSES, HealthReport, collect_health, read_status_rows
from orchestrator.market_calendar import MarketCalendar
from orchestrator.pipeline import TARGET_TEMPLATES
from orchestrator.secrets import read_dotenv, redact
from orchestrator.status_store import StatusStore, TaskStatus

logger = logging.getLogger(__name__)

URLS_VARIABLE = "ORCHESTRATOR_ALERT_URLS"
DEFAULT_RULES: dict[str, Any] = {
    "enabled": True,
    "failures_in_a_row": 3,
    "red_checks": 2,
    "repeat": "4h",
    "resolved": True,
    "missed_ticks": 3,
    "daily_late": "30m",
}
# Undelivered messages older than this are dropped: a destination down for a
# day gets the reminders and the "resolved", not a backlog of stale news.
PENDING_MAX_AGE = timedelta(days=1)
# A claim on outbox rows older than this belonged to an evaluation that died.
CLAIM_TIMEOUT = timedelta(minutes=10)

# Message kinds.
ALERT = "alert"
REMINDER = "reminder"
RESOLVED = "resolved"
TEST = "test"

# Alert states.
OK = "ok"
PENDING = "pending"  # bad, not yet for enough consecutive checks
FIRING = "firing"  # alerted; reminders until it clears
MUTED = "muted"  # bad, but outside its hours or explained by a firing root cause

# What one check says about a condition.
BAD = "bad"
GOOD = "good"
HOLD = "hold"  # neither: keep a firing alert, restart a pending count

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_state (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    first_seen TIMESTAMP,
    last_seen TIMESTAMP,
    last_sent TIMESTAMP,
    count INTEGER NOT NULL DEFAULT 0,
    checks INTEGER NOT NULL DEFAULT 0,
    detail TEXT,
    updated_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS alert_outbox (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    delivered_to TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    claim TEXT,
    claimed_at TIMESTAMP);
"""


# -- rules ----------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRules:
    """The ``alerts:`` section of config.yaml, defaults filled in."""

    enabled: bool = True
    failures_in_a_row: int = 3
    red_checks: int = 2
    repeat: timedelta = timedelta(hours=4)
    resolved: bool = True
    missed_ticks: int = 3
    daily_late: timedelta = timedelta(minutes=30)


def rules_from_config(config: Config) -> AlertRules:
    """The alert rules of ``config`` (``config.raw["alerts"]``); ``ConfigError`` on a bad one."""
    section = config.raw.get("alerts") or {}
    if not isinstance(section, Mapping):
        raise ConfigError(config.source, "alerts", "must be a mapping of rule settings")
    if "urls" in section:
        raise ConfigError(
            config.source,
            "alerts.urls",
            f"destination URLs carry tokens: set {URLS_VARIABLE} in the environment or .env",
        )
    unknown = sorted(set(section) - set(DEFAULT_RULES))
    if unknown:
        raise ConfigError(config.source, f"alerts.{unknown[0]}", "unknown key")
    values = {**DEFAULT_RULES, **section}

    def flag(name: str) -> bool:
        if not isinstance(values[name], bool):
            raise ConfigError(config.source, f"alerts.{name}", "must be true or false")
        return bool(values[name])

    def count(name: str) -> int:
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(config.source, f"alerts.{name}", "must be a whole number, 1 or more")
        return value

    def duration(name: str) -> timedelta:
        try:
            seconds = parse_duration(values[name])
        except ValueError as error:
            raise ConfigError(config.source, f"alerts.{name}", str(error)) from None
        if seconds <= 0:
            raise ConfigError(config.source, f"alerts.{name}", "must be a positive duration")
        return timedelta(seconds=seconds)

    return AlertRules(
        enabled=flag("enabled"),
        failures_in_a_row=count("failures_in_a_row"),
        red_checks=count("red_checks"),
        repeat=duration("repeat"),
        resolved=flag("resolved"),
        missed_ticks=count("missed_ticks"),
        daily_late=duration("daily_late"),
    )


# -- destinations ---------------------------------------------------------------

_URL_PARTS = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*)://(?:[^@/?#]*@)?(\[[^\]]*\]|[^/:?#]*)")
_HOSTNAME = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_IP_ADDRESS = re.compile(r"^(\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\])$")


def redact_url(url: str) -> str:
    """``url`` as it may be shown: its scheme and host, nothing else.

    Many apprise URLs keep a token where the host would be (``slack://TokenA/...``,
    ``tgram://bottoken/...``), so only a real host name (dotted, with a
    top-level domain), an IP address or ``localhost`` is shown; anything else
    is ``***``.
    """
    match = _URL_PARTS.match(url)
    if not match:
        return "(not a URL)"
    scheme, host = match.group(1).lower(), match.group(2)
    shown = host.lower() == "localhost" or _IP_ADDRESS.match(host) or _HOSTNAME.match(host)
    return f"{scheme}://{host if shown else '***'}"


@dataclass(frozen=True)
class Destination:
    """One apprise URL; ``label`` is what may be shown, ``id`` what the outbox records."""

    url: str = field(repr=False)
    label: str
    id: str

    @classmethod
    def of(cls, url: str) -> Destination:
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        return cls(url=url, label=redact_url(url), id=digest)


def alert_urls(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """The destination URLs: ``ORCHESTRATOR_ALERT_URLS`` from the environment, else ``.env``."""
    env = os.environ if environ is None else environ
    text = env.get(URLS_VARIABLE)
    if text is None:
        text = read_dotenv(config.base_dir / ".env").get(URLS_VARIABLE, "")
    return list(dict.fromkeys(text.split()))


class Notifier(Protocol):
    """Where messages go: the destinations, and sending one message to one of them."""

    @property
    def destinations(self) -> Sequence[Destination]: ...

    def send(self, destination: Destination, title: str, body: str, kind: str) -> bool: ...


class AppriseNotifier:
    """Sends through apprise, one ``Apprise`` object per destination.

    One object per destination makes each result that destination's own: a
    message accepted by Slack and refused by e-mail is retried to e-mail only,
    and never counts as delivered (apprise's overall result of several URLs
    is False on a partial success too, but does not say which one failed).
    """

    def __init__(self, urls: Sequence[str]) -> None:
        self._destinations = tuple(Destination.of(url) for url in dict.fromkeys(urls))

    @classmethod
    def from_config(cls, config: Config) -> AppriseNotifier:
        return cls(alert_urls(config))

    @property
    def destinations(self) -> Sequence[Destination]:
        return self._destinations

    def send(self, destination: Destination, title: str, body: str, kind: str) -> bool:
        """Whether ``destination`` accepted the message; never raises."""
        import apprise

        notify_types = {
            ALERT: apprise.NotifyType.FAILURE,
            REMINDER: apprise.NotifyType.WARNING,
            RESOLVED: apprise.NotifyType.SUCCESS,
            TEST: apprise.NotifyType.INFO,
        }
        try:
            # secure_logging (apprise's default, set here so nobody turns it off
            # unknowingly) masks credentials in the URLs apprise itself logs.
            sender = apprise.Apprise(asset=apprise.AppriseAsset(secure_logging=True))
            if not sender.add(destination.url):
                logger.warning("alert destination %s is not a valid apprise URL", destination.label)
                return False
            result = sender.notify(
                body=body,
                title=title,
                notify_type=notify_types.get(kind, apprise.NotifyType.INFO),
                body_format=apprise.NotifyFormat.TEXT,
            )
        except Exception as error:  # a broken destination must never break a run
            reason = redact(str(error)).replace(destination.url, destination.label)
            logger.warning("alert destination %s failed: %s", destination.label, reason)
            return False
        # apprise >= 2 returns an AppriseResult, whose truth is an overall SUCCESS
        # (a PARTIAL one is False); older versions return a bool.
        return bool(result)


# -- the messages -----------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One message of one alert key; ``delivered`` once every destination accepted it."""

    key: str
    kind: str  # ALERT, REMINDER or RESOLVED
    title: str
    body: str
    delivered: bool = False


@dataclass(frozen=True)
class Condition:
    """What one check found for one alert key, and the words for its messages."""

    key: str
    verdict: str  # BAD, GOOD or HOLD
    subject: str  # "task prices_daily"
    problem: str  # "failed"
    recovered: str  # "succeeded again"
    detail: str = ""
    checks_needed: int = 1
    muted: str | None = None  # why no alert may fire now
    reminders: bool = True  # False: a firing alert stays quiet for now


@dataclass
class AlertState:
    """One row of ``alert_state``."""

    key: str
    state: str = OK
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    last_sent: datetime | None = None
    count: int = 0
    checks: int = 0
    detail: str | None = None


def _when(moment: datetime | None, calendar: MarketCalendar) -> str:
    if moment is None:
        return "-"
    local = moment.astimezone(calendar.tz)
    return f"{local:%Y-%m-%d %H:%M} {zone_label(calendar, moment)}"


def _message(
    kind: str, condition: Condition, state: AlertState, now: datetime, calendar: MarketCalendar
) -> tuple[str, str]:
    """Title and body of one message (not yet redacted)."""
    since = _when(state.first_seen, calendar)
    if kind == ALERT:
        title = f"ALERT: {condition.subject} {condition.problem}"
        body = f"{condition.detail}\nSince {since}."
    elif kind == REMINDER:
        title = f"REMINDER: {condition.subject} {condition.problem}"
        body = f"{condition.detail}\nStill so since {since} (reminder {state.count})."
    else:
        lasted = human_age((now - state.first_seen).total_seconds()) if state.first_seen else "?"
        title = f"RESOLVED: {condition.subject} {condition.recovered}"
        body = (
            f"{condition.subject} {condition.recovered} at {_when(now, calendar)} "
            f"({condition.problem} since {since}, {lasted})."
        )
        if condition.detail:
            body += f"\n{condition.detail}"
    return title, body


def _redactor(config: Config, destinations: Sequence[Destination]) -> Any:
    """A function making text safe to store and send: no secret, no destination URL."""
    environ = {**read_dotenv(config.base_dir / ".env"), **os.environ}

    def clean(text: str) -> str:
        for destination in destinations:
            text = text.replace(destination.url, destination.label)
        return redact(text, environ)

    return clean


# -- the conditions -------------------------------------------------------------


def _task_conditions(
    config: Config, report: HealthReport, calendar: MarketCalendar, rules: AlertRules
) -> list[Condition]:
    """A failed critical task; a non-critical one failed ``failures_in_a_row`` runs in a row."""
    sources = {source.task: source for source in report.sources}
    downstream_of: dict[str, list[str]] = {task.name: [] for task in config.pipeline}
    for dependent in config.pipeline:
        for upstream in config.pipeline.upstream_closure(dependent.name):
            downstream_of[upstream].append(dependent.name)
    conditions = []
    for task in report.tasks:
        failed = task.status in FAILED_STATUSES
        # A runner that died RUNNING ended a run without recording the failure.
        failures = task.consecutive_failures + (task.status == TaskStatus.INTERRUPTED)
        needed = 1 if task.critical else rules.failures_in_a_row
        if failed and failures >= needed:
            verdict = BAD
        elif task.status in (TaskStatus.SUCCESS, TaskStatus.DEGRADED):
            verdict = GOOD
        else:
            verdict = HOLD  # running, never run, or failing but below the threshold
        kind = "critical" if task.critical else "non-critical"
        runs = "run" if failures == 1 else "runs in a row"
        lines = [f"{task.task} ({kind} task) failed after its retries: {failures} {runs}."]
        if task.last_error:
            lines.append(f"Last error: {task.last_error}")
        dependents = downstream_of[task.task]
        if dependents:
            affected = ", ".join(
                f"{name} ({sources[name].status.lower()})" if name in sources else name
                for name in dependents
            )
            lines.append(f"Depends on it: {affected}")
        definition = config.pipeline.task(task.task)
        conditions.append(
            Condition(
                key=f"task:{task.task}",
                verdict=verdict,
                subject=f"task {task.task}",
                problem="failed",
                recovered="succeeded again",
                detail="\n".join(lines) if verdict == BAD else "",
                # Overnight reminders of an intraday task help nobody: it runs in hours.
                reminders=definition.family != "intraday"
                or calendar.in_scope(report.now, definition.hours),
            )
        )
    return conditions


def _source_conditions(
    config: Config,
    report: HealthReport,
    calendar: MarketCalendar,
    firing_tasks: set[str],
    rules: AlertRules,
) -> list[Condition]:
    """A red source, confirmed by consecutive checks, muted by hours or a firing root cause."""
    conditions = []
    for source in report.sources:
        task = config.pipeline.task(source.task)
        if source.status == RED:
            verdict = BAD
        elif source.status == GREEN:
            verdict = GOOD
        else:
            verdict = HOLD
        muted = None
        root = next(
            (
                name
                for name in [source.task, *config.pipeline.upstream_closure(source.task)]
                if name in firing_tasks
            ),
            None,
        )
        if root is not None:
            muted = f"explained by the alert on task {root}"
        elif task.family == "intraday" and not calendar.in_scope(report.now, task.hours):
            muted = f"outside its hours ({', '.join(task.hours)})"
        conditions.append(
            Condition(
                key=f"source:{source.task}",
                verdict=verdict,
                subject=f"source {source.task}",
                problem="is red",
                recovered="is green again",
                detail=f"{source.task} is red: {source.message}." if verdict == BAD else "",
                checks_needed=rules.red_checks,
                muted=muted,
            )
        )
    return conditions


def last_intraday_activity(config: Config) -> datetime | None:
    """The newest sign of the intraday loop: an attempt, a run's start or end, a sentinel."""
    names = [task.name for task in config.pipeline.family("intraday")]
    if not names:
        return None
    moments: list[datetime | None] = []
    rows, _notes = read_status_rows(config.status_store)
    for name in names:
        row = rows.get(name) or {}
        moments += [parse_time(row.get("last_run_start")), parse_time(row.get("last_run_end"))]
    if config.status_store.exists():
        marks = ", ".join("?" * len(names))
        with _connection(config) as connection:
            # The newest rows by id: times may carry different offsets, ids are in order.
            for started, finished in connection.execute(
                f"SELECT started_at, finished_at FROM task_attempts WHERE task_name IN ({marks}) "
                "ORDER BY id DESC LIMIT 1",
                names,
            ):
                moments += [parse_time(started), parse_time(finished)]
    moments.append(_newest_sentinel_time(config, names))
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None


def _newest_sentinel_time(config: Config, names: list[str]) -> datetime | None:
    """``finished_at`` of the newest slot sentinels of the newest intraday session."""
    root = config.base_dir / TARGET_TEMPLATES["intraday"].split("/{session}")[0]
    sessions = sorted(path for path in root.glob("*") if path.is_dir()) if root.is_dir() else []
    if not sessions:
        return None
    newest: datetime | None = None
    for name in names:
        slots = sorted((sessions[-1] / name).glob("*.json"))
        record = sentinel.read_sentinel(slots[-1]) if slots else None
        try:
            finished = parse_time(record.get("finished_at")) if record else None
        except ValueError:
            finished = None
        if finished is not None and (newest is None or finished > newest):
            newest = finished
    return newest


def _intraday_condition(
    config: Config,
    now: datetime,
    calendar: MarketCalendar,
    rules: AlertRules,
    activity: datetime | None,
) -> Condition | None:
    """Whether the loop missed ticks: market time without any intraday activity."""
    tasks = config.pipeline.family("intraday")
    if not tasks:
        return None
    hours = tuple(sorted({scope for task in tasks for scope in task.hours}))
    period = max(config.loop_interval_seconds, min(task.interval_seconds for task in tasks))
    allowed = rules.missed_ticks * period

    def condition(verdict: str, detail: str = "") -> Condition:
        return Condition(
            key="intraday-loop:late",
            verdict=verdict,
            subject="the intraday loop",
            problem="missed ticks",
            recovered="is ticking again",
            detail=detail,
        )

    if not calendar.in_scope(now, hours):
        return condition(HOLD)
    # Never ran: count from the start of today's first window of those hours.
    since = activity or calendar.hours(calendar.trading_day(now)).windows(hours)[0][0]
    gap = calendar.scope_seconds_between(since, now, hours)
    if gap <= allowed:
        return condition(GOOD)
    last = _when(activity, calendar) if activity else "never"
    detail = (
        f"No intraday tick for {human_age(gap)} of market time ({', '.join(hours)} hours); "
        f"expected one every {human_age(period)}. Last activity: {last}."
    )
    return condition(BAD, detail)


def _daily_condition(
    config: Config, now: datetime, calendar: MarketCalendar, rules: AlertRules
) -> Condition | None:
    """Whether the daily run has not finished ``daily_late`` after its start time."""
    tasks = config.pipeline.family("daily")
    if not tasks:
        return None

    def condition(verdict: str, detail: str = "") -> Condition:
        return Condition(
            key="daily-run:late",
            verdict=verdict,
            subject="the daily run",
            problem="has not finished",
            recovered="finished",
            detail=detail,
        )

    today = now.astimezone(calendar.tz).date()
    if not calendar.is_session(today):
        return condition(HOLD)
    start = datetime.combine(today, config.daily_start_time, calendar.tz)
    if now < start + rules.daily_late:
        return condition(HOLD)
    # The session a run started at the start time builds (before the open, the previous one).
    session = calendar.current_session(start)
    day_start = datetime.combine(today, time.min, calendar.tz)
    rows, _notes = read_status_rows(config.status_store)

    def failed_today(name: str) -> bool:
        row = rows.get(name) or {}
        ended = parse_time(row.get("last_run_end"))
        return row.get("status") == TaskStatus.FAILED and ended is not None and ended >= day_start

    unfinished = [
        task.name
        for task in tasks
        if not (config.base_dir / task.target(session)).is_file()
        and not failed_today(task.name)
        and not any(failed_today(up) for up in config.pipeline.upstream_closure(task.name))
    ]
    if not unfinished:
        return condition(GOOD)
    detail = (
        f"The daily run of session {session} has not finished "
        f"{human_age(rules.daily_late.total_seconds())} after its "
        f"{config.daily_start_time:%H:%M} start; not finished: {', '.join(unfinished)}."
    )
    return condition(BAD, detail)


# -- the state machine ------------------------------------------------------------


def _advance(
    condition: Condition, state: AlertState, now: datetime, rules: AlertRules
) -> tuple[AlertState, str | None]:
    """The next state of one alert after one check, and the message kind it sends, if any."""
    if condition.verdict == GOOD:
        kind = RESOLVED if state.state == FIRING and rules.resolved else None
        return AlertState(key=state.key), kind
    if condition.verdict == HOLD:
        if state.state == FIRING:
            return state, None
        # A pending or muted count does not survive a check that is not bad (a flap).
        return AlertState(key=state.key), None
    first_seen = state.first_seen or now
    if condition.muted:
        if state.state == FIRING:  # already told; no reminder while muted
            return replace(state, last_seen=now), None
        return AlertState(
            key=state.key, state=MUTED, first_seen=first_seen, last_seen=now, detail=condition.muted
        ), None
    checks = state.checks + 1 if state.state in (PENDING, FIRING) else 1
    if state.state == FIRING:
        due = state.last_sent is None or now - state.last_sent >= rules.repeat
        if due and condition.reminders:
            count = state.count + 1
            updated = replace(state, last_seen=now, last_sent=now, count=count, checks=checks)
            return replace(updated, detail=condition.detail), REMINDER
        return replace(state, last_seen=now, checks=checks, detail=condition.detail), None
    if checks >= condition.checks_needed:
        return AlertState(
            key=state.key,
            state=FIRING,
            first_seen=first_seen,
            last_seen=now,
            last_sent=now,
            count=1,
            checks=checks,
            detail=condition.detail,
        ), ALERT
    return AlertState(
        key=state.key,
        state=PENDING,
        first_seen=first_seen,
        last_seen=now,
        checks=checks,
        detail=condition.detail,
    ), None


# -- the database -------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


@contextmanager
def _connection(config: Config) -> Iterator[database.Connection]:
    connection = database.open_store(config.status_store)
    try:
        yield connection
    finally:
        connection.close()


def _open_store(config: Config) -> None:
    """Create the status database (WAL, the status tables) and the alert tables."""
    store = StatusStore(config.status_store)
    with _connection(config) as connection, database.transaction(connection):
        for statement in database.ddl(SCHEMA, store.location.dialect).split(";"):
            if statement.strip():
                connection.execute(statement)


def _read_states(connection: database.Connection) -> dict[str, AlertState]:
    rows = connection.execute(
        "SELECT key, state, first_seen, last_seen, last_sent, count, checks, detail "
        "FROM alert_state"
    )
    return {
        key: AlertState(
            key=key,
            state=state,
            first_seen=parse_time(first_seen),
            last_seen=parse_time(last_seen),
            last_sent=parse_time(last_sent),
            count=int(count),
            checks=int(checks),
            detail=detail,
        )
        for key, state, first_seen, last_seen, last_sent, count, checks, detail in rows
    }


def _write_state(connection: database.Connection, state: AlertState, now: datetime) -> None:
    connection.execute(
        "INSERT INTO alert_state (key, state, first_seen, last_seen, last_sent, count, checks, "
        "detail, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
        "state = excluded.state, first_seen = excluded.first_seen, "
        "last_seen = excluded.last_seen, last_sent = excluded.last_sent, "
        "count = excluded.count, checks = excluded.checks, detail = excluded.detail, "
        "updated_at = excluded.updated_at",
        (
            state.key,
            state.state,
            _iso(state.first_seen),
            _iso(state.last_seen),
            _iso(state.last_sent),
            state.count,
            state.checks,
            state.detail,
            _iso(now),
        ),
    )


def _read_only(config: Config) -> database.Connection | None:
    """A read-only connection to the status database, or None when there is none yet."""
    if not config.status_store.exists():
        return None
    return database.open_store(config.status_store, readonly=True)


def alert_states(config: Config) -> dict[str, AlertState]:
    """Every alert's stored state, by key (read-only: for the dashboard and the tests)."""
    connection = _read_only(config)
    if connection is None:
        return {}
    try:
        return _read_states(connection)
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return {}  # no alert was ever evaluated
        raise
    finally:
        connection.close()


def pending_messages(config: Config) -> list[dict[str, Any]]:
    """Messages some destination has not accepted yet, oldest first (read-only)."""
    connection = _read_only(config)
    if connection is None:
        return []
    try:
        return [dict(row) for row in connection.execute("SELECT * FROM alert_outbox ORDER BY id")]
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return []
        raise
    finally:
        connection.close()


# -- evaluating -------------------------------------------------------------------


def evaluate(
    config: Config, now: datetime, calendar: MarketCalendar, notifier: Notifier | None = None
) -> list[Alert]:
    """Check every rule at ``now``, queue what is due, deliver what is pending.

    Returns the messages this check produced (``delivered`` when every
    destination accepted them). Messages from earlier checks still pending
    are retried too. Delivery failures are logged, never raised; a database
    or calendar problem raises (``evaluate_safely`` logs it instead).
    """
    require_aware(now, "now")
    rules = rules_from_config(config)
    if not rules.enabled:
        return []
    notifier = notifier if notifier is not None else AppriseNotifier.from_config(config)
    destinations = list(notifier.destinations)
    clean = _redactor(config, destinations)
    _open_store(config)
    report = collect_health(config, now, calendar)
    activity = last_intraday_activity(config)
    produced: list[tuple[int | None, Alert]] = []
    with _connection(config) as connection, database.transaction(connection):
        states = _read_states(connection)

        def check(conditions: Sequence[Condition]) -> None:
            for found in conditions:
                # Cleaned first: the detail is stored in alert_state as well as sent.
                condition = replace(found, detail=clean(found.detail))
                before = states.get(condition.key) or AlertState(key=condition.key)
                after, kind = _advance(condition, before, now, rules)
                states[condition.key] = after
                if after != before:
                    _write_state(connection, after, now)
                if kind is None:
                    continue
                # A resolved message speaks of the episode that just ended.
                episode = before if kind == RESOLVED else after
                title, body = _message(kind, condition, episode, now, calendar)
                alert = Alert(condition.key, kind, clean(title), clean(body))
                row_id = None
                if destinations:
                    row_id = connection.execute(
                        "INSERT INTO alert_outbox (key, kind, title, body, created_at) "
                        "VALUES (?, ?, ?, ?, ?) RETURNING id",
                        (alert.key, alert.kind, alert.title, alert.body, _iso(now)),
                    ).fetchone()[0]
                produced.append((row_id, alert))

        # Tasks first: a source whose root cause fires in this same check is muted.
        check(_task_conditions(config, report, calendar, rules))
        firing_tasks = {
            key.removeprefix("task:")
            for key, state in states.items()
            if key.startswith("task:") and state.state == FIRING
        }
        check(_source_conditions(config, report, calendar, firing_tasks, rules))
        check(
            [
                condition
                for condition in (
                    _intraday_condition(config, now, calendar, rules, activity),
                    _daily_condition(config, now, calendar, rules),
                )
                if condition is not None
            ]
        )
    if produced and not destinations:
        logger.warning(
            "%d alert(s) not sent: no destinations (set %s in the environment or .env)",
            len(produced),
            URLS_VARIABLE,
        )
    delivered = deliver_pending(config, notifier, now)
    return [
        Alert(alert.key, alert.kind, alert.title, alert.body, row_id in delivered)
        for row_id, alert in produced
    ]


def deliver_pending(config: Config, notifier: Notifier, now: datetime) -> set[int]:
    """Send every unclaimed outbox message to the destinations that lack it.

    Returns the ids of the messages every destination has now accepted
    (they leave the outbox). A refusal is logged and left for the next call.
    """
    destinations = list(notifier.destinations)
    if not destinations:
        return set()
    claim = uuid.uuid4().hex
    with _connection(config) as connection, database.transaction(connection):
        rows = connection.execute(
            "SELECT id, key, kind, title, body, created_at, delivered_to, claim, claimed_at "
            "FROM alert_outbox ORDER BY id"
        ).fetchall()
        mine = []
        for row_id, key, kind, title, body, created_at, delivered_to, held_by, claimed_at in rows:
            created = parse_time(created_at)
            if created is not None and now - created > PENDING_MAX_AGE:
                logger.warning(
                    "dropping the undelivered alert %r (%s): older than %s",
                    title,
                    key,
                    human_age(PENDING_MAX_AGE.total_seconds()),
                )
                connection.execute("DELETE FROM alert_outbox WHERE id = ?", (row_id,))
                continue
            claimed = parse_time(claimed_at)
            if held_by and claimed is not None and now - claimed < CLAIM_TIMEOUT:
                continue  # another evaluation is sending it right now
            connection.execute(
                "UPDATE alert_outbox SET claim = ?, claimed_at = ? WHERE id = ?",
                (claim, _iso(now), row_id),
            )
            mine.append((row_id, kind, title, body, set(json.loads(delivered_to))))
    completed: set[int] = set()
    for row_id, kind, title, body, done in mine:
        for destination in destinations:
            if destination.id in done:
                continue
            try:
                accepted = notifier.send(destination, title, body, kind)
            except Exception as error:  # a notifier that raises refused, like one that says so
                logger.warning(
                    "alert destination %s failed: %s", destination.label, redact(str(error))
                )
                accepted = False
            if accepted:
                done.add(destination.id)
            else:
                logger.warning(
                    "alert %r not delivered to %s; retrying at the next check",
                    title,
                    destination.label,
                )
        with _connection(config) as connection, database.transaction(connection):
            if all(destination.id in done for destination in destinations):
                connection.execute("DELETE FROM alert_outbox WHERE id = ?", (row_id,))
                completed.add(row_id)
            else:
                connection.execute(
                    "UPDATE alert_outbox SET delivered_to = ?, attempts = attempts + 1, "
                    "claim = NULL, claimed_at = NULL WHERE id = ?",
                    (json.dumps(sorted(done)), row_id),
                )
    return completed


def evaluate_safely(
    config: Config, now: datetime, calendar: MarketCalendar, notifier: Notifier | None = None
) -> list[Alert]:
    """``evaluate`` for the hooks after a run or a tick: any problem is logged, never raised."""
    try:
        return evaluate(config, now, calendar, notifier)
    except Exception as error:  # alerting must never fail the pipeline it watches
        logger.error("alerts not checked: %s", redact(str(error)))
        return []


def send_test(config: Config, notifier: Notifier | None = None) -> list[tuple[str, bool]]:
    """One test message to every destination: ``(scheme://host, accepted)`` for each."""
    notifier = notifier if notifier is not None else AppriseNotifier.from_config(config)
    title = "TEST: market-pipeline alerts"
    body = (
        f"A test message from `orchestrator alerts test` in {config.base_dir.name}: "
        "alerts reach this destination."
    )
    return [
        (destination.label, notifier.send(destination, title, body, TEST))
        for destination in notifier.destinations
    ]
