"""The health dashboard: is every data source fresh, and how are the tasks doing?

``collect_health`` reads, read-only, the status store (``data_pipeline_status``)
and, for sources that declare ``freshness.data_time_sql``, the market database,
and judges each source with ``freshness.freshness_status``. The data time of a
source is its *content* when it declares ``data_time_sql`` (a run that
succeeded but stored old data is stale), else the end of its newest successful
run. ``render_text`` / ``render_json`` display the report; ``exit_code`` sums
it up for scripts and monitors.

Exit codes (Nagios-like): 0 every source green and no task failing; 1 a
source is yellow, or unknown (no data yet, or its data time cannot be read:
the monitor cannot vouch for it), or a task's last run failed; 2 a source is
red or a critical task's last run failed. A task RUNNING for longer than all
its attempts could take is shown INTERRUPTED (its runner died) and counts as
failed. A report that cannot be made at all raises an ``OrchestratorError``
(the CLI prints it and exits 3).

A missing database is tolerated: nothing has run yet, so sources are unknown.
An unreadable one (not SQLite, no permission) is a ``HealthError``.

Speed is a requirement (``orchestrator --health`` must cost under three
``python -c "import sqlite3"``), so this path imports no pandas, numpy,
snakemake, jsonschema, exchange_calendars, rich or logging, and reads only one
row per task: the cost does not grow with the run history. The config is
read with ``config.load_config_cached`` (validated once per content) and the
calendar from its JSON cache.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from orchestrator import database
from orchestrator.clock import parse_time
from orchestrator.config import Config, load_config_cached
from orchestrator.errors import HealthExit, OrchestratorError
from orchestrator.freshness import (
    GREEN,
    RED,
    SEVERITY,
    UNKNOWN,
    YELLOW,
    FreshnessResult,
    FreshnessStatus,
    freshness_status,
    human_age,
    zone_label,
)
from orchestrator.latency import SessionLatency, session_latency
from orchestrator.market_calendar import MarketCalendar, load_calendar
from orchestrator.pipeline import Pipeline, TaskConfig
from orchestrator.state_check import check_state, damaged_database
from orchestrator.status_store import TaskStatus

# In the order of the summary line.
SUMMARY_LABELS = {GREEN: "healthy", YELLOW: "stale", RED: "critical", UNKNOWN: "unknown"}
STATUS_COLUMNS = (
    "task_name, last_run_start, last_run_end, last_success, last_failure, consecutive_failures, "
    "total_runs, total_successes, total_failures, last_error_message, last_records_processed, "
    "average_runtime_seconds, status"
)


class HealthError(OrchestratorError):
    """The health report cannot be made (an unreadable database)."""


# -- the report ---------------------------------------------------------------


@dataclass(frozen=True)
class SourceHealth:
    """Freshness of one source; ``basis`` says where its data time came from."""

    task: str
    family: str
    clock: str
    status: FreshnessStatus
    age_seconds: float | None
    data_time: datetime | None
    basis: str | None  # "data" (data_time_sql), "last success", or None
    message: str
    green_seconds: float
    yellow_seconds: float
    label: str | None = None  # the task's display name, when it has one


@dataclass(frozen=True)
class TaskHealth:
    """Run statistics of one task, from its row of ``data_pipeline_status``."""

    task: str
    family: str
    critical: bool
    status: str
    runs: int
    successes: int
    failures: int
    consecutive_failures: int
    last_success: datetime | None
    last_success_age_seconds: float | None
    last_failure: datetime | None
    average_runtime_seconds: float | None
    last_records_processed: int | None
    last_error: str | None
    label: str | None = None

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.runs if self.runs else None


@dataclass(frozen=True)
class HealthReport:
    """Everything the dashboard shows, judged at ``now``."""

    now: datetime
    timezone_label: str
    local_now: datetime
    sources: tuple[SourceHealth, ...]
    tasks: tuple[TaskHealth, ...]
    notes: tuple[str, ...] = ()
    latency: SessionLatency | None = None  # bar-to-signal, when the pipeline has intraday tasks

    def counts(self) -> dict[str, int]:
        """Sources per status, every status present."""
        counts: dict[str, int] = dict.fromkeys(SEVERITY, 0)
        for source in self.sources:
            counts[source.status] += 1
        return counts

    def sources_by_severity(self) -> list[SourceHealth]:
        """Red, then yellow, green, unknown; config order within a status."""
        rank: dict[str, int] = {status: index for index, status in enumerate(SEVERITY)}
        return sorted(self.sources, key=lambda source: rank[source.status])


# -- reading the databases ------------------------------------------------------


def _connect_readonly(store: database.StoreURL) -> database.Connection | None:
    """A read-only connection, or None when the SQLite file does not exist."""
    if not store.exists():
        return None
    try:
        return database.open_store(store, readonly=True, busy_timeout=5)
    except sqlite3.Error as error:
        raise HealthError(f"cannot open the database {store}: {error}") from None


def read_status_rows(
    status_store: database.StoreURL | Path,
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Rows of ``data_pipeline_status`` by task, and notes on what is missing."""
    status_db = database.store_url(status_store)
    connection = _connect_readonly(status_db)
    if connection is None:
        return {}, [f"no status database yet ({status_db}): nothing has run"]
    try:
        rows = connection.execute(f"SELECT {STATUS_COLUMNS} FROM data_pipeline_status").fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return {}, [f"the status database {status_db} has no runs recorded yet"]
        raise HealthError(f"cannot read the status database {status_db}: {error}") from None
    except sqlite3.DatabaseError as error:
        raise HealthError(f"cannot read the status database {status_db}: {error}") from None
    finally:
        connection.close()
    return {row["task_name"]: dict(row) for row in rows}, []


