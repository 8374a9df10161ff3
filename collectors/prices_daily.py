"""End-of-day price history: raw OHLCV plus split ratio and dividend per session.

The first run fetches ``options.history_sessions`` (default 252) sessions;
later runs fetch only the sessions of that window not stored yet, up to
the last session closed at or before ``ctx.as_of`` (for a daily run at the
open, the previous session). A backfill for a past session fetches the window
ending before that session, so it never sees a bar from after its ``as_of``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, timedelta

import pandas as pd

from collectors.context import CollectContext, CollectResult
from collectors.market_store import MarketStore, StoreOutcome, epoch
from collectors.support import open_store, provider, result, symbols_served, universe
from orchestrator.market_calendar import MarketCalendar

logger = logging.getLogger(__name__)

DEFAULT_HISTORY_SESSIONS = 252


def last_closed_session(calendar: MarketCalendar, ctx: CollectContext) -> date:
    """The newest session whose close is at or before ``ctx.as_of``."""
    day = ctx.as_of.astimezone(calendar.tz).date()
    if not calendar.is_session(day) or calendar.hours(day).close > ctx.as_of:
        day = calendar.previous_session(day)
    return day


def sessions_to_fetch(
    store: MarketStore, ctx: CollectContext, symbols: Sequence[str] = ()
) -> list[date]:
    """Sessions to fetch, oldest first: every session of the window not stored yet.

    The window is the last ``history_sessions`` sessions up to the last one
    closed at ``as_of``, whatever else the database holds: a live run fetches
    the new session (and any gap), and a backfill of a past session fetches
    its own whole window, so it reproduces what a live run on that day saw.
    A shard's run looks only at its ``symbols``: the other shards store the same
    sessions at their own pace.
    """
    calendar = ctx.calendar
    last = last_closed_session(calendar, ctx)
    history = int(ctx.options.get("history_sessions", DEFAULT_HISTORY_SESSIONS))
    # ~1.45 calendar days per session, plus slack for holiday clusters.
    window = calendar.sessions_in_range(last - timedelta(days=int(history * 1.5) + 10), last)
    window = window[-history:]
    if not window:
        return []
    query = "SELECT DISTINCT session FROM prices_daily WHERE session >= ? AND session <= ?"
    params: tuple[str, ...] = (window[0].isoformat(), last.isoformat())
    if ctx.shard is not None:
        query += f" AND symbol IN ({', '.join('?' * len(symbols))})"
        params += tuple(symbols)
    stored = set(store.query(query, params)["session"])
    return [day for day in window if day.isoformat() not in stored]


def store_bars(
    store: MarketStore, ctx: CollectContext, frame: pd.DataFrame, symbols: Sequence[str]
) -> StoreOutcome:
    """Validate and store a batch of daily bars (the path the benchmark measures)."""
    sessions = (
        {
            day.isoformat()
            for day in ctx.calendar.sessions_in_range(
                date.fromisoformat(frame["session"].min()),
                date.fromisoformat(frame["session"].max()),
            )
        }
        if len(frame)
        else set()
    )
    return store.store(
        ctx.task, "prices_daily", frame, as_of=ctx.as_of, known_symbols=symbols, sessions=sessions
    )


def collect(ctx: CollectContext) -> CollectResult:
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        missing = sessions_to_fetch(store, ctx, symbols) if symbols else []
        source = provider(ctx)
        frame = source.daily_bars(symbols, missing) if missing else pd.DataFrame()
        served = symbols_served(store, ctx, source, "prices_daily", symbols) if missing else {}
        if len(frame):
            frame = frame[frame["available_ts"] <= epoch(ctx.as_of)]
        outcome = store_bars(store, ctx, frame, symbols) if len(frame) else StoreOutcome(0, 0, {})
        logger.info(
            "%s: %d sessions fetched, %d bars stored (symbols by provider: %s)",
            ctx.task,
            len(missing),
            outcome.written,
            served,
        )
        details = {"sessions": len(missing), "served_by": served}
        return result(store, ctx, {"prices_daily": outcome}, details=details)
