"""Daily collectors end to end on a small synthetic universe: contract, idempotence, increments."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import date
from pathlib import Path

import pytest
import yaml

from collectors.context import CollectResult
from collectors.market_store import TABLES
from orchestrator.errors import PermanentError
from tests.collector_runs import DAILY_ORDER, run, run_daily

MONDAY = date(2026, 11, 16)
TUESDAY = date(2026, 11, 17)


def table_digest(path) -> dict[str, str]:
    """A content hash per table (quarantine included), to prove a re-run changed nothing."""
    connection = sqlite3.connect(path)
    digests = {}
    for table in [*TABLES, "quarantine"]:
        rows = connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
        digests[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    connection.close()
    return digests


@pytest.fixture(scope="module")
def built(calendar, tmp_path_factory):
    market_db = tmp_path_factory.mktemp("daily") / "market.db"
    results = run_daily(calendar, market_db, MONDAY, options={"history_sessions": 60})
    return market_db, results


def test_every_collector_stores_rows_and_reports_data_time(built, calendar):
    _, results = built
    open_ts = calendar.hours(MONDAY).open
    for task, outcome in results.items():
        assert isinstance(outcome, CollectResult), task
        assert outcome.records_processed > 0, task
        assert outcome.rows_rejected == 0, task
        assert outcome.data_as_of is not None and outcome.data_as_of <= open_ts, task


def test_every_source_ages_from_its_stored_rows_never_from_later_ones(built, calendar):
    market_db, _ = built
    connection = sqlite3.connect(market_db)
    tasks = yaml.safe_load((Path(__file__).parent.parent / "config.yaml").read_text())["tasks"]
    assert all("data_time_sql" in task["freshness"] for task in tasks.values())
    built_at = int(calendar.hours(MONDAY).open.timestamp())
    for task in DAILY_ORDER:
        sql = tasks[task]["freshness"]["data_time_sql"]
        (newest,) = connection.execute(sql, {"now": built_at}).fetchone()
        assert isinstance(newest, int) and newest <= built_at, task
        (before,) = connection.execute(sql, {"now": newest - 1}).fetchone()
        assert before is None or before < newest, task


def test_first_price_run_fetches_history_later_runs_only_what_is_missing(built, calendar):
    market_db, results = built
    assert results["prices_daily"].details["sessions"] == 60
    options = {"history_sessions": 60}
    nxt = run(
        "prices_daily", calendar=calendar, market_db=market_db, session=TUESDAY, options=options
    )
    assert nxt.details["sessions"] == 1  # Monday's bars, closed before Tuesday's open
    sessions = sqlite3.connect(market_db).execute("SELECT MAX(session) FROM prices_daily")
    assert sessions.fetchone() == (MONDAY.isoformat(),)


def test_rerunning_a_session_changes_nothing(calendar, tmp_path):
    market_db = tmp_path / "market.db"
    run_daily(calendar, market_db, MONDAY, options={"history_sessions": 30})
    before = table_digest(market_db)
    run_daily(calendar, market_db, MONDAY, options={"history_sessions": 30})
    assert table_digest(market_db) == before


def test_signals_have_a_direction_and_score_in_range(built):
    market_db, _ = built
    rows = sqlite3.connect(market_db).execute("SELECT score, direction FROM signals").fetchall()
    assert len(rows) == 8
    assert all(
        -1 <= score <= 1 and direction in {"long", "short", "flat"} for score, direction in rows
    )


def test_collectors_need_the_asset_universe(calendar, tmp_path):
    with pytest.raises(PermanentError, match="run the assets task first"):
        run("news", calendar=calendar, market_db=tmp_path / "m.db", session=MONDAY)


def test_signals_without_features_is_a_permanent_error(calendar, tmp_path):
    run("assets", calendar=calendar, market_db=tmp_path / "m.db", session=MONDAY)
    with pytest.raises(PermanentError, match="run ml_features first"):
        run("signals", calendar=calendar, market_db=tmp_path / "m.db", session=MONDAY)