def _query_data_time(
    connection: database.Connection | None, sql: str, store: database.StoreURL, now: datetime
) -> tuple[datetime | None, str | None]:
    """The newest data time ``sql`` returns, or None with the reason.

    ``:now`` in ``sql`` is bound to ``now`` (epoch seconds), so a check at a
    replayed moment ignores rows stored by later runs.
    """
    if connection is None:
        what = "market database" if store.path and store.path.name == "market.db" else "database"
        return None, f"no {what} yet ({store})"
    try:
        row = connection.execute(sql, {"now": int(now.timestamp())}).fetchone()
    except sqlite3.DatabaseError as error:
        damage = damaged_database(store.path, error) if store.path else None
        if damage:
            raise damage from None
        return None, f"data_time_sql failed: {error}"
    except sqlite3.Error as error:
        return None, f"data_time_sql failed: {error}"
    if row is None or row[0] is None:
        return None, "no data stored yet"
    try:
        return parse_time(row[0]), None
    except (ValueError, OverflowError, OSError):
        return None, f"data_time_sql returned {row[0]!r}, not epoch seconds"


# -- collecting -----------------------------------------------------------------


def _scope_hours(task: TaskConfig) -> tuple[str, ...]:
    """Scopes in which a market-clock source ages: its hours if intraday, else regular."""
    return tuple(task.hours) if task.family == "intraday" else ("regular",)


def failed_upstream(task: str, pipeline: Pipeline, rows: dict[str, dict[str, Any]]) -> str | None:
    """The nearest upstream task whose last run failed: why ``task`` is stale or never ran."""
    for name in pipeline.upstream_closure(task):
        if (rows.get(name) or {}).get("status") == TaskStatus.FAILED:
            return name
    return None


def _task_health(
    task: TaskConfig, row: dict[str, Any] | None, now: datetime, blocked_by: str | None
) -> TaskHealth:
    if row is None:
        if blocked_by:
            never, why = TaskStatus.SKIPPED, f"upstream {blocked_by} failed"
        else:
            never, why = TaskStatus.NEVER_RUN, None
        return TaskHealth(
            task.name, task.family, task.critical, never, 0, 0, 0, 0,
            None, None, None, None, None, why,
        )  # fmt: skip
    last_success = parse_time(row["last_success"])
    status = str(row["status"] or TaskStatus.PENDING)
    started = parse_time(row["last_run_start"])
    error = row["last_error_message"]
    if status == TaskStatus.RUNNING and started and now - started > task.longest_run:
        # Longer than every attempt and wait could take: the runner died without an end.
        status = TaskStatus.INTERRUPTED
        error = f"RUNNING since {started:%Y-%m-%d %H:%M} UTC, past its {task.longest_run}"
    return TaskHealth(
        task=task.name,
        family=task.family,
        critical=task.critical,
        status=status,
        runs=int(row["total_runs"] or 0),
        successes=int(row["total_successes"] or 0),
        failures=int(row["total_failures"] or 0),
        consecutive_failures=int(row["consecutive_failures"] or 0),
        last_success=last_success,
        last_success_age_seconds=(
            max((now - last_success).total_seconds(), 0.0) if last_success else None
        ),
        last_failure=parse_time(row["last_failure"]),
        average_runtime_seconds=row["average_runtime_seconds"],
        last_records_processed=row["last_records_processed"],
        last_error=error,
    )


