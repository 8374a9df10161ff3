"""Intraday collectors: incremental bars and features, point-in-time intraday signals."""

from __future__ import annotations

import json
from datetime import date, timedelta

import bottleneck as bn
import numpy as np
import pandas as pd
import pytest

from collectors.intraday_features import rolling
from collectors.market_store import MarketStore
from tests.collector_runs import run

FRIDAY = date(2026, 11, 20)
HALF_DAY = date(2026, 11, 27)
SIZE = 6


def run_at(task, calendar, market_db, session, minutes):
    as_of = calendar.hours(session).open + timedelta(minutes=minutes, seconds=5)
    return run(task, calendar=calendar, market_db=market_db, session=session, as_of=as_of,
               universe_size=SIZE)  # fmt: skip


def table(market_db, name: str) -> pd.DataFrame:
    with MarketStore(market_db) as store:
        return store.query(f"SELECT * FROM {name} ORDER BY symbol, bar_ts")


@pytest.fixture
def with_assets(calendar, tmp_path):
    def make(name: str):
        market_db = tmp_path / f"{name}.db"
        run("assets", calendar=calendar, market_db=market_db, session=FRIDAY, universe_size=SIZE)
        return market_db

    return make


def test_price_data_is_incremental_and_never_from_the_future(calendar, with_assets):
    market_db = with_assets("bars")
    counts = [run_at("price_data", calendar, market_db, FRIDAY, m).records_processed
              for m in (0, 1, 7, 7, 20)]  # fmt: skip
    assert counts == [0, SIZE, 6 * SIZE, 0, 13 * SIZE]
    bars = table(market_db, "intraday_bars")
    as_of_ts = (calendar.hours(FRIDAY).open + timedelta(minutes=20, seconds=5)).timestamp()
    assert (bars["bar_ts"] + 60 <= as_of_ts).all()
    assert bars.groupby("symbol").size().eq(20).all()


def test_half_day_session_ends_after_210_bars(calendar, with_assets):
    market_db = with_assets("half")
    result = run_at("price_data", calendar, market_db, HALF_DAY, 300)
    assert result.records_processed == 210 * SIZE
    assert result.data_as_of == calendar.hours(HALF_DAY).close


def test_incremental_features_equal_a_full_recompute(calendar, with_assets):
    stepwise = with_assets("stepwise")
    for minutes in (1, 3, 8, 20, 33, 47, 60):
        run_at("price_data", calendar, stepwise, FRIDAY, minutes)
        run_at("intraday_features", calendar, stepwise, FRIDAY, minutes)
    full = with_assets("full")
    run_at("price_data", calendar, full, FRIDAY, 60)
    run_at("intraday_features", calendar, full, FRIDAY, 60)
    incremental, recomputed = table(stepwise, "intraday_features"), table(full, "intraday_features")
    assert len(recomputed) == 60 * SIZE
    pd.testing.assert_frame_equal(incremental, recomputed, check_exact=False, rtol=1e-9, atol=1e-12)
    # Windows filled in where they should be, and the running sums matched exactly.
    assert recomputed["volatility_30m"].notna().sum() == (60 - 30) * SIZE
    np.testing.assert_array_equal(incremental["cum_volume"], recomputed["cum_volume"])


def test_rerunning_features_changes_nothing(calendar, with_assets):
    market_db = with_assets("rerun")
    run_at("price_data", calendar, market_db, FRIDAY, 40)
    first = run_at("intraday_features", calendar, market_db, FRIDAY, 40)
    before = table(market_db, "intraday_features")
    again = run_at("intraday_features", calendar, market_db, FRIDAY, 40)
    assert first.records_processed == 40 * SIZE and again.records_processed == 0
    pd.testing.assert_frame_equal(before, table(market_db, "intraday_features"))


def test_intraday_signals_ignore_daily_signals_from_after_as_of(calendar, with_assets):
    market_db = with_assets("signals")
    for minutes in (10, 30):
        run_at("price_data", calendar, market_db, FRIDAY, minutes)
        run_at("intraday_features", calendar, market_db, FRIDAY, minutes)
    as_of = calendar.hours(FRIDAY).open + timedelta(minutes=30, seconds=5)
    with MarketStore(market_db) as store:
        symbols = store.symbols(int(as_of.timestamp()))
        for session, stamp, score in (
            ("2026-11-19", calendar.hours(date(2026, 11, 19)).open, -0.5),
            ("2026-11-23", calendar.hours(date(2026, 11, 23)).open, 0.99),  # the future
        ):
            store.upsert("signals", pd.DataFrame({
                "symbol": symbols, "session": session, "score": score, "direction": "flat",
                "components_json": "{}", "inputs_json": "{}",
                "max_input_ts": int(stamp.timestamp()), "as_of_ts": int(stamp.timestamp()),
            }))  # fmt: skip
    result = run_at("intraday_signals", calendar, market_db, FRIDAY, 30)
    assert result.records_processed == SIZE
    with MarketStore(market_db) as store:
        signals = store.query("SELECT * FROM intraday_signals")
    assert (signals["daily_score"] == -0.5).all()
    assert (signals["max_input_ts"] <= as_of.timestamp()).all()
    assert set(signals["slot"]) == {"1000"}
    stamps = [json.loads(text) for text in signals["inputs_json"]]
    assert all(s["intraday_features"] == int(as_of.timestamp()) - 5 for s in stamps)
    assert all(
        s["signals"] == int(calendar.hours(date(2026, 11, 19)).open.timestamp()) for s in stamps
    )


def test_one_tick_at_5000_symbols_covers_every_symbol(calendar, tmp_path):
    """The whole universe in one tick (its cost is measured in bench/, not here)."""
    market_db = tmp_path / "big.db"
    run("assets", calendar=calendar, market_db=market_db, session=FRIDAY, universe_size=5000)
    as_of = calendar.hours(FRIDAY).open + timedelta(minutes=5, seconds=5)
    results = {
        task: run(task, calendar=calendar, market_db=market_db, session=FRIDAY, as_of=as_of,
                  universe_size=5000)
        for task in ("price_data", "intraday_features", "intraday_signals")
    }  # fmt: skip
    assert results["price_data"].records_processed == 5000 * 5  # 09:30 to 09:34, each symbol
    assert results["intraday_features"].records_processed == 5000 * 5
    assert results["intraday_signals"].records_processed == 5000


@pytest.mark.parametrize(
    ("window", "move", "options", "pandas_reduce"),
    [
        (30, bn.move_std, {"ddof": 1}, "std"),
        (30, bn.move_mean, {}, "mean"),
        (15, bn.move_max, {}, "max"),
        (15, bn.move_min, {}, "min"),
        (40, bn.move_mean, {}, "mean"),  # longer than the data: all NaN, as pandas
    ],
)
def test_rolling_every_symbol_at_once_equals_pandas_rolling(window, move, options, pandas_reduce):
    generator = np.random.default_rng(3)
    frame = pd.DataFrame(generator.normal(100, 5, size=(36, 50)))
    frame.iloc[3, 7] = np.nan  # a missing bar: the windows holding it are NaN
    frame.iloc[:10, 9] = np.nan  # a symbol that starts late

    ours = rolling(frame, window, move, **options)
    theirs = getattr(frame.rolling(window), pandas_reduce)()

    pd.testing.assert_frame_equal(ours, theirs, rtol=1e-9)
    assert ours.isna().to_numpy().sum() == theirs.isna().to_numpy().sum() > 0
