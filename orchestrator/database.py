"""Opening the project's stores, SQLite files or PostgreSQL, one way for every reader and writer.

A store is named by a URL (``stores:`` in ``config.yaml``):

- ``sqlite:///state/status.db`` (three slashes: relative to the project
  directory) or ``sqlite:////abs/path.db`` (four: absolute), the default;
- ``postgresql://user@host:5432/dbname``, libpq's URI. Credentials never
  appear in it: the password comes from the environment, either libpq's own
  ``PGPASSWORD`` / ``~/.pgpass``, or a ``${VARIABLE}`` reference anywhere in
  the URL that is resolved from the environment only when connecting, so the
  config and everything written from it (the effective config, context files,
  logs) hold the reference, never the value. ``StoreURL`` prints redacted.

SQLite connections are in autocommit mode (transactions are explicit ``BEGIN
IMMEDIATE ... COMMIT``, see ``transaction``) with a busy timeout, so parallel
tasks wait for each other instead of failing with "database is locked".
Writers switch the file to WAL, so readers (the health monitor) never block
them. A read-only connection is a real one (``mode=ro``): it can neither
create a missing file nor write.

PostgreSQL is reached through psycopg 3, imported only when such a URL is
opened (it costs ~0.2 s: never on the SQLite default's per-task path or
``--health``). ``PostgresConnection`` takes the same SQL as SQLite: ``?``,
``?N`` and ``:name`` placeholders are rewritten for psycopg, rows index by
position and by name like ``sqlite3.Row``, times come back as ISO 8601 text
as SQLite stores them, and errors are raised as the ``sqlite3`` exception
classes (a missing table as "no such table"), so a reader handles one set.
DDL is written once, in SQLite's words, and ``ddl`` derives PostgreSQL's.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from orchestrator.errors import ConfigError

BUSY_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10
SQLITE_SCHEME = "sqlite"
POSTGRES_SCHEMES = ("postgresql", "postgres")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Connection(Protocol):
    """What the stores and readers use of a connection, SQLite's or PostgreSQL's."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...

    def executescript(self, script: str, /) -> Any: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class StoreURL:
    """Where a store lives: ``path`` for a SQLite file, else a PostgreSQL ``url``.

    ``url`` is as configured, ``${VARIABLE}`` references unresolved; ``str()``
    of a store is its path or its URL without any password.
    """

    url: str
    path: Path | None

    @property
    def is_postgres(self) -> bool:
        return self.path is None

    @property
    def dialect(self) -> str:
        return "postgresql" if self.is_postgres else "sqlite"

    def exists(self) -> bool:
        """Whether there may be something to read: the file exists, or a server is named."""
        return self.path.is_file() if self.path is not None else True

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else redacted(self.url)