def _with_missing_shards(
    config: Config,
    task: TaskConfig,
    now: datetime,
    calendar: MarketCalendar,
    result: FreshnessResult,
) -> FreshnessResult:
    """A sharded source is at most yellow while its current session has a shard missing.

    Its data time (the newest row of any shard) cannot tell a missing shard.
    """
    from orchestrator.sharding import incomplete_shards

    missing = incomplete_shards(config.base_dir, task, calendar.current_session(now))
    return replace(result, status=YELLOW, message=missing) if missing else result


def collect_health(config: Config, now: datetime, calendar: MarketCalendar) -> HealthReport:
    """Judge every source with ``freshness`` and summarise every task, at ``now``.

    Read-only. A missing status or market database leaves the affected
    sources unknown, with a note; a failing ``data_time_sql`` makes its source
    unknown with the error as the message. ``CalendarRangeError`` if ``now``
    is outside the calendar.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware time")
    rows, notes = read_status_rows(config.status_store)
    pipeline = config.pipeline
    # Opened on first use, read-only: the market database, or a script's own (`database:`).
    databases: dict[database.StoreURL, database.Connection | None] = {}
    sources: list[SourceHealth] = []
    try:
        for task in pipeline:
            freshness = task.freshness
            row = rows.get(task.name)
            reason: str | None
            if freshness.data_time_sql:
                store = (
                    database.store_url(config.base_dir / freshness.database)
                    if freshness.database
                    else config.market_store
                )
                if store not in databases:
                    databases[store] = _connect_readonly(store)
                data_time, reason = _query_data_time(
                    databases[store], freshness.data_time_sql, store, now
                )
                basis = "data" if data_time else None
            else:
                data_time = parse_time(row["last_success"]) if row else None
                basis = "last success" if data_time else None
                reason = None if data_time else "no successful run yet"
            result = freshness_status(freshness, data_time, now, calendar, _scope_hours(task))
            if task.is_sharded and result.status == GREEN:
                result = _with_missing_shards(config, task, now, calendar, result)
            message = reason or result.message
            blocked_by = failed_upstream(task.name, pipeline, rows)
            if result.status != GREEN and blocked_by:
                message = f"{message}; upstream {blocked_by} failed"
            sources.append(
                SourceHealth(
                    task=task.name,
                    family=task.family,
                    clock=freshness.clock,
                    status=result.status,
                    age_seconds=result.age_seconds,
                    data_time=data_time,
                    basis=basis,
                    message=message,
                    green_seconds=freshness.green,
                    yellow_seconds=freshness.yellow,
                    label=task.label,
                )
            )
    finally:
        for connection in databases.values():
            if connection is not None:
                connection.close()
    tasks = tuple(
        replace(
            _task_health(
                task, rows.get(task.name), now, failed_upstream(task.name, pipeline, rows)
            ),
            label=task.label,
        )
        for task in pipeline
    )
    return HealthReport(
        now=now.astimezone(UTC),
        timezone_label=zone_label(calendar, now),
        local_now=now.astimezone(calendar.tz),
        sources=tuple(sources),
        tasks=tasks,
        notes=tuple(notes),
        latency=session_latency(config, calendar, now) if pipeline.family("intraday") else None,
    )


def exit_code(report: HealthReport) -> int:
    """2 if a source is red or a critical task's last run failed; else 1 if a source is
    yellow or unknown or a task's last run failed; else 0."""
    counts = report.counts()
    failed = [task for task in report.tasks if task.status in FAILED_STATUSES]
    if counts[RED] or any(task.critical for task in failed):
        return HealthExit.RED
    if counts[YELLOW] or counts[UNKNOWN] or failed:
        return HealthExit.YELLOW
    return HealthExit.GREEN


# -- rendering ------------------------------------------------------------------

