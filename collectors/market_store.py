"""The market-data store: one database, schema, validation and batch upserts.

A SQLite file by default (``state/market.db``), or PostgreSQL when
``stores.market`` names one (``orchestrator.database``). ``TABLES`` declares
every table once; each backend's DDL is derived from it (``database.ddl``)
and the same SQL reads both. Invariants:

- SQLite: WAL journal, ``busy_timeout`` 30 s. Both: parameterised SQL only;
  the schema is created on open and creating it again changes nothing.
- Every table has a natural primary key; writes are upserts (``INSERT ... ON
  CONFLICT (key) DO UPDATE``, the same statement on both; PostgreSQL takes
  the batch by ``COPY`` into a staging table first) of rows sorted by that
  key, one transaction per batch, so storing the same batch twice changes
  nothing.
- Timestamps are INTEGER (PostgreSQL: BIGINT) epoch seconds UTC in columns
  ending ``_ts``; dates are ISO ``YYYY-MM-DD`` text. Every raw-data row has
  ``available_ts`` (when it became knowable); derived rows have ``as_of_ts``
  (the cutoff they were computed at). Point-in-time reads filter on those columns.
- Nothing bad is stored silently: rows failing validation go to
  ``quarantine`` with their source, natural key, reason and payload; a batch
  with rows but no good row raises ``DataValidationError``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from orchestrator import database
from orchestrator.errors import DataValidationError, PermanentError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableSpec:
    """One table: ordered columns with SQL types, natural key, and what to validate."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    prices: tuple[str, ...] = ()
    ohlc: bool = False
    non_negative: tuple[str, ...] = ()
    symbol_column: str | None = "symbol"
    time_column: str = "available_ts"  # compared with as_of: nothing from the future
    about: str = ""  # what a row is and when it became knowable (docs/market-database.md)
    # SQL values of new NOT NULL columns for rows stored before they existed (migrate).
    migrate_defaults: Mapping[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def nullable(self) -> frozenset[str]:
        return frozenset(name for name, kind in self.columns if kind.endswith("NULL"))

    def create_sql(self, dialect: str = "sqlite") -> str:
        """``CREATE TABLE`` in ``dialect`` ("sqlite" or "postgresql")."""
        columns = ", ".join(
            f"{name} {kind.removesuffix(' NULL') if kind.endswith('NULL') else kind + ' NOT NULL'}"
            for name, kind in self.columns
        )
        return database.ddl(
            f"CREATE TABLE IF NOT EXISTS {self.name} ({columns}, "
            f"PRIMARY KEY ({', '.join(self.key)})) WITHOUT ROWID",
            dialect,
        )

    def upsert_sql(self, staging: str | None = None) -> str:
        """The upsert on the natural key: of one row (both dialects), or of a ``staging`` table."""
        updates = [name for name in self.column_names if name not in self.key]
        action = (
            "DO UPDATE SET " + ", ".join(f"{name} = excluded.{name}" for name in updates)
            if updates
            else "DO NOTHING"
        )
        rows = (
            f"SELECT {', '.join(self.column_names)} FROM {staging}"
            if staging
            else f"VALUES ({', '.join('?' * len(self.columns))})"
        )
        return (
            f"INSERT INTO {self.name} ({', '.join(self.column_names)}) {rows} "
            f"ON CONFLICT ({', '.join(self.key)}) {action}"
        )


_OHLCV = (
    ("open", "REAL"),
    ("high", "REAL"),
    ("low", "REAL"),
    ("close", "REAL"),
    ("volume", "REAL"),
)

TABLES: Mapping[str, TableSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            TableSpec(
                "assets",
                (("symbol", "TEXT"), ("name", "TEXT"), ("sector", "TEXT"), ("industry", "TEXT"),
                 ("exchange", "TEXT"), ("available_ts", "INTEGER"), ("confirmed_ts", "INTEGER")),
                ("symbol",),
                symbol_column=None,
                about=('The universe: one row per symbol. `available_ts` is when the symbol was '
                 'first listed by the provider; `confirmed_ts` the last run that saw it '
                 '(the assets source ages from it).'),
            ),
            TableSpec(
                "prices_daily",
                (("symbol", "TEXT"), ("session", "TEXT"), *_OHLCV, ("split_ratio", "REAL"),
                 ("dividend", "REAL"), ("available_ts", "INTEGER")),
                ("symbol", "session"),
                prices=("open", "high", "low", "close", "split_ratio"),
                ohlc=True,
                non_negative=("volume", "dividend"),
                about=("One daily bar per symbol and session, split- and dividend-annotated. "
                 "Available at the session's close."),
            ),
            TableSpec(
                "intraday_bars",
                (("symbol", "TEXT"), ("session", "TEXT"), ("bar_ts", "INTEGER"), *_OHLCV,
                 ("available_ts", "INTEGER")),
                ("symbol", "bar_ts"),
                prices=("open", "high", "low", "close"),
                ohlc=True,
                non_negative=("volume",),
                about=("Minute bars. `bar_ts` is the bar's start; available at its end plus the "
                 "feed's delay."),
            ),
            TableSpec(
                "fundamentals",
                (("symbol", "TEXT"), ("period_end", "TEXT"), ("filing_id", "TEXT"),
                 ("fiscal_period", "TEXT"), ("revenue", "REAL NULL"),
                 ("net_income", "REAL NULL"), ("eps", "REAL NULL"),
                 ("shares_outstanding", "REAL NULL"), ("total_assets", "REAL NULL"),
                 ("total_debt", "REAL NULL"), ("total_liabilities", "REAL NULL"),
                 ("equity", "REAL NULL"), ("operating_cash_flow", "REAL NULL"),
                 ("available_ts", "INTEGER")),
                ("symbol", "period_end", "filing_id"),
                prices=("shares_outstanding",),
                non_negative=("total_assets", "total_debt"),
                migrate_defaults={"filing_id": "'first-reported'"},
                about=('Quarterly figures as filed, one row per filing (`filing_id`, the SEC '
                 'accession number): a restatement is a new row, never an overwrite, so a '
                 'past session reads the figure as first reported. Available from the '
                 "filing's acceptance."),
            ),
            TableSpec(
                "insider_trades",
                (("symbol", "TEXT"), ("filing_id", "TEXT"), ("insider_role", "TEXT"),
                 ("transaction_date", "TEXT"), ("side", "TEXT"), ("shares", "REAL"),
                 ("price", "REAL"), ("value", "REAL"), ("available_ts", "INTEGER"),
                 ("transaction_code", "TEXT NULL"), ("shares_after", "REAL NULL"),
                 ("ownership", "TEXT NULL"), ("owner", "TEXT NULL"),
                 ("is_10b5_1", "INTEGER NULL"), ("filing_date", "TEXT NULL"),
                 ("amends", "TEXT NULL")),
                ("symbol", "filing_id"),
                prices=("price", "shares"),
                about=("Insider transactions (Form 4), one row per transaction (`filing_id` is "
                 "the accession number and the row's place in it). A 4/A names the filing it "
                 "`amends`, whose rows it replaces from its own acceptance. Available from "
                 "the filing's acceptance, whatever the transaction date."),
            ),
            TableSpec(
                "analyst_ratings",
                (("symbol", "TEXT"), ("rating_id", "TEXT"), ("firm", "TEXT"), ("action", "TEXT"),
                 ("from_rating", "INTEGER"), ("to_rating", "INTEGER"), ("price_target", "REAL"),
                 ("available_ts", "INTEGER")),
                ("symbol", "rating_id"),
                prices=("price_target",),
                about=('Rating changes and price targets. Available when published.'),
            ),
            TableSpec(
                "analyst_trends",
                (("symbol", "TEXT"), ("period", "TEXT"), ("strong_buy", "INTEGER"),
                 ("buy", "INTEGER"), ("hold", "INTEGER"), ("sell", "INTEGER"),
                 ("strong_sell", "INTEGER"), ("available_ts", "INTEGER")),
                ("symbol", "period", "available_ts"),
                non_negative=("strong_buy", "buy", "hold", "sell", "strong_sell"),
                about=("Analysts' recommendation counts per month (Finnhub's trends), a snapshot "
                 "per run, available from when it was collected."),
            ),
            TableSpec(
                "economic_series",
                (("series", "TEXT"), ("period", "TEXT"), ("value", "REAL"),
                 ("available_ts", "INTEGER")),
                ("series", "period", "available_ts"),
                symbol_column=None,
                about=('Macro observations by series and period, one row per vintage: a '
                 'revision is a new row available from its own release, so a past session '
                 'reads the value as it was published then.'),
            ),
            TableSpec(
                "news",
                (("article_id", "TEXT"), ("symbol", "TEXT"), ("headline", "TEXT"),
                 ("source", "TEXT"), ("available_ts", "INTEGER"), ("updated_ts", "INTEGER NULL")),
                ("article_id",),
                about=('Headlines per symbol. Available at publication.'),
            ),
            TableSpec(
                "news_sentiment",
                (("article_id", "TEXT"), ("symbol", "TEXT"), ("compound", "REAL"),
                 ("positive", "REAL"), ("negative", "REAL"), ("neutral", "REAL"),
                 ("available_ts", "INTEGER")),
                ("article_id",),
                about=('Sentiment scores of each news item. Available when the item is.'),
            ),
            TableSpec(
                "options_chain",
                (("symbol", "TEXT"), ("session", "TEXT"), ("expiry", "TEXT"), ("strike", "REAL"),
                 ("option_type", "TEXT"), ("spot", "REAL"), ("bid", "REAL"), ("ask", "REAL"),
                 ("mid", "REAL"), ("implied_vol", "REAL"), ("delta", "REAL"),
                 ("open_interest", "REAL"), ("available_ts", "INTEGER"),
                 ("gamma", "REAL NULL"), ("theta", "REAL NULL"), ("vega", "REAL NULL"),
                 ("volume", "REAL NULL")),
                ("symbol", "session", "expiry", "strike", "option_type"),
                prices=("strike", "spot", "ask", "mid", "implied_vol"),
                non_negative=("bid", "open_interest"),
                about=("Option quotes and greeks per contract: one snapshot per session, taken "
                 "at the daily run (its open). Available at the quote time (Cboe: about 15 "
                 "minutes delayed), never after the run's as-of."),
            ),
            TableSpec(
                "earnings_calendar",
                (("symbol", "TEXT"), ("fiscal_period", "TEXT"), ("report_date", "TEXT"),
                 ("timing", "TEXT"), ("eps_estimate", "REAL NULL"), ("available_ts", "INTEGER"),
                 ("revenue_estimate", "REAL NULL")),
                ("symbol", "fiscal_period", "available_ts"),
                about=('Announced report dates (`timing`: bmo, amc, dmh or unknown) and '
                 'estimates, a snapshot per run: estimates move, and each snapshot is '
                 'available from when it was collected.'),
            ),
            TableSpec(
                "earnings_results",
                (("symbol", "TEXT"), ("fiscal_period", "TEXT"), ("report_date", "TEXT"),
                 ("eps_actual", "REAL"), ("eps_estimate", "REAL"), ("surprise_pct", "REAL"),
                 ("available_ts", "INTEGER")),
                ("symbol", "fiscal_period"),
                about=('Reported EPS against the estimate. Available at the report.'),
            ),
            TableSpec(
                "ml_features",
                (("symbol", "TEXT"), ("session", "TEXT"), ("close", "REAL NULL"),
                 ("return_1d", "REAL NULL"), ("return_5d", "REAL NULL"),
                 ("return_21d", "REAL NULL"), ("return_63d", "REAL NULL"),
                 ("volatility_21d", "REAL NULL"), ("rsi_14", "REAL NULL"),
                 ("macd", "REAL NULL"), ("macd_signal", "REAL NULL"),
                 ("volume_z_20", "REAL NULL"), ("sentiment_mean_3d", "REAL NULL"),
                 ("sentiment_mean_7d", "REAL NULL"), ("news_count_7d", "REAL NULL"),
                 ("earnings_surprise_pct", "REAL NULL"), ("insider_net_value_90d", "REAL NULL"),
                 ("rating_drift_30d", "REAL NULL"), ("earnings_yield", "REAL NULL"),
                 ("macro_json", "TEXT NULL"), ("inputs_json", "TEXT"), ("max_input_ts", "INTEGER"),
                 ("as_of_ts", "INTEGER")),
                ("symbol", "session"),
                time_column="as_of_ts",
                about=("Derived: one feature row per symbol and session, computed at `as_of_ts` "
                 "(the session's open) from rows available by then."),
            ),
            TableSpec(
                "signals",
                (("symbol", "TEXT"), ("session", "TEXT"), ("score", "REAL"), ("direction", "TEXT"),
                 ("components_json", "TEXT"), ("inputs_json", "TEXT"), ("max_input_ts", "INTEGER"),
                 ("as_of_ts", "INTEGER")),
                ("symbol", "session"),
                time_column="as_of_ts",
                about=("Derived: the daily trading signal per symbol and session, from that "
                 "session's features."),
            ),
            TableSpec(
                "intraday_features",
                (("symbol", "TEXT"), ("session", "TEXT"), ("bar_ts", "INTEGER"), ("close", "REAL"),
                 ("return_1m", "REAL NULL"), ("return_5m", "REAL NULL"),
                 ("return_15m", "REAL NULL"), ("return_session", "REAL"),
                 ("volatility_30m", "REAL NULL"), ("volume_z_30m", "REAL NULL"),
                 ("range_15m", "REAL NULL"), ("vwap", "REAL"), ("vwap_gap", "REAL"),
                 ("session_open", "REAL"), ("cum_volume", "REAL"), ("cum_price_volume", "REAL"),
                 ("available_ts", "INTEGER")),
                ("symbol", "bar_ts"),
                about=("Derived: per-minute features of each symbol's bars, available with the "
                 "bar they describe."),
            ),
            TableSpec(
                "intraday_signals",
                (("symbol", "TEXT"), ("session", "TEXT"), ("slot", "TEXT"), ("score", "REAL"),
                 ("direction", "TEXT"), ("intraday_score", "REAL"), ("daily_score", "REAL NULL"),
                 ("inputs_json", "TEXT"), ("max_input_ts", "INTEGER"), ("as_of_ts", "INTEGER")),
                ("symbol", "session", "slot"),
                time_column="as_of_ts",
                about=('Derived: the signal of each five-minute slot, computed at its end.'),
            ),
        )
    }
)  # fmt: skip

