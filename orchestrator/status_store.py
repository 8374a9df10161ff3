"""The status store: one database recording every task run and attempt.

A SQLite file by default (``state/status.db``), or PostgreSQL when
``stores.status`` names one (``orchestrator.database``); one ``SCHEMA`` serves
both, the same SQL runs on both.

``data_pipeline_status`` keeps the seed's table, name and columns, one row per
task with running counters; ``task_attempts`` keeps one row per attempt, from
which success rates and runtimes can be derived. Invariants:

- marking a task started never resets its counters;
- ``total_runs = total_successes + total_failures`` once no run is in flight;
- every write is one transaction (SQLite: ``BEGIN IMMEDIATE``) with
  parameterised SQL and counters incremented in SQL, so four tasks finishing
  at once (``--cores 4``) serialise instead of losing updates; WAL (SQLite)
  or MVCC (PostgreSQL) lets the health monitor read while they write.
- error messages are redacted of secrets and truncated before storing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from orchestrator import database
from orchestrator.clock import parse_time
from orchestrator.secrets import redact

INITIALISE_ATTEMPTS = 50
MAX_ERROR_LENGTH = 500


class TaskStatus(StrEnum):
    """A task's ``status`` column; the last two only the dashboard shows, never stored."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    DEGRADED = "DEGRADED"
    FAILED = "FAILED"
    NEVER_RUN = "NEVER RUN"
    SKIPPED = "SKIPPED"  # never ran: an upstream task failed
    INTERRUPTED = "INTERRUPTED"  # RUNNING for longer than it could: its runner died


SCHEMA = """
CREATE TABLE IF NOT EXISTS data_pipeline_status (
    task_name TEXT PRIMARY KEY, last_run_start TIMESTAMP, last_run_end TIMESTAMP,
    last_success TIMESTAMP, last_failure TIMESTAMP,
    consecutive_failures INTEGER DEFAULT 0, total_runs INTEGER DEFAULT 0,
    total_successes INTEGER DEFAULT 0, total_failures INTEGER DEFAULT 0,
    last_error_message TEXT, last_records_processed INTEGER,
    average_runtime_seconds REAL, status TEXT DEFAULT 'PENDING',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS task_attempts (
    id INTEGER PRIMARY KEY,
    task_name TEXT NOT NULL,
    period TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    duration_seconds REAL NOT NULL,
    outcome TEXT NOT NULL,
    error_message TEXT,
    records_processed INTEGER,
    rows_rejected INTEGER,
    data_as_of TIMESTAMP);
CREATE INDEX IF NOT EXISTS task_attempts_by_task ON task_attempts (task_name, started_at);
"""


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}")
    return moment.isoformat(timespec="seconds")


def clean_error(message: str) -> str:
    """``message`` without secrets, on one line, at most ``MAX_ERROR_LENGTH`` characters."""
    text = " ".join(redact(message).split())
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


@dataclass(frozen=True)
class Attempt:
    """One attempt of one task, as recorded in ``task_attempts``."""

    task_name: str
    period: str
    attempt: int
    started_at: datetime
    finished_at: datetime
    outcome: str
    error_message: str | None = None
    records_processed: int | None = None
    rows_rejected: int | None = None
    data_as_of: datetime | None = None


