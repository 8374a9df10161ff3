"""The run history for the dashboard and the metrics: attempts, runs, the loop's heartbeat.

Read-only: every function takes a connection opened by ``open_readonly``
(``None`` when the status store does not exist yet: nothing has run, and every
answer is empty). A store without the tables yet reads as empty too.

A *run* is one task's attempts for one period (``task_attempts.period``: a
session, or ``session/HHMM`` for an intraday slot). Its outcome is its newest
attempt's, its duration the sum of its attempts' (time spent running, not the
waits between retries). A period built again (``forcerun``) stays one run with
more attempts, as a cleared task instance keeps its cell in Airflow's grid.

Times are compared as the ISO 8601 UTC text the runner stores. Rows stamped
after ``now`` are ignored, so a replay at a pinned moment shows that moment.

Speed: the history grows by about 500 attempts a trading day and the pages
must answer in 200 ms at 100,000. Every query here is bounded by the index
``(task_name, started_at)``, the primary key, or a ``LIMIT``; none scans the
whole history (the metrics' aggregates, in ``orchestrator.metrics``, do, once
per scrape).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator import database
from orchestrator.clock import parse_time
from orchestrator.config import Config
from orchestrator.errors import CalendarRangeError
from orchestrator.freshness import human_age
from orchestrator.market_calendar import MarketCalendar

ATTEMPT_COLUMNS = (
    "id, task_name, period, attempt, started_at, finished_at, duration_seconds, outcome, "
    "error_message, records_processed, rows_rejected, data_as_of"
)
SUCCESS = "success"  # task_attempts.outcome of an attempt that worked
MAX_ATTEMPTS_PAGE = 1000


# -- connections ----------------------------------------------------------------


def open_readonly(store: database.StoreURL | Path) -> database.Connection | None:
    """A read-only connection (rows index by name); None when a SQLite file does not exist."""
    location = database.store_url(store)
    if not location.exists():
        return None
    return database.open_store(location, readonly=True, busy_timeout=5)


@contextmanager
def readonly(store: database.StoreURL | Path) -> Iterator[database.Connection | None]:
    """``open_readonly`` for one block, closed after it."""
    connection = open_readonly(store)
    try:
        yield connection
    finally:
        if connection is not None:
            connection.close()


def rows(connection: database.Connection | None, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """The rows of ``sql``; none when there is no database or the table is missing."""
    if connection is None:
        return []
    try:
        return connection.execute(sql, tuple(params)).fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return []
        raise


def iso(moment: datetime) -> str:
    """``moment`` as the runner stores it: ISO 8601, UTC, whole seconds."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _marks(count: int) -> str:
    return ", ".join("?" * count)


# -- runs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One task's attempts for one period."""

    task: str
    period: str
    outcome: str  # the newest attempt's
    attempts: int
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    error: str | None  # the newest attempt's error, if it failed
    records: int | None

    @property
    def ok(self) -> bool:
        return self.outcome == SUCCESS

    @property
    def session(self) -> str:
        return self.period.split("/", 1)[0]

    @property
    def slot(self) -> str | None:
        parts = self.period.split("/", 1)
        return parts[1] if len(parts) == 2 else None


def _utc(text: str) -> datetime:
    """A stored time: the runner's ISO 8601 text, else whatever ``parse_time`` accepts."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        parsed = parse_time(text)
        if parsed is None:
            raise ValueError(f"no time: {text!r}") from None
        return parsed
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# Groups the attempts selected by ``{recent}`` into runs, in SQLite (a page groups a
# few thousand attempts: Python would spend more time on them than the query does).
_RUNS_SQL = """
WITH recent AS ({recent}),
runs AS (
    SELECT task_name, period, COUNT(*) AS attempts, MIN(started_at) AS started_at,
           MAX(finished_at) AS finished_at, TOTAL(duration_seconds) AS duration_seconds,
           MAX(id) AS newest
    FROM recent GROUP BY task_name, period)
