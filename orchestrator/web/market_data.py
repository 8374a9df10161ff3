"""The market store as the dashboard's Data page shows it: table sizes, the quarantine, prices.

Read-only, one connection per request (``history.readonly``). Point in time
like the health check: rows that became available after ``now`` are left out,
so a replay at a pinned moment shows that moment's data.

Counting a table's rows and finding its newest ``available_ts`` read the whole
table (there is no index on ``available_ts``), so ``TableStatsCache`` keeps the
answer until the database files change (their size or modification time) or
the minute turns.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator import database
from orchestrator.web.history import rows

QUARANTINE_PAGE = 200


@dataclass(frozen=True)
class TableInfo:
    """What the Data page needs of one table of ``collectors.market_store.TABLES``."""

    name: str
    time_column: str
    about: str


@dataclass(frozen=True)
class TableStats:
    name: str
    rows: int | None  # None: the table does not exist yet
    newest: datetime | None  # the newest time_column value at or before now
    time_column: str
    about: str


def market_tables() -> list[TableInfo]:
    """The market store's tables, in their declaration order.

    Imported here, not at the top: ``collectors.market_store`` pulls in pandas,
    which ``orchestrator.metrics`` (and anything else importing this package)
    does not need.
    """
    from collectors.market_store import TABLES

    return [TableInfo(spec.name, spec.time_column, spec.about) for spec in TABLES.values()]


def _file_stamp(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)


def table_stats(
    connection: database.Connection | None, tables: list[TableInfo], now: datetime
) -> list[TableStats]:
    """Row counts and newest times of every table (None counts where it is missing)."""
    stats = []
    cutoff = int(now.timestamp())
    for table in tables:
        found = rows(
            connection,
            f"SELECT COUNT(*), MAX(CASE WHEN {table.time_column} <= ? "
            f"THEN {table.time_column} END) FROM {table.name}",
            (cutoff,),
        )
        if not found:
            stats.append(TableStats(table.name, None, None, table.time_column, table.about))
            continue
        count, newest = found[0]
        stats.append(
            TableStats(
                table.name,
                int(count),
                datetime.fromtimestamp(newest, UTC) if newest is not None else None,
                table.time_column,
                table.about,
            )
        )
    return stats


class TableStatsCache:
    """``table_stats`` kept until the market database's files change or the minute turns."""

    def __init__(self, market_db: Path) -> None:
        self.market_db = market_db
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._stats: list[TableStats] = []

    def get(
        self, connection: database.Connection | None, tables: list[TableInfo], now: datetime
    ) -> list[TableStats]:
        wal = self.market_db.with_name(self.market_db.name + "-wal")
        key = (_file_stamp(self.market_db), _file_stamp(wal), int(now.timestamp()) // 60)
        with self._lock:
            if key == self._key:
                return self._stats
        stats = table_stats(connection, tables, now)
        with self._lock:
            self._key, self._stats = key, stats
        return stats


# -- the quarantine ---------------------------------------------------------------


@dataclass(frozen=True)
class QuarantineFilter:
    """What the user filters the quarantine by; empty strings mean "any"."""

    source: str = ""
    table: str = ""
    reason: str = ""  # a substring of the reason

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if self.source:
            clauses.append("source = ?")
            params.append(self.source)
        if self.table:
            clauses.append("table_name = ?")
            params.append(self.table)
        if self.reason:
            # Not LIKE: a user's % or _ are plain characters; replace() is SQL both stores speak.
            clauses.append("replace(lower(reason), lower(?), '') <> lower(reason)")
            params.append(self.reason)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


@dataclass(frozen=True)
class Quarantine:
    rows: list[dict[str, Any]]  # newest first, at most ``QUARANTINE_PAGE``
    matching: int
    total: int
    sources: list[str]
    tables: list[str]


def quarantine(
    connection: database.Connection | None, wanted: QuarantineFilter, limit: int = QUARANTINE_PAGE
) -> Quarantine:
    """Quarantined rows matching ``wanted``, newest first, and what the filters can offer."""
    where, params = wanted.where()
    found = rows(
        connection,
        "SELECT source, table_name, natural_key, reason, payload, quarantined_ts "
        f"FROM quarantine{where} ORDER BY quarantined_ts DESC, source, natural_key LIMIT ?",
        (*params, max(1, min(limit, 1000))),
    )
    matching = rows(connection, f"SELECT COUNT(*) FROM quarantine{where}", params)
    groups = rows(connection, "SELECT source, table_name, COUNT(*) FROM quarantine GROUP BY 1, 2")
    return Quarantine(
        rows=[
            {
                **dict(row),
                "quarantined_at": datetime.fromtimestamp(row["quarantined_ts"], UTC),
            }
            for row in found
        ],
        matching=int(matching[0][0]) if matching else 0,
        total=sum(int(group[2]) for group in groups),
        sources=sorted({group[0] for group in groups}),
        tables=sorted({group[1] for group in groups}),
    )


# -- one symbol's prices ----------------------------------------------------------


def symbols(connection: database.Connection | None, now: datetime) -> list[str]:
    """The universe listed at ``now`` (the ``assets`` table), else the symbols with daily bars."""
    listed = rows(
        connection,
        "SELECT symbol FROM assets WHERE available_ts <= ? ORDER BY symbol LIMIT 5000",
        (int(now.timestamp()),),
    )
    if listed:
        return [row[0] for row in listed]
    priced = rows(connection, "SELECT DISTINCT symbol FROM prices_daily ORDER BY symbol LIMIT 5000")
    return [row[0] for row in priced]


def daily_closes(
    connection: database.Connection | None, symbol: str, now: datetime, limit: int = 120
) -> list[tuple[str, float]]:
    """The symbol's newest ``limit`` daily closes as (session, close), oldest first."""
    found = rows(
        connection,
        "SELECT session, close FROM prices_daily WHERE symbol = ? AND available_ts <= ? "
        "ORDER BY session DESC LIMIT ?",
        (symbol, int(now.timestamp()), limit),
    )
    return [(row[0], float(row[1])) for row in reversed(found)]


def intraday_closes(
    connection: database.Connection | None, symbol: str, now: datetime
) -> tuple[str | None, list[tuple[int, float]]]:
    """The symbol's minute closes of its newest session with bars: (session, [(bar_ts, close)])."""
    cutoff = int(now.timestamp())
    newest = rows(
        connection,
        "SELECT session FROM intraday_bars WHERE symbol = ? AND available_ts <= ? "
        "ORDER BY bar_ts DESC LIMIT 1",
        (symbol, cutoff),
    )
    if not newest:
        return None, []
    session = str(newest[0][0])
    found = rows(
        connection,
        "SELECT bar_ts, close FROM intraday_bars WHERE session = ? AND symbol = ? "
        "AND available_ts <= ? ORDER BY bar_ts",
        (session, symbol, cutoff),
    )
    return session, [(int(row[0]), float(row[1])) for row in found]
