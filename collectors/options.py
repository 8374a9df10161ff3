"""Options chains: a snapshot per symbol at the session's open (3 expiries x 7 strikes).

Quoted around the last close known at ``ctx.as_of``; one snapshot per
(symbol, session), so re-running the session rewrites the same rows.
"""

from __future__ import annotations

import logging

from collectors.context import CollectContext, CollectResult
from collectors.support import open_store, provider, result, symbols_served, universe

logger = logging.getLogger(__name__)


def collect(ctx: CollectContext) -> CollectResult:
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        source = provider(ctx)
        frame = source.options_chain(symbols, ctx.session, ctx.as_of)
        symbols_served(store, ctx, source, "options_chain", symbols)
        outcome = store.store(
            ctx.task, "options_chain", frame, as_of=ctx.as_of, known_symbols=symbols
        )
        logger.info("%s: %d option quotes stored", ctx.task, outcome.written)
        return result(store, ctx, {"options_chain": outcome})