SELECT runs.task_name, runs.period, runs.attempts, runs.started_at, runs.finished_at,
       runs.duration_seconds, newest.outcome, newest.error_message, newest.records_processed
FROM runs JOIN task_attempts AS newest ON newest.id = runs.newest
ORDER BY runs.finished_at, runs.newest
"""


def _runs(
    connection: database.Connection | None, recent_sql: str, params: Sequence[Any]
) -> list[Run]:
    """The runs of the attempts ``recent_sql`` selects (it must select ``task_attempts.*``)."""
    return [
        Run(
            task=row["task_name"],
            period=row["period"],
            outcome=str(row["outcome"]),
            attempts=int(row["attempts"]),
            started_at=_utc(row["started_at"]),
            finished_at=_utc(row["finished_at"]),
            duration_seconds=float(row["duration_seconds"]),
            error=row["error_message"] if row["outcome"] != SUCCESS else None,
            records=row["records_processed"],
        )
        for row in rows(connection, _RUNS_SQL.format(recent=recent_sql), params)
    ]


def recent_task_runs(
    connection: database.Connection | None, task: str, now: datetime, limit: int = 30
) -> list[Run]:
    """The task's newest ``limit`` runs, oldest first (one index range scan)."""
    found = _runs(
        connection,
        "SELECT * FROM task_attempts WHERE task_name = ? AND started_at <= ? "
        "ORDER BY started_at DESC LIMIT ?",
        (task, iso(now), limit * 3),  # room for retries: a run has up to a few attempts
    )
    return found[-limit:]


def runs_for_periods(
    connection: database.Connection | None,
    tasks: Sequence[str],
    periods: Sequence[str],
    now: datetime,
) -> dict[tuple[str, str], Run]:
    """Runs of ``tasks`` for daily ``periods`` (sessions), by (task, period).

    A session's runs cannot have started before its date, so the scan starts
    at the oldest period's date: an index range, not the whole history.
    """
    if not tasks or not periods:
        return {}
    found = _runs(
        connection,
        f"SELECT * FROM task_attempts WHERE task_name IN ({_marks(len(tasks))}) "
        f"AND started_at >= ? AND started_at <= ? AND period IN ({_marks(len(periods))})",
        (*tasks, min(periods)[:10], iso(now), *periods),
    )
    return {(run.task, run.period): run for run in found}


def latest_runs(
    connection: database.Connection | None, tasks: Sequence[str], now: datetime, per_task: int
) -> list[Run]:
    """The newest ``per_task`` runs of each task (for the intraday grid), oldest first."""
    found: list[Run] = []
    for task in tasks:
        found += recent_task_runs(connection, task, now, per_task)
    return sorted(found, key=lambda run: run.finished_at)


# -- attempts -------------------------------------------------------------------


