"""Whether the files under ``state/`` can be used, checked before a command relies on them.

A read-only state directory or a database that is not SQLite (a disk fault,
a file copied over it) would otherwise surface as a traceback from deep in a
job, or worse, as a new empty file replacing the user's. Each problem becomes
one ``StateError`` naming the file, what is wrong, what to do, and what that
costs. Cheap: a probe file per directory and a header read per database, so
``--health`` and every intraday tick can afford it.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import StateError

if TYPE_CHECKING:
    from orchestrator.config import Config

SQLITE_HEADER = b"SQLite format 3\x00"
# What moving each database aside loses (a new, empty one is created), by file name.
LOSS = {
    "status.db": "the run history and every task's live status (the market data and the "
    "built sessions are kept)",
    "market.db": "all collected market data; the next `orchestrator --daily` rebuilds the "
    "current session, and `orchestrator backfill` rebuilds past ones",
}


def check_state(config: Config) -> None:
    """``StateError`` for the first unusable folder or database under ``config.state_dir``.

    Read-only commands need the folders writable too: SQLite writes a ``-shm``
    file beside a WAL database even to read it.
    """
    check_writable(config.state_dir)
    check_database(config.status_db)
    check_database(config.market_db)


def check_writable(state_dir: Path) -> None:
    """The state directory and the folders in it accept new files."""
    if not state_dir.exists():
        return  # created on first use, inside a parent that is checked then
    for folder in (state_dir, *sorted(p for p in state_dir.iterdir() if p.is_dir())):
        try:
            with tempfile.TemporaryFile(dir=folder, prefix=".write-probe-"):
                pass
        except OSError as error:
            raise StateError(
                f"{folder} is not writable ({error.strerror}): runs write their sentinels, "
                f"logs and databases under {state_dir}, and SQLite writes beside a database "
                f"even to read it. Make it writable again "
                f"(chmod -R u+w {state_dir}, or remount it read-write) and run again"
            ) from None


def check_database(path: Path) -> None:
    """``path`` is absent, empty (SQLite makes it a database) or a readable SQLite file.

    Only the header and the schema are read: a full integrity check would cost
    seconds on a large market database. Damage deeper in the file is reported
    where a query meets it (``damaged_database``).
    """
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as error:
        raise StateError(f"{path} cannot be read ({error.strerror})") from None
    if not header:
        return
    if header != SQLITE_HEADER:
        raise _move_aside(path, "is not a SQLite database")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        damage = damaged_database(path, error)
        if damage:
            raise damage from None


def damaged_database(path: Path, error: sqlite3.DatabaseError) -> StateError | None:
    """The move-aside message if ``error`` says ``path`` is damaged, else None."""
    if "malformed" in str(error) or "not a database" in str(error):
        return _move_aside(path, f"is damaged ({error})")
    return None


def _move_aside(path: Path, problem: str) -> StateError:
    loss = LOSS.get(path.name, "what it holds")
    return StateError(
        f"{path} {problem}. Nothing was changed. Move it aside (mv {path} {path}.damaged) "
        f"and run again to start a new one; that loses {loss}"
    )