_RESET = "\033[0m"
_BOLD = "\033[1m"
_DIM = "\033[2m"
_COLORS: dict[str, str] = {
    GREEN: "\033[32m",
    YELLOW: "\033[33m",
    RED: "\033[31m",
    UNKNOWN: "\033[90m",
}
_MARKS: dict[str, str] = {GREEN: "🟢", YELLOW: "🟡", RED: "🔴", UNKNOWN: "⚪"}
FAILED_STATUSES = (TaskStatus.FAILED, TaskStatus.INTERRUPTED)
_TASK_STATUS_COLORS: dict[str, FreshnessStatus] = {
    TaskStatus.INTERRUPTED: RED,
    TaskStatus.SUCCESS: GREEN,
    TaskStatus.DEGRADED: YELLOW,
    TaskStatus.FAILED: RED,
    TaskStatus.RUNNING: UNKNOWN,
    TaskStatus.PENDING: UNKNOWN,
    TaskStatus.NEVER_RUN: UNKNOWN,
    TaskStatus.SKIPPED: YELLOW,
}


def summary_line(report: HealthReport) -> str:
    """``N healthy, N stale, N critical, N unknown (Total: N)``."""
    counts = report.counts()
    parts = ", ".join(f"{counts[status]} {label}" for status, label in SUMMARY_LABELS.items())
    return f"{parts} (Total: {len(report.sources)})"