QUARANTINE_SQL = """
CREATE TABLE IF NOT EXISTS quarantine (
    source TEXT NOT NULL, table_name TEXT NOT NULL, natural_key TEXT NOT NULL,
    reason TEXT NOT NULL, payload TEXT NOT NULL, quarantined_ts INTEGER NOT NULL,
    PRIMARY KEY (source, table_name, natural_key, reason)) WITHOUT ROWID
"""
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS prices_daily_session ON prices_daily (session)",
    "CREATE INDEX IF NOT EXISTS intraday_bars_session ON intraday_bars (session, symbol, bar_ts)",
    # Each symbol's newest feature row known at a moment (the intraday features' running
    # sums, the intraday signals): available_ts in the index, so that scan reads no rows
    # (0.6 s to 0.2 s at 5,000 symbols). It replaces intraday_features_session.
    "DROP INDEX IF EXISTS intraday_features_session",
    "CREATE INDEX IF NOT EXISTS intraday_features_latest "
    "ON intraday_features (session, symbol, bar_ts, available_ts)",
    "CREATE INDEX IF NOT EXISTS news_symbol_time ON news (symbol, available_ts)",
    "CREATE INDEX IF NOT EXISTS ml_features_session ON ml_features (session)",
    # Health's newest-row queries (MAX(available_ts) WHERE available_ts <= :now).
    "CREATE INDEX IF NOT EXISTS intraday_bars_available ON intraday_bars (available_ts)",
)


