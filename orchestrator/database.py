"""Opening the project's SQLite files: one way, for the status store, the market store and health.

Every connection is in autocommit mode (transactions are explicit ``BEGIN
IMMEDIATE ... COMMIT``, see ``transaction``) with a busy timeout, so parallel
tasks wait for each other instead of failing with "database is locked".
Writers switch the file to WAL, so readers (the health monitor) never block
them. A read-only connection is a real one (``mode=ro``): it can neither
create a missing file nor write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_SECONDS = 30.0


def connect(
    path: Path | str, readonly: bool = False, busy_timeout: float = BUSY_TIMEOUT_SECONDS
) -> sqlite3.Connection:
    """A connection to ``path`` with the busy timeout set.

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


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` when the block raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
