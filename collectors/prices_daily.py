"""End-of-day price history: raw OHLCV plus split ratio and dividend per session.

The first run fetches ``options.history_sessions`` (default 252) sessions;
later runs fetch only the sessions missing after the oldest stored one, up to
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
from collectors.support import open_store, provider, result, universe
from orchestrator.market_calendar import MarketCalendar

logger = logging.getLogger(__name__)

DEFAULT_HISTORY_SESSIONS = 252


def last_closed_session(calendar: MarketCalendar, ctx: CollectContext) -> date:
    """The newest session whose close is at or before ``ctx.as_of``."""
    day = ctx.as_of.astimezone(calendar.tz).date()
    if not calendar.is_session(day) or calendar.hours(day).close > ctx.as_of:
        day = calendar.previous_session(day)
    return day


def sessions_to_fetch(store: MarketStore, ctx: CollectContext) -> list[date]:
    """Sessions to fetch, oldest first.

    With no stored bars in the window: the whole window (the last
    ``history_sessions`` sessions up to the last closed one). Otherwise only the
    sessions after the oldest stored one that are missing, i.e. the new
    sessions plus any gap, so a larger ``history_sessions`` later does not
    trigger a re-download of the past.
    """
    calendar = ctx.calendar
    last = last_closed_session(calendar, ctx)
    history = int(ctx.options.get("history_sessions", DEFAULT_HISTORY_SESSIONS))
    # ~1.45 calendar days per session, plus slack for holiday clusters.
    window = calendar.sessions_in_range(last - timedelta(days=int(history * 1.5) + 10), last)
    window = window[-history:]
    stored = set(
        store.query(
            "SELECT DISTINCT session FROM prices_daily WHERE session >= ? AND session <= ?",
            (window[0].isoformat(), last.isoformat()),
        )["session"]
        if window
        else ()
    )
    if stored:
        # History exists: fill gaps and new sessions, but never extend further back.
        oldest = min(stored)
        return [
            day for day in window if day.isoformat() >= oldest and day.isoformat() not in stored
        ]
    return window


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
        missing = sessions_to_fetch(store, ctx)
        frame = provider(ctx).daily_bars(symbols, missing)
        frame = frame[frame["available_ts"] <= epoch(ctx.as_of)]
        outcome = store_bars(store, ctx, frame, symbols)
        logger.info(
            "%s: %d sessions fetched, %d bars stored", ctx.task, len(missing), outcome.written
        )
        return result(store, ctx, {"prices_daily": outcome}, details={"sessions": len(missing)})