@dataclass(frozen=True)
class StoreOutcome:
    """Rows written and rows quarantined by one ``store`` call."""

    written: int
    rejected: int
    reasons: Mapping[str, int]


def epoch(moment: datetime) -> int:
    """Epoch seconds of a timezone-aware datetime."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}")
    return int(moment.timestamp())


_QUARANTINE_UPSERT = (
    "INSERT INTO quarantine (source, table_name, natural_key, reason, payload, quarantined_ts) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, table_name, natural_key, reason) "
    "DO UPDATE SET payload = excluded.payload, quarantined_ts = excluded.quarantined_ts"
)


class MarketStore:
    """A connection to the market database; use as a context manager.

    ``store`` is a ``StoreURL``, a URL or a plain path (a SQLite file).
    """

    def __init__(self, store: database.StoreURL | Path | str) -> None:
        self.location = database.store_url(store)
        self.connection: database.Connection
        if self.location.path is not None:
            self.location.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = database.connect(self.location.path)
            self.connection.execute("PRAGMA journal_mode = WAL")
            self.connection.execute("PRAGMA synchronous = NORMAL")
        else:
            self.connection = database.open_store(self.location)
        self.create_schema()

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL."""
        return self.location.path

    def __enter__(self) -> MarketStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    def create_schema(self) -> None:
        """Create every table and index that is missing; idempotent."""
        dialect = self.location.dialect
        with self.transaction():
            for spec in TABLES.values():
                migrate(self.connection, spec, dialect)
            self.connection.execute(database.ddl(QUARANTINE_SQL, dialect))
            for statement in _INDEXES:
                self.connection.execute(statement)

    def transaction(self) -> AbstractContextManager[database.Connection]:
        return database.transaction(self.connection)

    # -- reading -----------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Rows of a parameterised query as a DataFrame (column names from the cursor)."""
        cursor = self.connection.execute(sql, tuple(params))
        names = [column[0] for column in cursor.description]
        return pd.DataFrame.from_records(cursor.fetchall(), columns=names)

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.connection.execute(sql, tuple(params)).fetchone()
        return None if row is None else row[0]

    def symbols(self, as_of_ts: int) -> list[str]:
        """The universe listed at ``as_of_ts`` (from the ``assets`` table)."""
        rows = self.connection.execute(
            "SELECT symbol FROM assets WHERE available_ts <= ? ORDER BY symbol", (as_of_ts,)
        )
        return [row[0] for row in rows]

    # -- writing -----------------------------------------------------------

    def upsert(self, table: str, frame: pd.DataFrame) -> int:
        """Upsert the rows (sorted by key) in one transaction; rows written."""
        spec = _spec(table)
        if frame.empty:
            return 0
        absent = spec.nullable - set(frame.columns)
        if absent:  # optional columns this batch does not have
            frame = frame.assign(**dict.fromkeys(absent, None))
        missing = [name for name in spec.column_names if name not in frame.columns]
        if missing:
            raise PermanentError(f"{table}: batch lacks columns {missing}")
        ordered = frame.sort_values(list(spec.key), kind="stable")
        columns = [_python_values(ordered[name]) for name in spec.column_names]
        rows = zip(*columns, strict=True)
        with self.transaction():
            if isinstance(self.connection, database.PostgresConnection):
                # COPY to a staging table, then one upsert from it (bench/bench_stores.py).
                staging = f"staging_{table}"
                self.connection.execute(
                    f"CREATE TEMP TABLE {staging} (LIKE {table}) ON COMMIT DROP"
                )
                self.connection.copy_rows(staging, spec.column_names, rows)
                self.connection.execute(spec.upsert_sql(staging))
            else:
                self.connection.executemany(spec.upsert_sql(), rows)
        return len(ordered)

    def quarantine(self, source: str, table: str, rejects: pd.DataFrame, now_ts: int) -> int:
        """Record rejected rows (``reason`` column + payload) in ``quarantine``."""
        if rejects.empty:
            return 0
        spec = _spec(table)
        payload_columns = [column for column in rejects.columns if column != "reason"]
        records = rejects[payload_columns].astype(object).where(rejects[payload_columns].notna())
        rows = [
            (
                source,
                table,
                "|".join(str(record.get(name)) for name in spec.key),
                reason,
                json.dumps(record, default=str, sort_keys=True),
                now_ts,
            )
            for record, reason in zip(
                records.to_dict(orient="records"), rejects["reason"], strict=True
            )
        ]
        with self.transaction():
            self.connection.executemany(_QUARANTINE_UPSERT, rows)
        return len(rows)

    def store(
        self,
        source: str,
        table: str,
        frame: pd.DataFrame,
        *,
        as_of: datetime,
        known_symbols: Collection[str] | None = None,
        sessions: Collection[str] | None = None,
        session_bounds: tuple[int, int] | None = None,
    ) -> StoreOutcome:
        """Validate, quarantine the bad rows, upsert the good ones.

        ``known_symbols`` rejects rows for symbols outside the universe;
        ``sessions`` (ISO dates) rejects rows whose ``session`` is no trading
        session; ``session_bounds`` ``[open_ts, close_ts)`` rejects bars stamped
        outside the session. Raises ``DataValidationError`` when the batch has
        rows and none is good.
        """
        good, rejects = validate(
            table,
            frame,
            as_of_ts=epoch(as_of),
            known_symbols=known_symbols,
            sessions=sessions,
            session_bounds=session_bounds,
        )
        rejected = self.quarantine(source, table, rejects, epoch(as_of))
        reasons = (
            {str(k): int(v) for k, v in rejects["reason"].value_counts().items()}
            if rejected
            else {}
        )
        if rejected:
            logger.warning("%s: quarantined %d %s rows: %s", source, rejected, table, reasons)
        if len(frame) and good.empty:
            raise DataValidationError(
                f"{source}: all {len(frame)} rows for {table} were rejected "
                f"(reasons: {reasons}); see the quarantine table"
            )
        return StoreOutcome(self.upsert(table, good), rejected, reasons)


