"""Daily ML features per symbol for a session, computed point-in-time.

For session D the cutoff is ``ctx.as_of`` (D's open): every input row is read
with ``available_ts <= as_of`` - prices through the previous close, headlines
and filings up to the open. Price features use a total-return index built from
raw bars (split ratio and dividend per bar), so a split is not a crash.

Features: returns over 1/5/21/63 sessions, 21-session volatility, RSI-14,
MACD (12, 26, 9), volume z-score (20), sentiment means (3 and 7 days) and
article count, latest earnings surprise, insider net buying (90 days), analyst
rating drift (30 days), trailing earnings yield, macro context (JSON).
``inputs_json`` records, per input table, the newest ``available_ts`` read;
``max_input_ts`` is the newest of them and is never after ``as_of_ts``.
Everything is computed on wide (session x symbol) frames, not per row.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import numpy as np
import pandas as pd

from collectors.context import CollectContext, CollectResult
from collectors.market_store import MarketStore, epoch
from collectors.support import open_store, result, universe

logger = logging.getLogger(__name__)

PRICE_HISTORY_DAYS = 400
DAY = 86400


def _read(store: MarketStore, sql: str, as_of_ts: int, since_ts: int) -> pd.DataFrame:
    return store.query(sql, (as_of_ts, since_ts))


def price_features(prices: pd.DataFrame) -> pd.DataFrame:
    """Price and volume features from raw daily bars (one row per symbol)."""
    wide = {
        name: prices.pivot(index="session", columns="symbol", values=name).sort_index()
        for name in ("close", "volume", "split_ratio", "dividend")
    }
    close = wide["close"]
    gross = wide["split_ratio"] * (close + wide["dividend"]) / close.shift(1)
    log_return = np.log(gross)
    index = np.exp(log_return.fillna(0.0).cumsum()).where(close.notna())
    # Scale the total-return index to the last raw close so MACD is in price units.
    adjusted = index * (close.ffill().iloc[-1] / index.ffill().iloc[-1])
    last = adjusted.ffill().iloc[-1]

    def trailing_return(sessions: int) -> pd.Series:
        if len(adjusted) <= sessions:
            return pd.Series(np.nan, index=close.columns)
        return last / adjusted.iloc[-1 - sessions] - 1.0

    change = adjusted.diff()
    gain = change.clip(lower=0).rolling(14).mean().iloc[-1]
    loss = (-change.clip(upper=0)).rolling(14).mean().iloc[-1]
    rsi = 100.0 - 100.0 / (1.0 + gain / loss.replace(0.0, np.nan))
    rsi = rsi.where(~((loss == 0) & (gain > 0)), 100.0)
    macd_line = (
        adjusted.ewm(span=12, adjust=False).mean() - adjusted.ewm(span=26, adjust=False).mean()
    )
    signal_line = macd_line.ewm(span=9, adjust=False).mean()
    # Shares-equivalent volume: later splits multiply earlier share counts.
    later_splits = wide["split_ratio"].iloc[::-1].cumprod().iloc[::-1].shift(-1).fillna(1.0)
    volume = np.log1p(wide["volume"] * later_splits)
    history = volume.iloc[-21:-1]
    volume_z = (volume.iloc[-1] - history.mean()) / history.std().replace(0.0, np.nan)
    return pd.DataFrame(
        {
            "close": close.ffill().iloc[-1],
            "return_1d": trailing_return(1),
            "return_5d": trailing_return(5),
            "return_21d": trailing_return(21),
            "return_63d": trailing_return(63),
            "volatility_21d": log_return.iloc[-21:].std() * np.sqrt(252.0),
            "rsi_14": rsi,
            "macd": macd_line.iloc[-1],
            "macd_signal": signal_line.iloc[-1],
            "volume_z_20": volume_z,
        }
    )


def event_features(store: MarketStore, as_of_ts: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """Sentiment, earnings, insider, analyst and fundamentals features, plus input times."""
    inputs: dict[str, int] = {}
    columns: dict[str, pd.Series] = {}

    def read(table: str, sql: str, days: int) -> pd.DataFrame:
        frame = _read(store, sql, as_of_ts, as_of_ts - days * DAY)
        if not frame.empty:
            inputs[table] = int(frame["available_ts"].max())
        return frame

    sentiment = read(
        "news_sentiment",
        "SELECT symbol, compound, available_ts FROM news_sentiment "
        "WHERE available_ts <= ? AND available_ts > ?",
        7,
    )
    if not sentiment.empty:
        recent = sentiment[sentiment["available_ts"] > as_of_ts - 3 * DAY]
        columns["sentiment_mean_3d"] = recent.groupby("symbol")["compound"].mean()
        columns["sentiment_mean_7d"] = sentiment.groupby("symbol")["compound"].mean()
        columns["news_count_7d"] = sentiment.groupby("symbol").size().astype(float)
    results = read(
        "earnings_results",
        "SELECT symbol, surprise_pct, available_ts FROM earnings_results "
        "WHERE available_ts <= ? AND available_ts > ? ORDER BY symbol, available_ts",
        100,
    )
    if not results.empty:
        columns["earnings_surprise_pct"] = results.groupby("symbol")["surprise_pct"].last()
    insider = read(
        "insider_trades",
        # A 4/A replaces the rows of the filing it amends, once it is available.
        "SELECT symbol, side, value, available_ts FROM insider_trades t "
        "WHERE available_ts <= ?1 AND available_ts > ?2 AND NOT EXISTS ("
        " SELECT 1 FROM insider_trades a WHERE a.amends IS NOT NULL AND a.available_ts <= ?1"
        " AND a.symbol = t.symbol AND t.filing_id LIKE a.amends || '%')",
        90,
    )
    if not insider.empty:
        signed = np.where(insider["side"] == "buy", 1.0, -1.0) * insider["value"]
        columns["insider_net_value_90d"] = signed.groupby(insider["symbol"]).sum()
    ratings = read(
        "analyst_ratings",
        "SELECT symbol, from_rating, to_rating, available_ts FROM analyst_ratings "
        "WHERE available_ts <= ? AND available_ts > ?",
        30,
    )
    if not ratings.empty:
        drift = (ratings["to_rating"] - ratings["from_rating"]).astype(float)
        columns["rating_drift_30d"] = drift.groupby(ratings["symbol"]).sum()
    else:
        trends = read(
            "analyst_trends",
            "SELECT symbol, period, strong_buy, buy, hold, sell, strong_sell, available_ts "
            "FROM analyst_trends WHERE available_ts <= ? AND available_ts > ?",
            30,
        )
        if not trends.empty:
            columns["rating_drift_30d"] = consensus_drift(trends)
    fundamentals = read(
        "fundamentals",
        "SELECT symbol, period_end, eps, available_ts FROM fundamentals "
        "WHERE available_ts <= ? AND available_ts > ? ORDER BY symbol, period_end",
        500,
    )
    if not fundamentals.empty:
        # Each quarter as last filed by as_of: a restatement replaces the first figure
        # only from its own filing on.
        fundamentals = fundamentals.sort_values(["symbol", "period_end", "available_ts"])
        fundamentals = fundamentals.drop_duplicates(["symbol", "period_end"], keep="last")
        last_four = fundamentals.groupby("symbol").tail(4)
        counts = last_four.groupby("symbol").size()
        ttm = last_four.groupby("symbol")["eps"].sum()
        columns["ttm_eps"] = ttm[counts == 4]
    return pd.DataFrame(columns), inputs


def consensus_drift(trends: pd.DataFrame) -> pd.Series:
    """Per symbol, the change of the analysts' consensus from the month before to the last.

    From the newest snapshot of recommendation counts; the consensus runs from
    -2 (all strong sell) to +2 (all strong buy).
    """
    newest = trends[
        trends["available_ts"] == trends.groupby("symbol")["available_ts"].transform("max")
    ]
    counts = newest[["strong_buy", "buy", "hold", "sell", "strong_sell"]].astype(float)
    total = counts.sum(axis=1).where(lambda n: n > 0)
    score = (
        2 * counts["strong_buy"] + counts["buy"] - counts["sell"] - 2 * counts["strong_sell"]
    ) / total
    months = newest.assign(score=score).sort_values(["symbol", "period"])
    last_two = months.groupby("symbol")["score"].apply(
        lambda s: s.iloc[-1] - s.iloc[-2] if len(s) > 1 else 0.0
    )
    return last_two.astype(float)


def macro_context(store: MarketStore, as_of_ts: int) -> tuple[str | None, int | None]:
    """Latest value of each macro series released by ``as_of_ts`` (JSON) and its time."""
    known = store.query(
        "SELECT series, period, value, available_ts FROM economic_series WHERE available_ts <= ?",
        (as_of_ts,),
    )
    if known.empty:
        return None, None
    # The newest period of each series, in its newest vintage known at as_of.
    latest = known.sort_values(["series", "period", "available_ts"]).groupby("series").tail(1)
    values = dict(zip(latest["series"], latest["value"].round(4), strict=True))
    return json.dumps(values, sort_keys=True), int(latest["available_ts"].max())


def build_features(store: MarketStore, symbols: list[str], ctx: CollectContext) -> pd.DataFrame:
    """One feature row per symbol of the universe for ``ctx.session`` at ``ctx.as_of``."""
    as_of_ts = epoch(ctx.as_of)
    first_session = (ctx.as_of - timedelta(days=PRICE_HISTORY_DAYS)).date().isoformat()
    prices = store.query(
        "SELECT symbol, session, close, volume, split_ratio, dividend, available_ts "
        "FROM prices_daily WHERE available_ts <= ? AND session >= ?",
        (as_of_ts, first_session),
    )
    frame = pd.DataFrame(index=pd.Index(symbols, name="symbol"))
    inputs: dict[str, int] = {}
    if not prices.empty:
        frame = frame.join(price_features(prices))
        inputs["prices_daily"] = int(prices["available_ts"].max())
    events, event_inputs = event_features(store, as_of_ts)
    inputs.update(event_inputs)
    frame = frame.join(events)
    if "ttm_eps" in frame:
        frame["earnings_yield"] = frame.pop("ttm_eps") / frame.get("close")
    macro_json, macro_ts = macro_context(store, as_of_ts)
    if macro_ts is not None:
        inputs["economic_series"] = macro_ts
    frame["macro_json"] = macro_json
    frame["inputs_json"] = json.dumps(inputs, sort_keys=True)
    frame["max_input_ts"] = max(inputs.values(), default=0)
    frame["as_of_ts"] = as_of_ts
    frame["session"] = ctx.session.isoformat()
    frame = frame.reset_index()
    for name in ("sentiment_mean_3d", "sentiment_mean_7d", "earnings_surprise_pct"):
        if name not in frame:
            frame[name] = np.nan
    for name in ("news_count_7d", "insider_net_value_90d", "rating_drift_30d"):
        frame[name] = frame[name].fillna(0.0) if name in frame else 0.0
    return frame.replace([np.inf, -np.inf], np.nan)


def collect(ctx: CollectContext) -> CollectResult:
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        features = build_features(store, symbols, ctx)
        for name in ("close", "return_1d", "earnings_yield", "return_5d", "return_21d"):
            if name not in features:
                features[name] = np.nan
        outcome = store.store(
            ctx.task, "ml_features", features, as_of=ctx.as_of, known_symbols=symbols
        )
        logger.info("%s: features for %d symbols", ctx.task, outcome.written)
        return result(store, ctx, {"ml_features": outcome}, time_column="as_of_ts")