class StatusStore:
    """Reads and writes task status; one short connection per operation."""

    def __init__(self, store: database.StoreURL | Path | str) -> None:
        self.location = database.store_url(store)
        if self.location.path is not None:
            self.location.path.parent.mkdir(parents=True, exist_ok=True)
        self._initialise()

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL."""
        return self.location.path

    def _initialise(self) -> None:
        """Switch to WAL (SQLite) and create the tables, once, whoever comes first.

        Switching the journal mode ignores the busy timeout, so tasks that
        start together on a new SQLite file retry that step briefly; on
        PostgreSQL they wait for each other (``database.WRITER_LOCK_SQL``).
        """
        schema = database.ddl(SCHEMA, self.location.dialect)
        if self.location.is_postgres:  # one implicit transaction: the lock holds to its end
            schema = f"{database.WRITER_LOCK_SQL};\n{schema}"
        for attempt in range(1, INITIALISE_ATTEMPTS + 1):
            try:
                with self._connection() as connection:
                    if self.location.path is not None and (
                        connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal"
                    ):
                        connection.execute("PRAGMA journal_mode = WAL")
                    connection.executescript(schema)
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == INITIALISE_ATTEMPTS:
                    raise
                time.sleep(0.02 * attempt)

    @contextmanager
    def _connection(self) -> Iterator[database.Connection]:
        connection = database.open_store(self.location)
        try:
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[database.Connection]:
        with self._connection() as connection, database.transaction(connection):
            yield connection

    # -- writes ---------------------------------------------------------------

    @staticmethod
    def _ensure_row(connection: database.Connection, task: str) -> None:
        # A run stopped before its start was marked must still be counted.
        connection.execute(
            "INSERT INTO data_pipeline_status (task_name) VALUES (?) ON CONFLICT DO NOTHING",
            (task,),
        )

    def mark_started(self, task: str, now: datetime) -> bool:
        """Record that ``task`` started, unless its live status holds a later start.

        Counters are left as they are. A start earlier than the recorded one is
        a replay of a past moment: nothing changes and the answer is False.
        """
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT last_run_start FROM data_pipeline_status WHERE task_name = ?", (task,)
            ).fetchone()
            recorded = parse_time(row[0]) if row else None
            if recorded is not None and recorded > now:
                return False
            connection.execute(
                "INSERT INTO data_pipeline_status (task_name, last_run_start, status, updated_at) "
                "VALUES (?, ?, ?, ?) "
                "ON CONFLICT (task_name) DO UPDATE SET last_run_start = excluded.last_run_start, "
                "status = excluded.status, updated_at = excluded.updated_at",
                (task, _iso(now), TaskStatus.RUNNING, _iso(now)),
            )
        return True

    def record_attempt(self, attempt: Attempt) -> None:
        """Append one attempt to the history."""
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO task_attempts (task_name, period, attempt, started_at, finished_at, "
                "duration_seconds, outcome, error_message, records_processed, rows_rejected, "
                "data_as_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    attempt.task_name,
                    attempt.period,
                    attempt.attempt,
                    _iso(attempt.started_at),
                    _iso(attempt.finished_at),
                    (attempt.finished_at - attempt.started_at).total_seconds(),
                    attempt.outcome,
                    clean_error(attempt.error_message) if attempt.error_message else None,
                    attempt.records_processed,
                    attempt.rows_rejected,
                    _iso(attempt.data_as_of) if attempt.data_as_of else None,
                ),
            )

    def record_success(
        self,
        task: str,
        started: datetime,
        finished: datetime,
        records_processed: int,
        degraded: bool = False,
    ) -> None:
        """Close a run that succeeded; the running average covers successful runs."""
        runtime = (finished - started).total_seconds()
        with self._transaction() as connection:
            self._ensure_row(connection, task)
            connection.execute(
                "UPDATE data_pipeline_status SET last_run_end = ?, last_success = ?, "
                "consecutive_failures = 0, total_runs = total_runs + 1, "
                "total_successes = total_successes + 1, last_records_processed = ?, "
                "average_runtime_seconds = "
                "(COALESCE(average_runtime_seconds, 0) * total_successes + ?) "
                "/ (total_successes + 1), "
                "status = ?, updated_at = ? WHERE task_name = ?",
                (
                    _iso(finished),
                    _iso(finished),
                    records_processed,
                    runtime,
                    TaskStatus.DEGRADED if degraded else TaskStatus.SUCCESS,
                    _iso(finished),
                    task,
                ),
            )

    def record_failure(self, task: str, finished: datetime, error_message: str) -> None:
        """Close a run that failed after all its attempts."""
        with self._transaction() as connection:
            self._ensure_row(connection, task)
            connection.execute(
                "UPDATE data_pipeline_status SET last_run_end = ?, last_failure = ?, "
                "consecutive_failures = consecutive_failures + 1, total_runs = total_runs + 1, "
                "total_failures = total_failures + 1, last_error_message = ?, status = ?, "
                "updated_at = ? WHERE task_name = ?",
                (
                    _iso(finished),
                    _iso(finished),
                    clean_error(error_message),
                    TaskStatus.FAILED,
                    _iso(finished),
                    task,
                ),
            )

    # -- reads ----------------------------------------------------------------

    def task_statuses(self) -> dict[str, dict[str, Any]]:
        """Every task's row of ``data_pipeline_status``, by task name."""
        with self._connection() as connection:
            rows = connection.execute("SELECT * FROM data_pipeline_status ORDER BY task_name")
            return {row["task_name"]: dict(row) for row in rows}

    def attempts(self, task: str | None = None) -> list[dict[str, Any]]:
        """Attempt history, oldest first, of one task or all."""
        query = "SELECT * FROM task_attempts"
        params: tuple[str, ...] = ()
        if task is not None:
            query += " WHERE task_name = ?"
            params = (task,)
        with self._connection() as connection:
            return [dict(row) for row in connection.execute(query + " ORDER BY id", params)]
