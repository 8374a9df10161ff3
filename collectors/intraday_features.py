"""Intraday features per symbol and 1-minute bar, computed incrementally.

Each run computes features only for bars newer than the symbol's newest stored
feature row, reading a warm-up of ``WARMUP_BARS`` earlier bars from the store
for the rolling windows, and carrying the session's running sums (volume,
price x volume) and first open from the newest stored feature row. The result
equals a full recompute from the session's first bar (up to float rounding in
rolling std/mean); ``tests/test_intraday_collectors.py`` checks that.

Features: returns over 1/5/15 minutes, return since the session open,
30-minute volatility of 1-minute log returns, volume z-score against the
previous 30 minutes, 15-minute high-low range, session VWAP and the gap to it.
Only bars with ``available_ts <= as_of`` are used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import bottleneck as bn
import numpy as np
import pandas as pd

from collectors.context import CollectContext, CollectResult
from collectors.market_store import MarketStore, StoreOutcome, epoch
from collectors.support import open_store, result, universe

logger = logging.getLogger(__name__)

WARMUP_BARS = 31  # the longest window (30 returns) needs 31 closes


def rolling(
    frame: pd.DataFrame, window: int, move: Callable[..., Any], **options: Any
) -> pd.DataFrame:
    """``frame.rolling(window)`` reduced by bottleneck's ``move``, every symbol at once.

    pandas rolls a wide frame one column at a time: at 5,000 symbols that is
    5,000 calls per feature, and was most of an intraday tick's time. The
    windows are pandas' own: NaN until ``window`` values, or with a NaN inside.
    """
    values = frame.to_numpy(dtype=np.float64)
    if len(values) < window:  # bottleneck refuses a window longer than the data
        return pd.DataFrame(np.nan, index=frame.index, columns=frame.columns)
    moved = move(values, window, axis=0, **options)
    return pd.DataFrame(moved, index=frame.index, columns=frame.columns)


def compute(bars: pd.DataFrame, state: pd.DataFrame) -> pd.DataFrame:
    """Features for every bar in ``bars`` (warm-up included).

    ``state`` (index symbol; columns bar_ts, cum_volume, cum_price_volume,
    session_open) is each symbol's newest stored feature row; running sums
    continue from it for bars after its ``bar_ts``. Symbols without state start
    at their first bar in ``bars``, which must then be the session's first.
    """
    columns = ["open", "high", "low", "close", "volume"]
    pivoted = bars.pivot(index="bar_ts", columns="symbol", values=columns).sort_index()
    wide = {name: pivoted[name] for name in columns}  # one pivot: each costs a factorize
    close = wide["close"]
    log_close = np.log(close)
    one_minute = log_close.diff()
    volume = wide["volume"]
    previous_volume = volume.shift(1)
    stamps = close.index.to_numpy()[:, None]
    # A symbol without a stored row gets -inf: every one of its bars is new.
    last_state = state["bar_ts"].reindex(close.columns).astype(float).fillna(-np.inf)
    new = stamps > last_state.to_numpy()[None, :]
    typical = (wide["high"] + wide["low"] + close) / 3.0
    price_volume = (typical * volume).where(new, 0.0)
    start_volume = state["cum_volume"].reindex(close.columns).fillna(0.0)
    start_price_volume = state["cum_price_volume"].reindex(close.columns).fillna(0.0)
    # Cumulate starting from the stored running sum, in the same order a full
    # recompute would add the terms, so both give the same floats.
    cum_volume = pd.concat([start_volume.to_frame().T, volume.where(new, 0.0)]).cumsum().iloc[1:]
    cum_price_volume = pd.concat([start_price_volume.to_frame().T, price_volume]).cumsum().iloc[1:]
    first_open = wide["open"].bfill().iloc[0]
    session_open = state["session_open"].reindex(close.columns).fillna(first_open)
    vwap = cum_price_volume / cum_volume.replace(0.0, np.nan)
    features = {
        "close": close,
        "return_1m": close / close.shift(1) - 1.0,
        "return_5m": close / close.shift(5) - 1.0,
        "return_15m": close / close.shift(15) - 1.0,
        "return_session": close / session_open - 1.0,
        "volatility_30m": rolling(one_minute, 30, bn.move_std, ddof=1),
        "volume_z_30m": (volume - rolling(previous_volume, 30, bn.move_mean))
        / rolling(previous_volume, 30, bn.move_std, ddof=1).replace(0, np.nan),
        "range_15m": (
            rolling(wide["high"], 15, bn.move_max) - rolling(wide["low"], 15, bn.move_min)
        )
        / close,
        "vwap": vwap,
        "vwap_gap": close / vwap - 1.0,
        "session_open": close * 0.0 + session_open,
        "cum_volume": cum_volume,
        "cum_price_volume": cum_price_volume,
    }
    keep = (new & close.notna().to_numpy()).ravel()
    long = pd.DataFrame(
        {
            "symbol": np.tile(close.columns.to_numpy(dtype=object), len(close))[keep],
            "bar_ts": np.repeat(close.index.to_numpy(), close.shape[1])[keep],
            **{
                name: frame.to_numpy(dtype=np.float64).ravel()[keep]
                for name, frame in features.items()
            },
        }
    )
    long["available_ts"] = long["bar_ts"] + 60
    return long


def _load(store: MarketStore, session: str, as_of_ts: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    state = store.query(
        "SELECT f.symbol, f.bar_ts, f.cum_volume, f.cum_price_volume, f.session_open "
        "FROM intraday_features f JOIN (SELECT symbol, MAX(bar_ts) AS bar_ts "
        " FROM intraday_features WHERE session = ? AND available_ts <= ? GROUP BY symbol) m "
        "ON f.symbol = m.symbol AND f.bar_ts = m.bar_ts",
        (session, as_of_ts),
    ).set_index("symbol")
    oldest_state = state["bar_ts"].min() if len(state) else None
    warmup_from = -1 if oldest_state is None else int(oldest_state) - 60 * WARMUP_BARS
    bars = store.query(
        "SELECT symbol, bar_ts, open, high, low, close, volume FROM intraday_bars "
        "WHERE session = ? AND bar_ts > ? AND available_ts <= ?",
        (session, warmup_from, as_of_ts),
    )
    return state, bars


def collect(ctx: CollectContext) -> CollectResult:
    as_of_ts = epoch(ctx.as_of)
    session = ctx.session.isoformat()
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        state, bars = _load(store, session, as_of_ts)
        features = compute(bars, state) if len(bars) else pd.DataFrame()
        if features.empty:
            outcome = StoreOutcome(0, 0, {})
        else:
            features["session"] = session
            outcome = store.store(
                ctx.task, "intraday_features", features, as_of=ctx.as_of, known_symbols=symbols
            )
        logger.info("%s: %d feature rows stored", ctx.task, outcome.written)
        return result(store, ctx, {"intraday_features": outcome})