_POSTGRES_COLUMNS = (
    "SELECT column_name FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position"
)
_POSTGRES_KEY = (
    "SELECT k.column_name FROM information_schema.table_constraints c "
    "JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name "
    "AND k.table_schema = c.table_schema AND k.table_name = c.table_name "
    "WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = current_schema() "
    "AND c.table_name = ? ORDER BY k.ordinal_position"
)


def migrate(connection: database.Connection, spec: TableSpec, dialect: str = "sqlite") -> None:
    """Create ``spec``'s table, or bring an older one to its columns and key, keeping the rows.

    SQLite: a table stored by an earlier version (fewer columns, a shorter
    key) is rebuilt in the open transaction: its rows are copied into the new
    layout, new columns get ``NULL`` or their ``migrate_defaults`` value.
    PostgreSQL stores began with today's layout: one that differs is refused
    with a ``PermanentError`` naming the table.
    """
    if dialect == "postgresql":
        columns = [row[0] for row in connection.execute(_POSTGRES_COLUMNS, (spec.name,))]
        if not columns:
            connection.execute(spec.create_sql(dialect))
            return
        key = [row[0] for row in connection.execute(_POSTGRES_KEY, (spec.name,))]
        if columns != list(spec.column_names) or key != list(spec.key):
            raise PermanentError(
                f"market store: table {spec.name} has columns {columns} and key {key}, "
                f"not {list(spec.column_names)} and {list(spec.key)}: rebuild it"
            )
        return
    existing = connection.execute(f"PRAGMA table_info({spec.name})").fetchall()
    if not existing:
        connection.execute(spec.create_sql())
        return
    columns = [row[1] for row in existing]
    key = [row[1] for row in sorted(existing, key=lambda row: row[5]) if row[5]]
    if columns == list(spec.column_names) and key == list(spec.key):
        return
    logger.warning("market store: migrating table %s to its new layout", spec.name)
    connection.execute(f"ALTER TABLE {spec.name} RENAME TO {spec.name}__old")
    connection.execute(spec.create_sql())
    values = [
        name if name in columns else spec.migrate_defaults.get(name, "NULL")
        for name in spec.column_names
    ]
    connection.execute(
        f"INSERT OR REPLACE INTO {spec.name} ({', '.join(spec.column_names)}) "
        f"SELECT {', '.join(values)} FROM {spec.name}__old"
    )
    connection.execute(f"DROP TABLE {spec.name}__old")


