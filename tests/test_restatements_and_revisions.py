"""Restatements, revisions and amendments are new rows: a past moment reads what was known then.

The store keeps every filing of a quarter, every vintage of a macro value and
every Form 4 with the 4/A that amends it; the feature builder reads, as of T,
the last of each available by T. And a database written before these keys
existed is migrated in place, its rows kept.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from collectors.market_store import TABLES, MarketStore
from collectors.ml_features import event_features, macro_context

FIRST_FILED, RESTATED, BETWEEN, AFTER = 1_700_000_000, 1_710_000_000, 1_705_000_000, 1_720_000_000


@pytest.fixture
def store(tmp_path: Path) -> MarketStore:
    with MarketStore(tmp_path / "market.db") as opened:
        yield opened


def quarter(period_end: str, eps: float, filing_id: str, available_ts: int) -> dict:
    return {
        "symbol": "AAPL", "period_end": period_end, "filing_id": filing_id,
        "fiscal_period": period_end[:7], "revenue": 1e9, "net_income": 1e8, "eps": eps,
        "shares_outstanding": 1e7, "total_assets": 5e9, "total_debt": 1e9,
        "available_ts": available_ts,
    }  # fmt: skip


def test_a_restated_quarter_is_read_as_first_reported_before_the_restatement(store) -> None:
    quarters = [quarter(f"2023-{m:02d}-28", 1.0, f"q{m}", FIRST_FILED) for m in (3, 6, 9, 12)]
    store.upsert("fundamentals", pd.DataFrame(quarters))
    store.upsert("fundamentals", pd.DataFrame([quarter("2023-12-28", 3.0, "q12-a", RESTATED)]))
    assert store.scalar("SELECT COUNT(*) FROM fundamentals") == 5  # both filings kept
    before, _ = event_features(store, BETWEEN)
    after, _ = event_features(store, AFTER)
    assert before.loc["AAPL", "ttm_eps"] == pytest.approx(4.0)
    assert after.loc["AAPL", "ttm_eps"] == pytest.approx(6.0)


def test_a_revised_macro_value_is_read_as_first_published_before_the_revision(store) -> None:
    rows = [
        {"series": "UNRATE", "period": "2023-10", "value": 3.9, "available_ts": FIRST_FILED},
        {"series": "UNRATE", "period": "2023-10", "value": 4.1, "available_ts": RESTATED},
        {"series": "UNRATE", "period": "2023-09", "value": 3.8, "available_ts": FIRST_FILED - 9},
    ]
    store.upsert("economic_series", pd.DataFrame(rows))
    assert json.loads(macro_context(store, BETWEEN)[0]) == {"UNRATE": 3.9}
    assert json.loads(macro_context(store, AFTER)[0]) == {"UNRATE": 4.1}


def test_a_form_4a_replaces_the_rows_it_amends_from_its_own_acceptance(store) -> None:
    trade = {"symbol": "AAPL", "insider_role": "CEO", "transaction_date": "2023-11-01",
             "side": "buy", "price": 10.0}  # fmt: skip
    original = [
        {**trade, "filing_id": "0001-23-000001:1", "shares": 100, "value": 1000.0},
        {**trade, "filing_id": "0001-23-000001:2", "shares": 50, "value": 500.0},
    ]
    amendment = {**trade, "filing_id": "0001-23-000009:1", "shares": 10, "value": 100.0,
                 "amends": "0001-23-000001"}  # fmt: skip
    store.upsert("insider_trades", pd.DataFrame(original).assign(available_ts=FIRST_FILED))
    amended = FIRST_FILED + 20 * 86400
    store.upsert("insider_trades", pd.DataFrame([amendment]).assign(available_ts=amended))
    before, _ = event_features(store, amended - 1)
    after, _ = event_features(store, amended + 1)
    assert before.loc["AAPL", "insider_net_value_90d"] == pytest.approx(1500.0)
    assert after.loc["AAPL", "insider_net_value_90d"] == pytest.approx(100.0)


def test_a_database_from_before_the_new_keys_is_migrated_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "market.db"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE fundamentals (symbol TEXT NOT NULL, period_end TEXT NOT NULL, "
            "fiscal_period TEXT NOT NULL, revenue REAL NOT NULL, net_income REAL NOT NULL, "
            "eps REAL NOT NULL, shares_outstanding REAL NOT NULL, total_assets REAL NOT NULL, "
            "total_debt REAL NOT NULL, available_ts INTEGER NOT NULL, "
            "PRIMARY KEY (symbol, period_end)) WITHOUT ROWID"
        )
        old.execute(
            "INSERT INTO fundamentals VALUES ('AAPL', '2023-12-28', '2023Q4', 1, 2, 3, 4, 5, 6, 7)"
        )
    old.close()
    with MarketStore(path) as store:
        rows = store.query("SELECT * FROM fundamentals")
        columns = [r[1] for r in store.connection.execute("PRAGMA table_info(fundamentals)")]
    assert columns == list(TABLES["fundamentals"].column_names)
    assert rows.loc[0, "filing_id"] == "first-reported"
    assert (rows.loc[0, "eps"], rows.loc[0, "available_ts"]) == (3.0, 7)
    assert pd.isna(rows.loc[0, "equity"])


def test_recommendation_trends_give_the_consensus_drift_known_at_the_as_of(store) -> None:
    def month(period: str, strong_buy: int, sell: int, taken: int) -> dict:
        return {"symbol": "AAPL", "period": period, "strong_buy": strong_buy, "buy": 0,
                "hold": 10 - strong_buy - sell, "sell": sell, "strong_sell": 0,
                "available_ts": taken}  # fmt: skip

    early = [month("2023-10-01", 2, 0, FIRST_FILED), month("2023-11-01", 4, 0, FIRST_FILED)]
    later = [month("2023-11-01", 4, 0, BETWEEN), month("2023-12-01", 2, 4, BETWEEN)]
    store.upsert("analyst_trends", pd.DataFrame(early + later))
    first, _ = event_features(store, FIRST_FILED + 60)
    second, _ = event_features(store, BETWEEN + 60)
    assert first.loc["AAPL", "rating_drift_30d"] == pytest.approx((8 - 4) / 10)  # 0.4 -> 0.8
    assert second.loc["AAPL", "rating_drift_30d"] == pytest.approx((0 - 8) / 10)  # 0.8 -> 0.0
