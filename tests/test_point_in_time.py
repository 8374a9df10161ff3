"""Point-in-time: nothing stamped after a session's as-of reaches its features or signals."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta

import pandas as pd
import pytest

from collectors.market_store import MarketStore
from tests.collector_runs import run, run_daily

MONDAY = date(2026, 11, 16)
TUESDAY = date(2026, 11, 17)
OPTIONS = {"history_sessions": 80}
RAW_TABLES = (
    "prices_daily", "news", "insider_trades", "analyst_ratings", "fundamentals",
    "economic_series", "earnings_results", "earnings_calendar", "options_chain",
)  # fmt: skip


def plant_future_rows(store: MarketStore, as_of_ts: int, symbols: list[str]) -> None:
    """Rows that would move every feature a lot, all stamped after ``as_of_ts``."""
    later = as_of_ts + 1
    n = len(symbols)
    store.upsert(
        "prices_daily",
        pd.DataFrame(
            {"symbol": symbols, "session": MONDAY.isoformat(), "open": 1e6, "high": 1e6,
             "low": 1e6, "close": 1e6, "volume": 1e12, "split_ratio": 1.0, "dividend": 0.0,
             "available_ts": as_of_ts + 6 * 3600}
        ),
    )  # fmt: skip
    store.upsert(
        "news_sentiment",
        pd.DataFrame(
            {"article_id": [f"future-{s}" for s in symbols], "symbol": symbols, "compound": -1.0,
             "positive": 0.0, "negative": 1.0, "neutral": 0.0, "available_ts": later}
        ),
    )  # fmt: skip
    store.upsert(
        "earnings_results",
        pd.DataFrame(
            {"symbol": symbols, "fiscal_period": "2099Q1", "report_date": MONDAY.isoformat(),
             "eps_actual": 99.0, "eps_estimate": 1.0, "surprise_pct": 9900.0,
             "available_ts": later}
        ),
    )  # fmt: skip
    store.upsert(
        "insider_trades",
        pd.DataFrame(
            {"symbol": symbols, "filing_id": [f"future-{s}" for s in symbols],
             "insider_role": "CEO", "transaction_date": MONDAY.isoformat(), "side": "buy",
             "shares": 1e9, "price": 10.0, "value": 1e10, "available_ts": later}
        ),
    )  # fmt: skip
    store.upsert(
        "analyst_ratings",
        pd.DataFrame(
            {"symbol": symbols, "rating_id": [f"future-{s}" for s in symbols], "firm": "X",
             "action": "upgrade", "from_rating": [1] * n, "to_rating": [5] * n,
             "price_target": 1e6, "available_ts": later}
        ),
    )  # fmt: skip
    store.upsert(
        "fundamentals",
        pd.DataFrame(
            {"symbol": symbols, "period_end": "2099-03-31", "filing_id": "future",
             "fiscal_period": "2099Q1",
             "revenue": 1e15, "net_income": 1e15, "eps": 999.0, "shares_outstanding": 1e6,
             "total_assets": 1.0, "total_debt": 0.0, "available_ts": later}
        ),
    )  # fmt: skip
    store.upsert(
        "economic_series",
        pd.DataFrame({"series": ["CPI_YOY"], "period": ["2099-01"], "value": [999.0],
                      "available_ts": [later]}),
    )  # fmt: skip


@pytest.fixture(scope="module")
def clean_and_planted(calendar, tmp_path_factory):
    root = tmp_path_factory.mktemp("pit")
    clean = root / "clean.db"
    run_daily(calendar, clean, MONDAY, options=OPTIONS)
    planted = root / "planted.db"
    shutil.copy(clean, planted)
    as_of_ts = int(calendar.hours(MONDAY).open.timestamp())
    with MarketStore(planted) as store:
        plant_future_rows(store, as_of_ts, store.symbols(as_of_ts))
    for task in ("ml_features", "signals"):
        run(task, calendar=calendar, market_db=planted, session=MONDAY, options=OPTIONS)
    return clean, planted, as_of_ts


def read(path, table: str) -> pd.DataFrame:
    with MarketStore(path) as store:
        return store.query(f"SELECT * FROM {table} ORDER BY symbol, session")


PLANTED_TABLES = (
    "prices_daily", "news_sentiment", "earnings_results", "insider_trades", "analyst_ratings",
    "fundamentals",
)  # fmt: skip


def test_the_future_rows_are_really_there_for_the_features_to_ignore(clean_and_planted):
    clean, planted, as_of_ts = clean_and_planted
    for table in PLANTED_TABLES:
        sql = f"SELECT COUNT(*) FROM {table} WHERE available_ts > ?"
        with MarketStore(clean) as store:
            assert store.scalar(sql, (as_of_ts,)) == 0, table
        with MarketStore(planted) as store:
            assert store.scalar(sql, (as_of_ts,)) > 0, table


@pytest.mark.parametrize("table", ["ml_features", "signals"])
def test_future_rows_do_not_change_features_or_signals(clean_and_planted, table):
    clean, planted, _ = clean_and_planted
    pd.testing.assert_frame_equal(read(clean, table), read(planted, table))


def test_every_recorded_input_time_is_at_or_before_as_of(clean_and_planted):
    _, planted, as_of_ts = clean_and_planted
    for table in ("ml_features", "signals"):
        frame = read(planted, table)
        assert (frame["max_input_ts"] <= as_of_ts).all()
        assert (frame["as_of_ts"] == as_of_ts).all()
        for text in frame["inputs_json"]:
            stamps = json.loads(text)
            assert {"prices_daily", "news_sentiment", "economic_series"} <= set(stamps)
            assert max(stamps.values()) <= as_of_ts


def test_backfill_reproduces_what_a_live_run_saw(calendar, clean_and_planted, tmp_path):
    """Build Tuesday too, then backfill Monday's features: same as Monday's live run."""
    clean, _, _ = clean_and_planted
    later = tmp_path / "later.db"
    run_daily(calendar, later, MONDAY, options=OPTIONS)
    run_daily(calendar, later, TUESDAY, options=OPTIONS)
    with MarketStore(later) as store:
        store.connection.execute("DELETE FROM ml_features WHERE session = ?", (MONDAY.isoformat(),))
        store.connection.execute("DELETE FROM signals WHERE session = ?", (MONDAY.isoformat(),))
    for task in ("ml_features", "signals"):
        run(task, calendar=calendar, market_db=later, session=MONDAY, options=OPTIONS)
    monday = "session = '2026-11-16'"
    with MarketStore(later) as store:
        backfilled = store.query(f"SELECT * FROM ml_features WHERE {monday} ORDER BY symbol")
    pd.testing.assert_frame_equal(backfilled, read(clean, "ml_features"))


def test_a_backfill_fetch_sees_only_its_own_past(calendar, tmp_path):
    """Running the raw collectors for an old session stores nothing stamped after its open."""
    market_db = tmp_path / "old.db"
    old = MONDAY - timedelta(days=28)
    run_daily(calendar, market_db, old, options={"history_sessions": 30})
    as_of_ts = int(calendar.hours(old).open.timestamp())
    with MarketStore(market_db) as store:
        for table in RAW_TABLES:
            newest = store.scalar(f"SELECT MAX(available_ts) FROM {table}")
            assert newest is not None and newest <= as_of_ts, table


def test_a_backfill_after_later_sessions_reproduces_the_live_run_exactly(
    calendar, clean_and_planted, tmp_path
):
    """Build two later sessions first, then Monday: its whole history window is fetched."""
    clean, _, _ = clean_and_planted
    later = tmp_path / "later-first.db"
    wednesday = calendar.next_session(TUESDAY)
    for session in (TUESDAY, wednesday, MONDAY):
        run_daily(calendar, later, session, options=OPTIONS)
    monday = "session = '2026-11-16'"
    with MarketStore(clean) as live, MarketStore(later) as backfill:
        count = f"SELECT COUNT(DISTINCT session) FROM prices_daily WHERE session < '{MONDAY}'"
        assert backfill.scalar(count) == live.scalar(count) == OPTIONS["history_sessions"]
        for table in ("ml_features", "signals"):
            query = f"SELECT * FROM {table} WHERE {monday} ORDER BY symbol"
            pd.testing.assert_frame_equal(backfill.query(query), live.query(query))