def _table(rows: list[list[str]], colors: list[list[str | None]] | None) -> list[str]:
    """Left-aligned columns two spaces apart; ``colors`` wraps cells after padding."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for r, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            padded = cell if i == len(row) - 1 else cell.ljust(widths[i])
            code = colors[r][i] if colors else None
            cells.append(f"{code}{padded}{_RESET}" if code else padded)
        lines.append(("  " + "  ".join(cells)).rstrip())
    return lines


def _seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f}s" if seconds < 60 else human_age(seconds)


def _source_lines(report: HealthReport, color: bool) -> list[str]:
    rows = [["STATUS", "SOURCE", "AGE", "DETAIL"]]
    colors: list[list[str | None]] = [[_BOLD] * 4]
    for source in report.sources_by_severity():
        mark = f"{_MARKS[source.status]} " if color else ""
        age = human_age(source.age_seconds) if source.age_seconds is not None else "-"
        rows.append(
            [f"{mark}{source.status}", _shown(source.task, source.label), age, source.message]
        )
        code = _COLORS[source.status]
        colors.append([code, None, code, _DIM])
    return _table(rows, colors if color else None)


def _shown(name: str, label: str | None) -> str:
    """A task as the dashboard names it: ``news_sentiment (News & Sentiment)``."""
    return f"{name} ({label})" if label and label != name else name


def _task_lines(report: HealthReport, color: bool) -> list[str]:
    rows = [["TASK", "STATUS", "SUCCESS", "LAST SUCCESS", "FAILS", "AVG RUN", "RECORDS", "ERROR"]]
    colors: list[list[str | None]] = [[_BOLD] * 8]
    for task in report.tasks:
        rate = task.success_rate
        success = f"{rate:.0%} ({task.successes}/{task.runs})" if rate is not None else "-"
        last = (
            f"{human_age(task.last_success_age_seconds)} ago"
            if task.last_success_age_seconds is not None
            else "never"
        )
        records = (
            str(task.last_records_processed) if task.last_records_processed is not None else "-"
        )
        failing = task.consecutive_failures or task.status == TaskStatus.INTERRUPTED
        error = (task.last_error or "-") if failing else "-"
        rows.append(
            [
                _shown(task.task, task.label),
                task.status,
                success,
                last,
                str(task.consecutive_failures),
                _seconds_text(task.average_runtime_seconds),
                records,
                error,
            ]
        )
        status_code = _COLORS[_TASK_STATUS_COLORS.get(task.status, UNKNOWN)]
        fails_code = _COLORS[RED] if task.consecutive_failures else None
        colors.append([None, status_code, None, None, fails_code, None, None, fails_code])
    return _table(rows, colors if color else None)


def latency_line(latency: SessionLatency) -> str:
    """``Bar to signal 2026-11-24: p50 1.2s, p95 2.9s, last 1.1s over 40 slots``."""
    return (
        f"Bar to signal {latency.session}: p50 {_seconds_text(latency.quantile(0.5))},"
        f" p95 {_seconds_text(latency.quantile(0.95))}, last {_seconds_text(latency.last_seconds)}"
        f" over {latency.count} slot{'s' if latency.count != 1 else ''}"
    )


def render_text(report: HealthReport, color: bool) -> str:
    """The dashboard as text: sources worst first, the summary line, then tasks.

    ``color`` adds ANSI colours and emoji marks; without it the output is
    plain ASCII apart from what the data holds (for pipes, logs, NO_COLOR).
    """
    when = f"{report.local_now:%Y-%m-%d %H:%M} {report.timezone_label}"
    title = f"Data sources at {when}"
    lines = [f"{_BOLD}{title}{_RESET}" if color else title]
    lines += _source_lines(report, color) if report.sources else ["  (no task declares freshness)"]
    summary = summary_line(report)
    lines += ["", f"{_BOLD}{summary}{_RESET}" if color else summary, ""]
    lines.append(f"{_BOLD}Tasks{_RESET}" if color else "Tasks")
    lines += _task_lines(report, color) if report.tasks else ["  (no tasks configured)"]
    if report.latency and report.latency.count:
        lines += ["", latency_line(report.latency)]
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def report_dict(report: HealthReport) -> dict[str, Any]:
    """The report as plain JSON-able data (times ISO 8601 UTC)."""
    counts = report.counts()
    return {
        "now": _iso(report.now),
        "exit_code": exit_code(report),
        "summary": {
            **{label: counts[status] for status, label in SUMMARY_LABELS.items()},
            "total": len(report.sources),
            "text": summary_line(report),
        },
        "sources": [
            {
                "task": s.task,
                "label": s.label,
                "family": s.family,
                "clock": s.clock,
                "status": s.status,
                "age_seconds": s.age_seconds,
                "age": human_age(s.age_seconds) if s.age_seconds is not None else None,
                "data_time": _iso(s.data_time),
                "basis": s.basis,
                "message": s.message,
                "green_seconds": s.green_seconds,
                "yellow_seconds": s.yellow_seconds,
            }
            for s in report.sources_by_severity()
        ],
        "tasks": [
            {
                "task": t.task,
                "label": t.label,
                "family": t.family,
                "critical": t.critical,
                "status": t.status,
                "runs": t.runs,
                "successes": t.successes,
                "failures": t.failures,
                "success_rate": t.success_rate,
                "consecutive_failures": t.consecutive_failures,
                "last_success": _iso(t.last_success),
                "last_success_age_seconds": t.last_success_age_seconds,
                "last_failure": _iso(t.last_failure),
                "average_runtime_seconds": t.average_runtime_seconds,
                "last_records_processed": t.last_records_processed,
                "last_error": t.last_error,
            }
            for t in report.tasks
        ],
        "bar_to_signal_latency": report.latency.as_dict() if report.latency else None,
        "notes": list(report.notes),
    }


def render_json(report: HealthReport) -> str:
    """The report as one JSON document."""
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"


def _wants_color(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def main_health(
    config_path: Path | str,
    as_json: bool,
    now: datetime | None = None,
    stream: TextIO | None = None,
) -> int:
    """Print the health report of the pipeline configured at ``config_path``; return its exit code.

    ``now`` defaults to the config's pinned ``now`` (a replay), else the wall
    clock. ``stream`` defaults to ``sys.stdout``; colour is used only when it
    is a terminal and ``NO_COLOR`` is unset. Raises ``OrchestratorError``
    (``ConfigError``, ``CalendarRangeError``, ``HealthError``, ``StateError``) with one
    sentence when no report can be made.
    """
    out = sys.stdout if stream is None else stream
    config = load_config_cached(config_path)
    check_state(config)
    moment = now or config.now or datetime.now(UTC)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware time")
    calendar = load_calendar(config.calendar_name, config.cache_dir)
    report = collect_health(config, moment, calendar)
    out.write(render_json(report) if as_json else render_text(report, _wants_color(out)))
    return exit_code(report)


def _aware_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment


def _main(argv: list[str] | None = None) -> int:
    """``python -m orchestrator.health [--config config.yaml] [--json] [--now ISO]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m orchestrator.health")
    parser.add_argument("--config", default="config.yaml", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--now", type=_aware_time, default=None, help="ISO 8601 with offset")
    args = parser.parse_args(argv)
    try:
        return main_health(args.config, args.json, args.now)
    except OrchestratorError as error:
        print(f"orchestrator --health: {error}", file=sys.stderr)
        return HealthExit.UNKNOWN


if __name__ == "__main__":
    sys.exit(_main())
