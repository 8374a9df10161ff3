"""Form-4-like insider transactions, stamped with their filing time.

Each run fetches the last ``options.lookback_days`` (default 120) days up to
``ctx.as_of``; rows are immutable and keyed naturally, so the overlap with
earlier runs rewrites identical rows and a re-run changes nothing.
"""

from __future__ import annotations

import logging

from collectors.context import CollectContext, CollectResult
from collectors.support import open_store, provider, result, since, symbols_served, universe

logger = logging.getLogger(__name__)

DEFAULT_LOOKBACK_DAYS = 120


def collect(ctx: CollectContext) -> CollectResult:
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        source = provider(ctx)
        frame = source.insider_trades(symbols, since(ctx, DEFAULT_LOOKBACK_DAYS), ctx.as_of)
        symbols_served(store, ctx, source, "insider_trades", symbols)
        outcome = store.store(
            ctx.task, "insider_trades", frame, as_of=ctx.as_of, known_symbols=symbols
        )
        logger.info("%s: %d insider_trades rows stored", ctx.task, outcome.written)
        return result(store, ctx, {"insider_trades": outcome})
