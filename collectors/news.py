"""News headlines per symbol, stamped with their publication time.

Each run fetches the last ``options.lookback_days`` (default 7) days up to
``ctx.as_of``; rows are immutable and keyed naturally, so the overlap with
earlier runs rewrites identical rows and a re-run changes nothing.
"""

from __future__ import annotations

import logging

from collectors.context import CollectContext, CollectResult
from collectors.support import open_store, provider, result, since, symbols_served, universe

logger = logging.getLogger(__name__)

DEFAULT_LOOKBACK_DAYS = 7


def collect(ctx: CollectContext) -> CollectResult:
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        source = provider(ctx)
        frame = source.news(symbols, since(ctx, DEFAULT_LOOKBACK_DAYS), ctx.as_of)
        served = symbols_served(store, ctx, source, "news", symbols)
        outcome = store.store(ctx.task, "news", frame, as_of=ctx.as_of, known_symbols=symbols)
        logger.info("%s: %d news rows stored", ctx.task, outcome.written)
        return result(store, ctx, {"news": outcome}, details={"served_by": served})
