"""The synthetic provider: deterministic, path-consistent, calendar-aware, never from the future."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collectors.providers import get_provider
from collectors.providers.synthetic import SyntheticProvider
from collectors.providers.synthetic_universe import tickers
from orchestrator.errors import PermanentError

ROOT = Path(__file__).resolve().parents[1]
THANKSGIVING = date(2026, 11, 26)
HALF_DAY = date(2026, 11, 27)
FRIDAY = date(2026, 11, 20)


@pytest.fixture(scope="module")
def provider(calendar) -> SyntheticProvider:
    return get_provider({"name": "synthetic", "seed": 11, "universe_size": 6}, calendar)


def _fingerprint(provider: SyntheticProvider, calendar) -> dict:
    symbols = tickers(3)
    as_of = calendar.hours(FRIDAY).open + timedelta(minutes=7)
    return {
        "daily": provider.daily_bars(symbols, [FRIDAY])["close"].tolist(),
        "minute": provider.intraday_bars(symbols, FRIDAY, calendar.hours(FRIDAY).open, as_of)[
            "close"
        ].tolist(),
        "news": provider.news(symbols, FRIDAY - timedelta(days=3), as_of)["headline"].tolist(),
    }


def test_same_seed_gives_same_values_in_another_process(provider, calendar, tmp_path):
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from orchestrator.market_calendar import load_calendar\n"
        "from collectors.providers import get_provider\n"
        "from tests.test_synthetic_provider import _fingerprint\n"
        "cal = load_calendar('XNYS', Path(sys.argv[1]))\n"
        "p = get_provider({'name': 'synthetic', 'seed': 11, 'universe_size': 6}, cal)\n"
        "print(json.dumps(_fingerprint(p, cal)))\n"
    )
    # A different hash seed proves nothing depends on Python's salted hash().
    env = {"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    output = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
    ).stdout
    assert json.loads(output) == _fingerprint(provider, calendar)


def test_other_seed_gives_other_values(provider, calendar):
    other = get_provider({"name": "synthetic", "seed": 12, "universe_size": 6}, calendar)
    assert _fingerprint(other, calendar)["daily"] != _fingerprint(provider, calendar)["daily"]


def test_close_of_a_day_does_not_depend_on_the_range_asked(provider, calendar):
    symbols = tickers(4)
    year = calendar.sessions_in_range(FRIDAY - timedelta(days=365), FRIDAY)
    whole = provider.daily_bars(symbols, year).set_index(["symbol", "session"])
    for day in (year[0], year[100], FRIDAY):
        alone = provider.daily_bars(symbols, [day]).set_index(["symbol", "session"])
        pd.testing.assert_frame_equal(alone, whole.loc[alone.index])


def test_daily_bars_are_consistent_ohlc_with_split_and_dividend_columns(provider, calendar):
    sessions = calendar.sessions_in_range(date(2024, 1, 2), FRIDAY)
    bars = provider.daily_bars(tickers(40), sessions)
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] > 0).all() and (bars["volume"] >= 0).all()
    splits = bars[bars["split_ratio"] != 1.0]
    assert len(splits) > 0 and set(splits["split_ratio"]) <= {2.0, 3.0, 4.0}
    assert (bars["dividend"] > 0).sum() > 0
    # A split divides the raw price: the close before / open after is near the ratio.
    for _, row in splits.head(5).iterrows():
        history = bars[bars["symbol"] == row["symbol"]].set_index("session")["close"]
        before = history.shift(1)[row["session"]]
        assert 0.6 * row["split_ratio"] < before / row["open"] < 1.6 * row["split_ratio"]


def test_no_bars_on_a_holiday(provider, calendar):
    with pytest.raises(PermanentError, match="non-sessions"):
        provider.daily_bars(tickers(2), [THANKSGIVING])
    week = calendar.sessions_in_range(date(2026, 11, 23), date(2026, 11, 27))
    assert THANKSGIVING not in week and HALF_DAY in week


def test_half_day_has_210_minute_bars_full_day_390(provider, calendar):
    for session, expected in ((HALF_DAY, 210), (FRIDAY, 390)):
        hours = calendar.hours(session)
        bars = provider.intraday_bars(tickers(2), session, hours.open, hours.post_end)
        assert bars.groupby("symbol").size().tolist() == [expected, expected]
        assert bars["bar_ts"].max() + 60 == int(hours.close.timestamp())


def test_intraday_never_serves_a_bar_before_it_is_complete(provider, calendar):
    open_ = calendar.hours(FRIDAY).open
    as_of = open_ + timedelta(minutes=12, seconds=59)
    bars = provider.intraday_bars(tickers(3), FRIDAY, open_, as_of)
    assert (bars["bar_ts"] + 60 <= as_of.timestamp()).all()
    assert bars.groupby("symbol").size().tolist() == [12, 12, 12]
    assert provider.intraday_bars(tickers(3), FRIDAY, open_, open_ + timedelta(seconds=59)).empty


def test_intraday_path_opens_at_the_daily_open_and_closes_at_the_close(provider, calendar):
    hours = calendar.hours(FRIDAY)
    minute = provider.intraday_bars(tickers(3), FRIDAY, hours.open, hours.close)
    daily = provider.daily_bars(tickers(3), [FRIDAY]).set_index("symbol")
    first = minute.groupby("symbol").first()
    last = minute.groupby("symbol").last()
    np.testing.assert_allclose(first["open"], daily["open"], rtol=1e-3)
    np.testing.assert_allclose(last["close"], daily["close"], rtol=1e-3)
    # Incremental requests agree with a whole-day request.
    part = provider.intraday_bars(
        tickers(3), FRIDAY, hours.open + timedelta(minutes=100), hours.open + timedelta(minutes=105)
    ).set_index(["symbol", "bar_ts"])
    whole = minute.set_index(["symbol", "bar_ts"]).loc[part.index]
    pd.testing.assert_frame_equal(part, whole)


def test_events_are_never_from_after_as_of(provider, calendar):
    as_of = calendar.hours(FRIDAY).open
    since = FRIDAY - timedelta(days=200)
    symbols = tickers(6)
    frames = {
        "fundamentals": provider.fundamentals(symbols, since, as_of),
        "insider": provider.insider_trades(symbols, since, as_of),
        "analyst": provider.analyst_ratings(symbols, since, as_of),
        "news": provider.news(symbols, since, as_of),
        "economic": provider.economic_series(since, as_of),
        "calendar": provider.earnings_calendar(symbols, since, as_of),
        "results": provider.earnings_results(symbols, since, as_of),
        "options": provider.options_chain(symbols, FRIDAY, as_of),
    }
    for name, frame in frames.items():
        assert len(frame) > 0, name
        assert (frame["available_ts"] <= as_of.timestamp()).all(), name


def test_options_are_priced_around_spot(provider, calendar):
    chain = provider.options_chain(tickers(3), FRIDAY, calendar.hours(FRIDAY).open)
    spot = provider.daily_bars(tickers(3), [calendar.previous_session(FRIDAY)])
    assert set(chain["spot"]) == set(spot["close"])
    assert chain["expiry"].nunique() == 3 and (chain["mid"] > 0).all()
    calls = chain[chain["option_type"] == "call"].set_index(["symbol", "expiry", "strike"])
    puts = chain[chain["option_type"] == "put"].set_index(["symbol", "expiry", "strike"])
    # Calls lose value as the strike rises.
    assert (calls.groupby(level=[0, 1])["mid"].apply(lambda s: s.is_monotonic_decreasing)).all()
    assert (puts["delta"] <= 0).all() and (calls["delta"] >= 0).all()
    assert (calls["delta"] - puts["delta"]).round(3).eq(1.0).all()


def test_universe_is_stable_by_index_and_fast_at_5000(calendar):
    big = SyntheticProvider(seed=3, universe_size=5000, calendar=calendar)
    small = SyntheticProvider(seed=3, universe_size=50, calendar=calendar)
    as_of = calendar.hours(FRIDAY).open
    large = big.universe(as_of)
    assert large["symbol"].is_unique and len(large) == 5000
    pd.testing.assert_frame_equal(large.head(50), small.universe(as_of))
    assert large["sector"].nunique() == 11


def test_unknown_provider_is_a_permanent_error_naming_it(calendar):
    with pytest.raises(PermanentError, match="'polygonish'"):
        get_provider({"name": "polygonish"}, calendar)
    with pytest.raises(PermanentError, match="universe_size"):
        get_provider({"name": "synthetic", "universe_size": 0}, calendar)