def attempt_dicts(
    connection: database.Connection | None,
    now: datetime,
    task: str | None = None,
    period: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Attempts, newest first: of one task (and one period), or of all.

    A period's attempts started on or after its session's date: that bounds
    the index scan of a task's history.
    """
    limit = max(1, min(limit, MAX_ATTEMPTS_PAGE))
    select = f"SELECT {ATTEMPT_COLUMNS} FROM task_attempts"
    if task is None:
        found = rows(
            connection,
            f"{select} WHERE started_at <= ? ORDER BY id DESC LIMIT ?",
            (iso(now), limit),
        )
    elif period is None:
        found = rows(
            connection,
            f"{select} WHERE task_name = ? AND started_at <= ? "
            "ORDER BY started_at DESC, id DESC LIMIT ?",
            (task, iso(now), limit),
        )
    else:
        found = rows(
            connection,
            f"{select} WHERE task_name = ? AND started_at >= ? AND started_at <= ? "
            "AND period = ? ORDER BY started_at DESC, id DESC LIMIT ?",
            (task, period[:10], iso(now), period, limit),
        )
    return [dict(row) for row in found]


# -- the intraday loop's heartbeat ------------------------------------------------


@dataclass(frozen=True)
class Heartbeat:
    """When the intraday loop last ran a task, and whether it is late.

    The loop records no heartbeat of its own; its ticks are seen through the
    attempts they make: ``last_tick`` is the newest start of an intraday
    task's attempt. A tick that finds every current slot built runs nothing,
    but the finest task has a new slot every interval, so a live loop makes an
    attempt at least that often.
    """

    last_tick: datetime | None
    in_hours: bool  # some intraday task is due now
    late: bool  # in hours, and no tick for longer than ``tolerance_seconds``
    tolerance_seconds: float
    message: str


def _scope_start(calendar: MarketCalendar, now: datetime, hours: set[str]) -> datetime:
    """The start of the scope window ``now`` is in (or the one that just closed)."""
    session_hours = calendar.hours(calendar.trading_day(now))
    starts = [start for start, _end in session_hours.windows(hours) if start <= now]
    return max(starts) if starts else now


def intraday_heartbeat(
    config: Config,
    calendar: MarketCalendar,
    now: datetime,
    connection: database.Connection | None,
) -> Heartbeat:
    """The loop's last tick, and "late" when it missed ticks during its tasks' hours.

    Late means: some intraday task is due now, and no intraday attempt has
    started for more than two slots of the finest task plus one loop interval
    since the later of the last tick and the opening of the current window (at
    09:30:10 yesterday's last tick is not a missed tick yet).
    """
    tasks = config.pipeline.family("intraday")
    if not tasks:
        return Heartbeat(None, False, False, 0.0, "no intraday tasks configured")
    last_tick: datetime | None = None
    for task in tasks:
        found = rows(
            connection,
            "SELECT MAX(started_at) FROM task_attempts WHERE task_name = ? AND started_at <= ?",
            (task.name, iso(now)),
        )
        moment = parse_time(found[0][0]) if found else None
        if moment is not None and (last_tick is None or moment > last_tick):
            last_tick = moment
    interval = min(task.interval_seconds for task in tasks)
    tolerance = 2.0 * interval + config.loop_interval_seconds
    hours = {scope for task in tasks for scope in task.hours}
    try:
        in_hours = any(
            calendar.slot_is_due(now, task.hours, task.interval_seconds) for task in tasks
        )
        window_start = _scope_start(calendar, now, hours) if in_hours else now
    except CalendarRangeError as error:
        return Heartbeat(last_tick, False, False, tolerance, f"market clock unknown: {error}")
    seen = f"last tick {human_age((now - last_tick).total_seconds())} ago" if last_tick else ""
    if not in_hours:
        message = "market closed: the loop waits for the next window"
        return Heartbeat(
            last_tick, False, False, tolerance, f"{message}; {seen}" if seen else message
        )
    reference = max(last_tick, window_start) if last_tick else window_start
    silent = (now - reference).total_seconds()
    if silent > tolerance:
        message = (
            f"late: no tick for {human_age(silent)} during market hours "
            f"(a tick is due every {human_age(interval)})"
        )
        return Heartbeat(last_tick, True, True, tolerance, message)
    due = f"a tick is due every {human_age(interval)}"
    message = f"on time: {due}" if last_tick else f"waiting for the first tick ({due})"
    return Heartbeat(last_tick, True, False, tolerance, message)


# -- change detection (server-sent events) ------------------------------------------


def change_token(status_db: database.StoreURL | Path) -> str:
    """A short digest that changes whenever the status store does.

    The newest attempt id catches every attempt; the status rows (small: one
    per task) catch starts and run ends. Cheap enough to poll every second.
    """
    with readonly(status_db) as connection:
        if connection is None:
            return "none"
        newest = rows(connection, "SELECT MAX(id) FROM task_attempts")
        statuses = rows(
            connection,
            "SELECT task_name, status, updated_at, total_runs, last_run_start "
            "FROM data_pipeline_status ORDER BY task_name",
        )
    digest = hashlib.blake2b(digest_size=8)
    digest.update(repr(newest[0][0] if newest else None).encode())
    for row in statuses:
        digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()
