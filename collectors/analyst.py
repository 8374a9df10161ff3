"""Analyst rating changes (upgrade, downgrade, initiate, reiterate) with price targets.

Each run fetches the last ``options.lookback_days`` (default 60) days up to
``ctx.as_of``; rows are immutable and keyed naturally, so the overlap with
earlier runs rewrites identical rows and a re-run changes nothing.
"""

from __future__ import annotations

import logging

from collectors.context import CollectContext, CollectResult
from collectors.support import open_store, provider, result, since, universe

logger = logging.getLogger(__name__)

DEFAULT_LOOKBACK_DAYS = 60


def collect(ctx: CollectContext) -> CollectResult:
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        frame = provider(ctx).analyst_ratings(symbols, since(ctx, DEFAULT_LOOKBACK_DAYS), ctx.as_of)
        outcome = store.store(
            ctx.task, "analyst_ratings", frame, as_of=ctx.as_of, known_symbols=symbols
        )
        logger.info("%s: %d analyst_ratings rows stored", ctx.task, outcome.written)
        return result(store, ctx, {"analyst_ratings": outcome})
