"""Intraday 1-minute bars for the universe, incremental within the session.

Each run asks the provider only for bars after the newest stored bar of
``ctx.session`` (from the open on the first run), up to the last bar complete
at ``ctx.as_of``: a bar stamped ``t`` covers ``[t, t + 60 s)`` and is served
only once ``t + 60 <= as_of``. Before the open there is nothing to do, which
is a success with zero records, not an error.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from collectors.context import CollectContext, CollectResult
from collectors.market_store import StoreOutcome, epoch
from collectors.support import open_store, provider, result, symbols_served, universe
from orchestrator.errors import PermanentError

logger = logging.getLogger(__name__)


def collect(ctx: CollectContext) -> CollectResult:
    if not ctx.calendar.is_session(ctx.session):
        raise PermanentError(f"{ctx.task}: {ctx.session} is not a trading session")
    hours = ctx.calendar.hours(ctx.session)
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        newest = store.scalar(
            "SELECT MAX(bar_ts) FROM intraday_bars WHERE session = ?", (ctx.session.isoformat(),)
        )
        since = hours.open if newest is None else datetime.fromtimestamp(newest + 60, UTC)
        source = provider(ctx)
        bars = source.intraday_bars(symbols, ctx.session, since, ctx.as_of)
        served = symbols_served(store, ctx, source, "intraday_bars", symbols)
        if bars.empty:
            outcome = StoreOutcome(0, 0, {})
        else:
            outcome = store.store(
                ctx.task,
                "intraday_bars",
                bars,
                as_of=ctx.as_of,
                known_symbols=symbols,
                session_bounds=(epoch(hours.open), epoch(hours.close)),
            )
        logger.info("%s: %d bars stored since %s", ctx.task, outcome.written, since.isoformat())
        return result(store, ctx, {"intraday_bars": outcome}, details={"served_by": served})
