"""Form-4-like insider transactions, stamped with their filing time.

Each run fetches the last ``options.lookback_days`` (default 120) days up to
``ctx.as_of``; rows are immutable and keyed naturally, so the overlap with
earlier runs rewrites identical rows and a re-run changes nothing.
"""

from __future__ import annotations

import logging

from collectors.context import CollectContext, CollectResult
from collectors.support import open_store, provider, result, since, universe

logger = logging.getLogger(__name__)

DEFAULT_LOOKBACK_DAYS = 120


def collect(ctx: CollectContext) -> CollectResult:
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        frame = provider(ctx).insider_trades(symbols, since(ctx, DEFAULT_LOOKBACK_DAYS), ctx.as_of)
        outcome = store.store(
            ctx.task, "insider_trades", frame, as_of=ctx.as_of, known_symbols=symbols
        )
        logger.info("%s: %d insider_trades rows stored", ctx.task, outcome.written)
        return result(store, ctx, {"insider_trades": outcome})
