"""The market database's tables as Markdown, generated from the store's own definitions.

``python -m collectors.market_schema_doc > docs/market-database.md`` (``make
docs``) writes the reference; a test compares the committed file with this
output, so the document cannot drift from ``market_store.TABLES``.
"""

from __future__ import annotations

import sqlite3

from collectors.market_store import QUARANTINE_SQL, TABLES

HEADER = """\
# The market database (`state/market.db`)

Generated from `collectors/market_store.py` by `make docs`; do not edit.

SQLite, WAL. Timestamps are INTEGER epoch seconds UTC in columns ending `_ts`;
dates are ISO `YYYY-MM-DD` text; `session` is the exchange's trading date.
Writes are upserts on each table's key, one transaction per batch, so storing
a batch twice changes nothing.

**Point in time.** Every raw-data row has `available_ts`: when this user
could first have known it. Derived rows (features, signals) have `as_of_ts`,
the cutoff they were computed at, and read only rows with `available_ts <=
as_of_ts`. Nothing is ever stored with a time column later than the run's
as-of. Rows failing validation go to `quarantine`, never into these tables.
"""

QUARANTINE_ABOUT = "Rows a collector received but did not store, with the reason and the row."


def table_markdown(connection: sqlite3.Connection, name: str, about: str, time_column: str) -> str:
    """One table's section: what a row is, then its columns as SQLite has them."""
    columns = connection.execute(f"PRAGMA table_info({name})").fetchall()
    key = [column[1] for column in sorted(columns, key=lambda c: c[5]) if column[5]]
    lines = [f"## {name}", "", about, ""]
    if time_column:
        lines.append(f"Time column: `{time_column}`. Key: {', '.join(f'`{k}`' for k in key)}.")
    else:
        lines.append(f"Key: {', '.join(f'`{k}`' for k in key)}.")
    lines += ["", "| column | type | null | key |", "| --- | --- | --- | --- |"]
    for _, column, kind, not_null, _, in_key in columns:
        lines.append(
            f"| {column} | {kind} | {'' if not_null else 'may be NULL'} | "
            f"{'yes' if in_key else ''} |"
        )
    return "\n".join(lines) + "\n"


def schema_markdown() -> str:
    """The whole reference document, read back from a schema created in memory."""
    connection = sqlite3.connect(":memory:")
    for spec in TABLES.values():
        connection.execute(spec.create_sql())
    connection.execute(QUARANTINE_SQL)
    sections = [HEADER]
    sections += [
        table_markdown(connection, spec.name, spec.about, spec.time_column)
        for spec in TABLES.values()
    ]
    sections.append(table_markdown(connection, "quarantine", QUARANTINE_ABOUT, ""))
    connection.close()
    return "\n".join(sections)


if __name__ == "__main__":
    print(schema_markdown(), end="")