def _spec(table: str) -> TableSpec:
    try:
        return TABLES[table]
    except KeyError:
        raise PermanentError(f"unknown market table {table!r}") from None


def _python_values(column: pd.Series) -> list[Any]:
    """Column values as Python scalars both drivers accept (NaN and None become NULL)."""
    if column.dtype.kind == "b":  # stored as 0/1 (PostgreSQL takes no bool in a BIGINT)
        return column.to_numpy().astype(np.int64).tolist()
    if column.dtype.kind in "fiu":
        values = column.to_numpy()
        if values.dtype.kind == "f" and np.isnan(values).any():
            return column.astype(object).where(column.notna(), None).tolist()
        return values.tolist()
    if column.dtype.kind == "M":
        return (column.astype("int64") // 10**9).tolist()
    return column.astype(object).where(column.notna(), None).tolist()


def validate(
    table: str,
    frame: pd.DataFrame,
    *,
    as_of_ts: int,
    known_symbols: Collection[str] | None = None,
    sessions: Collection[str] | None = None,
    session_bounds: tuple[int, int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a batch into (good rows, rejected rows with a ``reason`` column).

    Each rejected row gets the first failing reason, in this order: malformed
    (missing column, null or non-numeric required value), duplicate key within
    the batch (the first occurrence is kept), unknown symbol, not a session,
    stamped after ``as_of``, stamped outside the session, non-positive or NaN
    price, high below low, open/close outside [low, high], negative volume.
    """
    spec = _spec(table)
    frame = frame.reset_index(drop=True)
    count = len(frame)
    for name in spec.nullable - set(frame.columns):
        frame[name] = None  # optional columns a provider does not have
    missing = [name for name in spec.column_names if name not in frame.columns]
    if missing:
        rejects = frame.copy()
        rejects["reason"] = f"malformed: missing columns {missing}"
        return frame.iloc[0:0], rejects
    checks: list[tuple[str, np.ndarray]] = []
    required = [name for name in spec.column_names if name not in spec.nullable]
    nulls = frame[required].isna().to_numpy()
    if nulls.any():
        checks.append(("malformed: null required value", nulls.any(axis=1)))
    numeric = {}
    for name, kind in spec.columns:
        if kind.startswith(("REAL", "INTEGER")):
            values = frame[name]
            if values.dtype.kind not in "fiub":
                converted = pd.to_numeric(values, errors="coerce")
                checks.append(
                    (
                        f"malformed: non-numeric {name}",
                        (converted.isna() & values.notna()).to_numpy(),
                    )
                )
                frame[name] = converted
            numeric[name] = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
    checks.append(
        ("duplicate key in batch", frame.duplicated(list(spec.key), keep="first").to_numpy())
    )
    if known_symbols is not None and spec.symbol_column:
        known = frame[spec.symbol_column].isin(set(known_symbols)).to_numpy()
        checks.append(("unknown symbol", ~known))
    if sessions is not None and "session" in frame.columns:
        checks.append(("not a trading session", ~frame["session"].isin(set(sessions)).to_numpy()))
    stamp = numeric[spec.time_column]
    checks.append(("stamped after as_of", stamp > as_of_ts))
    if session_bounds is not None and "bar_ts" in numeric:
        bar = numeric["bar_ts"]
        checks.append(
            ("stamped outside the session", (bar < session_bounds[0]) | (bar >= session_bounds[1]))
        )
    with np.errstate(invalid="ignore"):
        for name in spec.prices:
            absent = np.isnan(numeric[name]) if name in spec.nullable else False
            checks.append((f"non-positive or NaN {name}", ~(numeric[name] > 0) & ~absent))
        if spec.ohlc:
            high, low = numeric["high"], numeric["low"]
            checks.append(("high below low", high < low))
            outside = np.zeros(count, dtype=bool)
            for name in ("open", "close"):
                outside |= (numeric[name] < low) | (numeric[name] > high)
            checks.append(("open/close outside [low, high]", outside))
        for name in spec.non_negative:
            absent = np.isnan(numeric[name]) if name in spec.nullable else False
            checks.append((f"negative or NaN {name}", ~(numeric[name] >= 0) & ~absent))
    reasons = np.full(count, None, dtype=object)
    for reason, failed in reversed(checks):  # earlier checks win: they overwrite later ones
        reasons[np.asarray(failed, dtype=bool)] = reason
    bad = pd.notna(reasons)
    if not bad.any():
        return frame, frame.iloc[0:0].assign(reason=pd.Series(dtype=object))
    rejects = frame[bad].copy()
    rejects["reason"] = reasons[bad]
    return frame[~bad], rejects