def redacted(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def store_url(value: StoreURL | Path | str, base_dir: Path | None = None) -> StoreURL:
    """The ``StoreURL`` of a URL, or of a plain path (a SQLite file).

    Relative SQLite paths are taken from ``base_dir`` (default: the current
    directory). ``ValueError`` names what is wrong with a malformed URL; a
    PostgreSQL URL carrying a literal password is refused.
    """
    if isinstance(value, StoreURL):
        return value
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if isinstance(value, Path) or "://" not in value:
        path = Path(value)
        return StoreURL(f"sqlite:///{path}", path if path.is_absolute() else base / path)
    scheme = value.split("://", 1)[0].lower()
    if scheme == SQLITE_SCHEME:
        rest = value.split("://", 1)[1]
        if not rest.startswith("/") or rest == "/":
            raise ValueError(
                f"{value!r}: a SQLite URL has no host: sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        path = Path(rest[1:])
        return StoreURL(value, path if path.is_absolute() else base / path)
    if scheme in POSTGRES_SCHEMES:
        _check_postgres_url(value)
        return StoreURL(value, None)
    raise ValueError(
        f"{redacted(value)!r}: unknown store scheme {scheme!r} "
        "(use sqlite:///path.db or postgresql://user@host/dbname)"
    )


def _check_postgres_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number
    except ValueError as error:
        raise ValueError(f"{redacted(url)!r}: not a PostgreSQL URL ({error})") from None
    if not parts.path.strip("/"):
        raise ValueError(f"{redacted(url)!r}: names no database (postgresql://user@host/dbname)")
    if parts.password is not None and not _REFERENCE.fullmatch(parts.password):
        raise ValueError(
            f"{redacted(url)!r}: a password does not belong in the config; set PGPASSWORD "
            "(or ~/.pgpass) in the environment, or write ${VARIABLE} in its place"
        )


def resolve(url: str, environ: Mapping[str, str] | None = None) -> str:
    """``url`` with every ``${VARIABLE}`` replaced from the environment.

    A value stands for one part of the URL, so it is percent-encoded (a
    password may hold ``@`` or ``/``). ``ConfigError`` names a variable that
    is not set.
    """
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            problem = f"not set; the store URL {redacted(url)} refers to it"
            raise ConfigError("the environment", name, problem)
        return quote(env[name], safe="")

    return _REFERENCE.sub(value, url)


# -- opening --------------------------------------------------------------------


def connect(
    path: Path | str, readonly: bool = False, busy_timeout: float = BUSY_TIMEOUT_SECONDS
) -> sqlite3.Connection:
    """A connection to the SQLite file ``path`` with the busy timeout set.

    ``readonly`` opens with ``mode=ro`` and raises ``sqlite3.OperationalError``
    when the file does not exist.
    """
    if readonly:
        uri = f"{Path(path).resolve().as_uri()}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None)
    else:
        connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    return connection


def open_store(
    store: StoreURL, readonly: bool = False, busy_timeout: float = BUSY_TIMEOUT_SECONDS
) -> Connection:
    """A connection to ``store``, with rows that index by position and by name.

    SQLite: as ``connect`` (``sqlite3.Row`` rows). PostgreSQL: a
    ``PostgresConnection``, read-only sessions if ``readonly``; a server that
    cannot be reached raises ``sqlite3.OperationalError``.
    """
    if store.path is not None:
        connection = connect(store.path, readonly=readonly, busy_timeout=busy_timeout)
        connection.row_factory = sqlite3.Row
        return connection
    return PostgresConnection(store, readonly=readonly, busy_timeout=busy_timeout)


@contextmanager
def transaction(connection: Connection) -> Iterator[Connection]:
    """A write transaction holding the database's writer lock; rolled back if the block raises.

    SQLite: ``BEGIN IMMEDIATE``. PostgreSQL: ``BEGIN`` and ``WRITER_LOCK_SQL``,
    so writers wait for each other (up to the lock timeout) on both.
    """
    if isinstance(connection, PostgresConnection):
        connection.execute("BEGIN")
        connection.execute(WRITER_LOCK_SQL)
    else:
        connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


# -- one DDL, two dialects ------------------------------------------------------

# PostgreSQL's stand-in for SQLite's one write lock (BEGIN IMMEDIATE): a transaction-scoped
# advisory lock every writer of the database takes, so read-then-write sequences and
# concurrent CREATE TABLE IF NOT EXISTS (which collide in PostgreSQL's catalogue) serialise.
WRITER_LOCK_SQL = "SELECT pg_advisory_xact_lock(7260211)"

_POSTGRES_TYPES = (
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),  # epoch seconds outlive 2038
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),  # PostgreSQL's REAL is 4 bytes
    (re.compile(r"\bTIMESTAMP\b"), "TIMESTAMPTZ"),
    (re.compile(r"\s*\bWITHOUT ROWID\b"), ""),
)


def ddl(sql: str, dialect: str) -> str:
    """``sql``, DDL written in SQLite's words, in ``dialect``'s ("sqlite" or "postgresql")."""
    if dialect == "sqlite":
        return sql
    for pattern, replacement in _POSTGRES_TYPES:
        sql = pattern.sub(replacement, sql)
    return sql


# -- PostgreSQL -----------------------------------------------------------------

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_NUMBERED = re.compile(r"\?(\d*)")


@functools.lru_cache(maxsize=512)
def _postgres_sql(sql: str, named: bool) -> tuple[str, tuple[int, ...] | None]:
    """``sql`` with psycopg's placeholders, and for ``?N`` the parameter order it needs."""
    sql = sql.replace("%", "%%")
    if named:
        return _NAMED.sub(r"%(\1)s", sql), None
    order: list[int] = []
    position = 0

    def placeholder(match: re.Match[str]) -> str:
        nonlocal position
        position += 1
        order.append(int(match.group(1)) - 1 if match.group(1) else position - 1)
        return "%s"

    converted = _NUMBERED.sub(placeholder, sql)
    numbered = any(index != place for place, index in enumerate(order))
    return converted, tuple(order) if numbered else None


