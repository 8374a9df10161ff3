"""The market database reference cannot drift from the store's table definitions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from collectors.market_schema_doc import schema_markdown
from collectors.market_store import TABLES, MarketStore

DOC = Path(__file__).resolve().parent.parent / "docs" / "market-database.md"


def test_the_committed_reference_is_what_the_definitions_generate() -> None:
    assert DOC.read_text() == schema_markdown(), "run `make docs` and commit the result"


def test_every_table_of_a_real_store_is_documented_with_every_column(tmp_path: Path) -> None:
    with MarketStore(tmp_path / "market.db"):
        pass
    connection = sqlite3.connect(tmp_path / "market.db")
    tables = [
        name
        for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    ]
    text = DOC.read_text()
    for table in tables:
        section = text.split(f"\n## {table}\n", 1)[1].split("\n## ", 1)[0]
        for _, column, *_ in connection.execute(f"PRAGMA table_info({table})"):
            assert f"\n| {column} |" in section, (table, column)
    assert set(TABLES) <= set(tables)
    assert all(spec.about for spec in TABLES.values()), "every table says what a row is"
