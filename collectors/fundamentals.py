"""Quarterly fundamentals (revenue, net income, EPS, balance-sheet items) by filing date.

Each run fetches the last ``options.lookback_days`` (default 400) days up to
``ctx.as_of``; rows are immutable and keyed naturally, so the overlap with
earlier runs rewrites identical rows and a re-run changes nothing.
"""

from __future__ import annotations

import logging

from collectors.context import CollectContext, CollectResult
from collectors.support import open_store, provider, result, since, symbols_served, universe

logger = logging.getLogger(__name__)

DEFAULT_LOOKBACK_DAYS = 400


def collect(ctx: CollectContext) -> CollectResult:
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        source = provider(ctx)
        frame = source.fundamentals(symbols, since(ctx, DEFAULT_LOOKBACK_DAYS), ctx.as_of)
        symbols_served(store, ctx, source, "fundamentals", symbols)
        outcome = store.store(
            ctx.task, "fundamentals", frame, as_of=ctx.as_of, known_symbols=symbols
        )
        logger.info("%s: %d fundamentals rows stored", ctx.task, outcome.written)
        return result(store, ctx, {"fundamentals": outcome})