def _parameters(sql: str, parameters: Any) -> tuple[str, Any]:
    if isinstance(parameters, Mapping):
        return _postgres_sql(sql, True)[0], parameters
    converted, order = _postgres_sql(sql, False)
    values = tuple(parameters or ())
    return converted, tuple(values[index] for index in order) if order else values


class Row(tuple):  # type: ignore[type-arg]
    """A row that indexes by position and by column name, as ``sqlite3.Row`` does."""

    _names: Mapping[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> Any:
    description = cursor.description or ()
    names = {column.name: index for index, column in enumerate(description)}

    def make(values: Sequence[Any]) -> Row:
        row = Row(value.isoformat() if isinstance(value, datetime) else value for value in values)
        row._names = names
        return row

    return make


def _sqlite_error(error: Exception) -> sqlite3.Error:
    """The ``sqlite3`` exception that stands for psycopg's ``error``."""
    import psycopg

    text = " ".join(str(error).split())
    if isinstance(error, psycopg.errors.UndefinedTable):
        return sqlite3.OperationalError(f"no such table: {text}")
    if isinstance(error, psycopg.errors.IntegrityError):
        return sqlite3.IntegrityError(text)
    if isinstance(error, psycopg.OperationalError):
        return sqlite3.OperationalError(f"database busy or unreachable: {text}")
    return sqlite3.DatabaseError(text)


@functools.cache
def _bool_dumper() -> type:
    import psycopg.adapt
    from psycopg.postgres import types

    class BoolAsInteger(psycopg.adapt.Dumper):
        oid = types["int8"].oid

        def dump(self, obj: Any) -> bytes:
            return b"1" if obj else b"0"

    return BoolAsInteger


class PostgresConnection:
    """A psycopg 3 connection in autocommit mode that takes SQLite-style SQL.

    Sessions run in UTC (times read back as ``...+00:00``) with a lock timeout
    like SQLite's busy timeout.
    """

    def __init__(self, store: StoreURL, readonly: bool = False, busy_timeout: float = 30.0):
        import psycopg

        self.store = store
        options = f"-c TimeZone=UTC -c lock_timeout={int(busy_timeout * 1000)}"
        if readonly:
            options += " -c default_transaction_read_only=on"
        try:
            self._connection = psycopg.connect(
                resolve(store.url),
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                options=options,
                row_factory=_row_factory,
            )
        except psycopg.Error as error:
            raise _sqlite_error(error) from None
        # SQLite stores True as 1: so does this store (its columns say INTEGER, never BOOLEAN).
        self._connection.adapters.register_dumper(bool, _bool_dumper())

    @property
    def row_factory(self) -> Any:
        return Row

    @row_factory.setter
    def row_factory(self, _factory: Any) -> None:
        """Rows are always ``Row``s; accepted so SQLite readers run unchanged."""

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        import psycopg

        converted, values = _parameters(sql, parameters)
        try:
            return self._connection.execute(converted, values)  # type: ignore[call-overload]
        except psycopg.Error as error:
            raise _sqlite_error(error) from None

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        import psycopg

        rows = list(parameters)
        if not rows:
            return None
        converted, order = _postgres_sql(sql, isinstance(rows[0], Mapping))
        if order:
            rows = [tuple(row[index] for index in order) for row in rows]
        try:
            with self._connection.cursor() as cursor:
                cursor.executemany(converted, rows)  # type: ignore[call-overload]
        except psycopg.Error as error:
            raise _sqlite_error(error) from None
        return None

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """``COPY`` ``rows`` into ``table``: the bulk load, in the caller's transaction."""
        import psycopg

        try:
            with (
                self._connection.cursor() as cursor,
                cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as error:
            raise _sqlite_error(error) from None

    def executescript(self, script: str, /) -> Any:
        import psycopg

        try:
            self._connection.execute(script.encode())  # several statements, no parameters
        except psycopg.Error as error:
            raise _sqlite_error(error) from None
        return None

    def close(self) -> None:
        self._connection.close()
