"""The market store: schema, idempotent upserts, validation and quarantine."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from collectors.market_store import TABLES, MarketStore, validate
from orchestrator.errors import DataValidationError

AS_OF = pd.Timestamp("2026-11-20 14:30", tz="UTC").to_pydatetime()
AS_OF_TS = int(AS_OF.timestamp())
OPEN_TS = AS_OF_TS
CLOSE_TS = AS_OF_TS + 390 * 60


def daily_bars(count: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": [f"S{i}" for i in range(count)],
            "session": "2026-11-19",
            "open": 10.0,
            "high": 11.0,
            "low": 9.0,
            "close": 10.5,
            "volume": 1000.0,
            "split_ratio": 1.0,
            "dividend": 0.0,
            "available_ts": AS_OF_TS - 3600,
        }
    )


def minute_bars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": ["S0", "S0", "S1"],
            "session": "2026-11-20",
            "bar_ts": [OPEN_TS, OPEN_TS + 60, OPEN_TS],
            "open": 10.0,
            "high": 10.2,
            "low": 9.9,
            "close": 10.1,
            "volume": 50.0,
            "available_ts": [OPEN_TS + 60, OPEN_TS + 120, OPEN_TS + 60],
        }
    )


@pytest.fixture
def store(tmp_path):
    with MarketStore(tmp_path / "market.db") as opened:
        yield opened


def test_schema_is_created_idempotently_in_wal_mode(tmp_path):
    MarketStore(tmp_path / "m.db").close()
    with MarketStore(tmp_path / "m.db") as store:
        tables = set(store.query("SELECT name FROM sqlite_master WHERE type='table'")["name"])
        assert set(TABLES) | {"quarantine"} <= tables
        assert store.scalar("PRAGMA journal_mode") == "wal"
        assert store.scalar("PRAGMA busy_timeout") == 30000


def test_upsert_is_sorted_and_idempotent(store):
    bars = daily_bars().iloc[::-1]
    assert store.upsert("prices_daily", bars) == 4
    assert store.upsert("prices_daily", bars) == 4
    stored = store.query("SELECT symbol, close FROM prices_daily")
    assert stored["symbol"].tolist() == ["S0", "S1", "S2", "S3"]
    changed = bars.assign(close=10.75)
    store.upsert("prices_daily", changed)
    assert store.query("SELECT DISTINCT close FROM prices_daily")["close"].tolist() == [10.75]


def test_timestamps_are_integer_epoch_seconds(store):
    store.upsert("intraday_bars", minute_bars())
    kinds = store.query(
        "SELECT DISTINCT typeof(bar_ts) AS t, typeof(available_ts) AS a FROM intraday_bars"
    )
    assert kinds.to_dict("records") == [{"t": "integer", "a": "integer"}]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"close": np.nan}, "malformed: null required value"),
        ({"close": 0.0}, "non-positive or NaN close"),
        ({"open": -1.0}, "non-positive or NaN open"),
        ({"high": 8.0}, "high below low"),
        ({"close": 12.0}, "open/close outside [low, high]"),
        ({"volume": -5.0}, "negative or NaN volume"),
        ({"available_ts": AS_OF_TS + 1}, "stamped after as_of"),
        ({"symbol": "NOPE"}, "unknown symbol"),
        ({"session": "2026-11-26"}, "not a trading session"),
        ({"symbol": None}, "malformed: null required value"),
        ({"volume": "lots"}, "malformed: non-numeric volume"),
    ],
)
def test_bad_rows_are_quarantined_with_reason_and_source(store, change, reason):
    bars = daily_bars().astype(object)
    for column, value in change.items():
        bars.loc[1, column] = value
    outcome = store.store(
        "prices_daily_test",
        "prices_daily",
        bars,
        as_of=AS_OF,
        known_symbols=["S0", "S1", "S2", "S3"],
        sessions=["2026-11-19"],
    )
    assert (outcome.written, outcome.rejected) == (3, 1)
    quarantined = store.query(
        "SELECT source, table_name, natural_key, reason, payload FROM quarantine"
    )
    assert quarantined[["source", "table_name", "reason"]].values.tolist() == [
        ["prices_daily_test", "prices_daily", reason]
    ]
    assert quarantined["natural_key"][0].endswith("|2026-11-19") or "session" in change
    assert store.scalar("SELECT COUNT(*) FROM prices_daily") == 3


def test_duplicate_keys_keep_the_first_and_quarantine_the_rest(store):
    bars = pd.concat([daily_bars(2), daily_bars(2).assign(close=10.9)], ignore_index=True)
    outcome = store.store("src", "prices_daily", bars, as_of=AS_OF)
    assert (outcome.written, outcome.rejected) == (2, 2)
    assert outcome.reasons == {"duplicate key in batch": 2}
    assert store.query("SELECT DISTINCT close FROM prices_daily")["close"].tolist() == [10.5]


def test_minute_bars_outside_the_session_are_rejected(store):
    bars = minute_bars()
    bars.loc[2, "bar_ts"] = OPEN_TS - 60
    bars.loc[2, "available_ts"] = OPEN_TS
    good, rejects = validate(
        "intraday_bars", bars, as_of_ts=CLOSE_TS, session_bounds=(OPEN_TS, CLOSE_TS)
    )
    assert len(good) == 2 and rejects["reason"].tolist() == ["stamped outside the session"]


def test_a_batch_with_no_good_row_raises_and_stores_nothing(store):
    bars = daily_bars().assign(high=1.0)
    with pytest.raises(DataValidationError, match="all 4 rows for prices_daily were rejected"):
        store.store("src", "prices_daily", bars, as_of=AS_OF)
    assert store.scalar("SELECT COUNT(*) FROM prices_daily") == 0
    assert store.scalar("SELECT COUNT(*) FROM quarantine") == 4


def test_missing_columns_reject_the_batch(store):
    with pytest.raises(DataValidationError, match="missing columns"):
        store.store("src", "prices_daily", daily_bars().drop(columns="volume"), as_of=AS_OF)


def test_requarantining_the_same_rows_adds_nothing(store):
    bars = daily_bars().assign(volume=[1.0, -1.0, 1.0, 1.0])
    for _ in range(2):
        store.store("src", "prices_daily", bars, as_of=AS_OF)
    assert store.scalar("SELECT COUNT(*) FROM quarantine") == 1


def test_empty_batch_is_fine(store):
    outcome = store.store("src", "prices_daily", daily_bars().iloc[0:0], as_of=AS_OF)
    assert (outcome.written, outcome.rejected) == (0, 0)


def test_sql_is_parameterised_symbols_are_data(store):
    evil = "X'); DROP TABLE assets; --"
    frame = pd.DataFrame(
        {"symbol": [evil], "name": ["n"], "sector": ["s"], "industry": ["i"], "exchange": ["e"],
         "available_ts": [0], "confirmed_ts": [0]}
    )  # fmt: skip
    store.upsert("assets", frame)
    assert store.symbols(AS_OF_TS) == [evil]
    assert sqlite3.connect(store.path).execute("SELECT COUNT(*) FROM assets").fetchone() == (1,)
